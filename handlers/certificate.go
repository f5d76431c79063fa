package handlers

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// maxUploadBody bounds the upload form's body: the certificate file (one
// byte over pushcert.MaxUploadSize, so the service can refuse it) plus
// room for the other fields and the multipart framing.
const maxUploadBody = pushcert.MaxUploadSize + 1 + 64<<10

// Certificate serves the changes an administrator makes from the status
// page: generating and downloading CSRs and uploading the certificate.
type Certificate struct {
	log     *slog.Logger
	svc     *pushcert.Service
	orgSlug string
	dev     bool
	now     func() time.Time
	deliv   *delivery.Deliverer // shown on the status page; nil shows none
	mon     *apns.Monitor       // likewise
}

// NewCertificate returns the certificate handlers over svc. org, the
// organization's name, goes into CSR file names; dev shows the
// development-mode banner on the pages it renders.
func NewCertificate(log *slog.Logger, svc *pushcert.Service, org string, dev bool) *Certificate {
	return &Certificate{log: log, svc: svc, orgSlug: slug(org), dev: dev, now: svc.Now}
}

// WithDelivery makes the status page these handlers show again after a
// refusal show deliv's targets, and returns c.
func (c *Certificate) WithDelivery(deliv *delivery.Deliverer) *Certificate {
	c.deliv = deliv
	return c
}

// WithAPNS makes that page show mon's last connection check, and returns c.
func (c *Certificate) WithAPNS(mon *apns.Monitor) *Certificate {
	c.mon = mon
	return c
}

// Upload handles PATCH /certificate, sent by the status page's upload form
// as a POST to /certificate?_method=PATCH. It uploads a certificate,
// changes the Apple ID, or both: decode the form, one Service.Update, the
// pages' error table. A refusal shows the status page again with the
// reason and the user's input; success redirects to the status page with a
// confirmation, which says so when the certificate was already active.
func (c *Certificate) Upload(w http.ResponseWriter, r *http.Request) {
	actor, _ := auth.UserFrom(r.Context())
	u, err := parseUploadForm(w, r)
	out := pushcert.Changed
	if err == nil && u.AllowTopicChange && u.Certificate == nil {
		// Browsers do not keep a chosen file when a page is shown again,
		// so the topic-change confirmation arrives alone unless the file
		// was chosen again. Read as "change only the Apple ID", it would
		// be answered as a success that changed nothing it was about.
		err = errConfirmWithoutFile
	}
	if err == nil {
		u.Actor = actor
		_, out, err = c.svc.UpdateOutcome(r.Context(), u)
	}
	invalid, isInvalid := errors.AsType[*pushcert.ValidationError](err)
	_, hasPage := pageAnswerFor(err)
	switch {
	case isInvalid && !hasPage:
		c.showRefusal(w, r, u, invalid)
	case err != nil:
		pageError(w, r, c.log, c.dev, fmt.Errorf("update certificate: %w", err))
	case out == pushcert.AlreadyActive:
		http.Redirect(w, r, "/?done="+string(views.DoneAlreadyActive), http.StatusSeeOther)
	case u.Certificate == nil:
		http.Redirect(w, r, "/?done="+string(views.DoneAppleID), http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/?done="+string(views.DoneUploaded), http.StatusSeeOther)
	}
}

// showRefusal shows the status page again with status 422: the refusal
// stands out above the form, the Apple ID the user typed is kept, and a
// refused topic change offers the confirmation to replace the topic.
func (c *Certificate) showRefusal(w http.ResponseWriter, r *http.Request, in pushcert.Update, invalid *pushcert.ValidationError) {
	v, err := loadStatus(r, c.svc, statusSources{c.deliv, c.mon}, c.now())
	if err != nil {
		serverError(w, r, c.log, err)
		return
	}
	v.Form.AppleID = in.AppleID
	v.Form.Error = sentence(invalid.Message)
	v.Form.ErrorField = invalid.Field
	// The service records a refused certificate as the last upload's
	// failure; Details then points to the form's alert rather than show
	// the same reason twice. An older failure (this refusal was about the
	// Apple ID) is still shown in full.
	v.UploadFailureInForm = v.UploadFailed && v.UploadFailureReason == v.Form.Error
	// The confirmation stays offered until it is sent with the file.
	v.Form.ConfirmTopicChange = invalid.Code == pushcert.CodeTopicMismatch || invalid == errConfirmWithoutFile
	s := newShell(r, c.dev, "Status")
	s.Path = "/"
	render(w, r, c.log, http.StatusUnprocessableEntity, views.StatusPage(s, v))
}

// parseUploadForm reads the multipart upload form into the Update it asks
// for (without the actor). The body is read here and nowhere else, after
// the route's role check, within maxUploadBody. An Apple ID left empty keeps
// the stored one, as the service defines.
func parseUploadForm(w http.ResponseWriter, r *http.Request) (pushcert.Update, error) {
	var u pushcert.Update
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	if err := r.ParseMultipartForm(maxUploadBody); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return u, pushcert.TooLarge()
		}
		return u, errFormUnreadable
	}
	form := r.MultipartForm
	u.AppleID = firstValue(form, "apple_id")
	u.AllowTopicChange = firstValue(form, "allow_topic_change") == "yes"
	if v := firstValue(form, "version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return u, errFormUnreadable
		}
		if n > 0 { // 0: the page knew no version; nothing is required
			u.If = pushcert.AtVersion(n)
		}
	}
	if files := form.File["certificate"]; len(files) > 0 {
		data, err := readUpload(files[0])
		if err != nil {
			return u, err
		}
		u.Certificate = data
		u.FileName = files[0].Filename
	}
	return u, nil
}

