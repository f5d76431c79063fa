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

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// MaxUploadBody bounds the upload form's body: the certificate file (at most
// pushcert.MaxUploadSize) plus room for the other fields and the multipart
// framing. It is the same bound web's method override applies.
const MaxUploadBody = pushcert.MaxUploadSize + 64<<10

// Errors of reading the upload form; both change nothing.
var (
	errUploadTooLarge = errors.New("upload too large")
	errFormUnreadable = errors.New("form unreadable")
)

// Certificate serves the changes an administrator makes from the status
// page: generating and downloading CSRs and uploading the certificate.
type Certificate struct {
	log     *slog.Logger
	svc     *pushcert.Service
	orgSlug string
	dev     bool
	now     func() time.Time
}

// NewCertificate returns the certificate handlers over svc. org, the
// organization's name, goes into CSR file names; dev shows the
// development-mode banner on the pages it renders.
func NewCertificate(log *slog.Logger, svc *pushcert.Service, org string, dev bool) *Certificate {
	return &Certificate{log: log, svc: svc, orgSlug: slug(org), dev: dev, now: svc.Now}
}

// uploadInput is what the upload form sends.
type uploadInput struct {
	certificate      []byte // nil when no file was chosen
	appleID          string
	allowTopicChange bool
	version          int64 // the version the page showed; 0 when absent
}

// Upload handles PATCH /certificate, sent by the status page's upload form
// as a POST with _method=PATCH. It uploads a certificate, changes the Apple
// ID, or both. A refusal shows the status page again with the reason and the
// user's input; success redirects to the status page with a confirmation.
func (c *Certificate) Upload(w http.ResponseWriter, r *http.Request) {
	actor, _ := auth.UserFrom(r.Context())
	in, err := parseUploadForm(w, r)
	if err == nil {
		_, err = c.svc.Update(r.Context(), pushcert.Update{
			Actor:            actor,
			AppleID:          in.appleID,
			Certificate:      in.certificate,
			AllowTopicChange: in.allowTopicChange,
			IfVersion:        in.version,
		})
	}
	var invalid *pushcert.ValidationError
	switch {
	case errors.Is(err, errUploadTooLarge):
		RenderError(w, r, c.log, c.dev, http.StatusRequestEntityTooLarge, "File too large",
			"The file is larger than 1 MiB, so it cannot be a push certificate (they are about 2 KiB). Choose the .pem file Apple issued and upload it again. Nothing was changed.")
	case errors.Is(err, errFormUnreadable):
		RenderError(w, r, c.log, c.dev, http.StatusBadRequest, "Form not readable",
			"pushcert could not read the submitted form. Reload the status page and try again. Nothing was changed.")
	case errors.As(err, &invalid):
		c.showRefusal(w, r, in, invalid)
	case errors.Is(err, pushcert.ErrConflict):
		RenderError(w, r, c.log, c.dev, http.StatusConflict, "Changed by someone else",
			"The push certificate was changed by someone else after this page was loaded, so nothing was changed. Reload the status page, check what changed, and upload again if it is still needed.")
	case err != nil:
		serverError(w, r, c.log, fmt.Errorf("update certificate: %w", err))
	case in.certificate == nil:
		http.Redirect(w, r, "/?done="+string(views.DoneAppleID), http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/?done="+string(views.DoneUploaded), http.StatusSeeOther)
	}
}

// showRefusal shows the status page again with status 422: the refusal
// stands out above the form, the Apple ID the user typed is kept, and a
// refused topic change offers the confirmation to replace the topic.
func (c *Certificate) showRefusal(w http.ResponseWriter, r *http.Request, in uploadInput, invalid *pushcert.ValidationError) {
	v, err := loadStatus(r.Context(), c.svc, c.now())
	if err != nil {
		serverError(w, r, c.log, err)
		return
	}
	v.Form.AppleID = in.appleID
	v.Form.Error = sentence(invalid.Message)
	v.Form.ErrorField = invalid.Field
	// The service records a refused certificate as the last upload's
	// failure; Details then points to the form's alert rather than show
	// the same reason twice. An older failure (this refusal was about the
	// Apple ID) is still shown in full.
	v.UploadFailureInForm = v.UploadFailed && v.UploadFailureReason == v.Form.Error
	v.Form.ConfirmTopicChange = invalid.Code == pushcert.CodeTopicMismatch
	s := newShell(r, c.dev, "Status")
	s.Path = "/"
	render(w, r, c.log, http.StatusUnprocessableEntity, views.StatusPage(s, v))
}

// parseUploadForm reads the multipart upload form. web's method override
// has usually parsed it already, within the same bound; a request that
// reaches Upload another way is bounded here.
func parseUploadForm(w http.ResponseWriter, r *http.Request) (uploadInput, error) {
	var in uploadInput
	if r.MultipartForm == nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBody)
		if err := r.ParseMultipartForm(MaxUploadBody); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return in, errUploadTooLarge
			}
			return in, errFormUnreadable
		}
	}
	form := r.MultipartForm
	in.appleID = strings.TrimSpace(firstValue(form, "apple_id"))
	in.allowTopicChange = firstValue(form, "allow_topic_change") == "yes"
	if v := firstValue(form, "version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return in, errFormUnreadable
		}
		in.version = n
	}
	if files := form.File["certificate"]; len(files) > 0 {
		data, err := readUpload(files[0])
		if err != nil {
			return in, err
		}
		in.certificate = data
	}
	return in, nil
}

// readUpload returns the file's contents, or nil when the form was sent
// without choosing a file (browsers send an empty part with no name).
func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Filename == "" && fh.Size == 0 {
		return nil, nil
	}
	if fh.Size > pushcert.MaxUploadSize {
		return nil, errUploadTooLarge
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
	if len(data) > pushcert.MaxUploadSize {
		return nil, errUploadTooLarge
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
	switch {
	case errors.Is(err, pushcert.ErrNotFound):
		RenderError(w, r, c.log, c.dev, http.StatusNotFound, "No CSR to download",
			"No certificate signing request is waiting for a certificate. Generate one with the button on the status page.")
	case err != nil:
		serverError(w, r, c.log, fmt.Errorf("read latest csr: %w", err))
	default:
		c.writeCSR(w, pk)
	}
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