// errConfirmWithoutFile refuses a topic-change confirmation sent without
// the certificate it is about. Nothing is recorded: no certificate was sent.
var errConfirmWithoutFile = &pushcert.ValidationError{Field: "certificate", Code: pushcert.CodeNoCertificate,
	Message: "the topic change was confirmed, but no certificate file was chosen: the browser does not keep the file after a refusal, so choose the certificate file again, tick Replace the topic anyway, and upload"}

// readUpload returns the file's contents, or nil when the form was sent
// without choosing a file (browsers send an empty part with no name). It
// reads at most one byte past pushcert.MaxUploadSize: the service judges
// the size, as it does for the API.
func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Filename == "" && fh.Size == 0 {
		return nil, nil
	}
	f, err := fh.Open()
	if err != nil {
		return nil, errFormUnreadable
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, pushcert.MaxUploadSize+1))
	if err != nil {
		return nil, errFormUnreadable
	}
	// A chosen but empty file is still an upload: the service refuses it
	// with a reason, rather than treating it as "change only the Apple ID".
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func firstValue(form *multipart.Form, name string) string {
	if vs := form.Value[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// GenerateCSR handles POST /csr: it makes a new key pair and CSR and answers
// with the file to take to Apple's portal. The active certificate is not
// touched.
func (c *Certificate) GenerateCSR(w http.ResponseWriter, r *http.Request) {
	actor, _ := auth.UserFrom(r.Context())
	pk, err := c.svc.GenerateCSR(r.Context(), actor)
	if err != nil {
		serverError(w, r, c.log, fmt.Errorf("generate csr: %w", err))
		return
	}
	c.writeCSR(w, pk)
}

// DownloadCSR handles GET /csr: the latest pending CSR again, the same file
// GenerateCSR gave.
func (c *Certificate) DownloadCSR(w http.ResponseWriter, r *http.Request) {
	pk, err := c.svc.LatestCSR(r.Context())
	if err != nil {
		pageError(w, r, c.log, c.dev, fmt.Errorf("read latest csr: %w", err))
		return
	}
	c.writeCSR(w, pk)
}

// writeCSR answers with the request to take to Apple as a file named for
// the organization and the day it was made: the vendor-signed request
// Apple's portal takes, or the PEM CSR for an outside signing service.
func (c *Certificate) writeCSR(w http.ResponseWriter, pk pushcert.PendingKey) {
	name, contentType := csrFileName(c.orgSlug, pk.CreatedAt, pk.VendorSigned)
	writeDownload(w, name, contentType, []byte(pk.Request))
}

// csrFileName names a CSR download: pushcert-<org>-YYYY-MM-DD.csr for a PEM
// CSR (application/pkcs10), or pushcert-<org>-YYYY-MM-DD-signed-request.plist
// for a vendor-signed request, the base64 plist Apple's portal takes.
func csrFileName(orgSlug string, created time.Time, vendorSigned bool) (name, contentType string) {
	base := "pushcert-"
	if orgSlug != "" {
		base += orgSlug + "-"
	}
	base += created.UTC().Format(time.DateOnly)
	if vendorSigned {
		return base + "-signed-request.plist", "application/octet-stream"
	}
	return base + ".csr", "application/pkcs10"
}

// slug turns an organization name into a file-name part: lowercase ASCII
// letters and digits joined by single hyphens, at most 40 characters.
func slug(s string) string {
	const maxLen = 40
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if b.Len() >= maxLen {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteRune(r)
		} else {
			hyphen = true
		}
	}
	out := b.String() // ASCII only, so cutting bytes is safe
	return strings.TrimRight(out[:min(len(out), maxLen)], "-")
}
