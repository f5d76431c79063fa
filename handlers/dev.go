package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// maxDevIssueBody bounds the dev portal's one-field form.
const maxDevIssueBody = 4 << 10

// DevApple plays Apple's Push Certificates Portal in development mode: it
// issues test push certificates for the pending CSR from a local test
// authority. web mounts it only with -dev; production never trusts the CA.
type DevApple struct {
	log *slog.Logger
	svc *pushcert.Service
	ca  *applesim.CA
	now func() time.Time
}

// NewDevApple returns the simulated Apple portal, issuing from ca.
func NewDevApple(log *slog.Logger, svc *pushcert.Service, ca *applesim.CA) *DevApple {
	return &DevApple{log: log, svc: svc, ca: ca, now: svc.Now}
}

// Show handles GET /dev/apple: what the simulated portal does and whether a
// CSR is waiting for a certificate.
func (d *DevApple) Show(w http.ResponseWriter, r *http.Request) {
	st, err := d.svc.State(r.Context())
	if err != nil {
		serverError(w, r, d.log, err)
		return
	}
	v := views.DevAppleView{IssuerCA: d.ca.Cert.Subject.CommonName, SoonDays: d.soonDays()}
	if st.Certificate != nil {
		v.Topic = st.Certificate.Topic
	}
	pk, err := d.svc.LatestCSR(r.Context())
	switch {
	case errors.Is(err, pushcert.ErrNotFound):
	case err != nil:
		serverError(w, r, d.log, fmt.Errorf("read latest csr: %w", err))
		return
	default:
		v.Pending = &views.PendingView{
			Created:      formatTime(pk.CreatedAt),
			CreatedBy:    actorLabel(pk.CreatedBy),
			VendorSigned: pk.VendorSigned,
		}
	}
	render(w, r, d.log, http.StatusOK, views.DevApplePage(newShell(r, true, "Dev Apple"), v))
}

// The validity choices of the simulated portal: Apple issues only
// one-year certificates, the others exist so that "Expires soon",
// "Expired" and the refusal of an expired certificate can be seen without
// waiting a year.
const (
	devValidityYear    = "year"    // from an hour ago for one year, as Apple issues
	devValiditySoon    = "soon"    // from an hour ago for devSoonDays days
	devValidityMinutes = "minutes" // from an hour ago for devMinutes: uploaded, it expires while you watch
	devValidityExpired = "expired" // from a year ago until yesterday
)

// devMinutes is how long a "minutes" certificate is valid.
const devMinutes = 3 * time.Minute

// devSoonDays is how long a "soon" certificate is valid, unless the
// status page's warning window is shorter (see soonDays).
const devSoonDays = 5

// issueForm is the Dev Apple page's form.
type issueForm struct {
	renew    bool   // topic "renew" (true) or "new" (false)
	validity string // one of the devValidity* choices
}

// Issue handles POST /dev/apple/issue: it issues a push certificate for the
// latest pending CSR and answers it as a .pem download. The form field topic
// is "renew" (the active certificate's topic, or a new one when there is
// none) or "new" (a different topic, to see pushcert refuse it). The field
// validity is "year" (the default, as Apple issues), "soon" (expires in
// devSoonDays days) or "expired" (expired yesterday, to see the upload
// refuse it).
func (d *DevApple) Issue(w http.ResponseWriter, r *http.Request) {
	in, err := parseIssueForm(w, r)
	if err != nil {
		RenderError(w, r, d.log, true, http.StatusBadRequest, "Form not readable",
			`Choose a topic and a validity on the Dev Apple page and try again.`)
		return
	}
	pk, err := d.svc.LatestCSR(r.Context())
	if errors.Is(err, pushcert.ErrNotFound) {
		RenderError(w, r, d.log, true, http.StatusConflict, "No CSR is waiting",
			"Apple issues a certificate for a CSR, and none is waiting. Generate a CSR on the status page first, then issue the certificate here.")
		return
	}
	if err != nil {
		serverError(w, r, d.log, fmt.Errorf("read latest csr: %w", err))
		return
	}
	st, err := d.svc.State(r.Context())
	if err != nil {
		serverError(w, r, d.log, err)
		return
	}
	topic := applesim.NewTopic()
	if in.renew && st.Certificate != nil {
		topic = st.Certificate.Topic
	}
	req := applesim.Request{Topic: topic}
	now := d.now()
	switch in.validity {
	case devValiditySoon:
		req.NotBefore = now.Add(-time.Hour)
		req.NotAfter = now.AddDate(0, 0, d.soonDays())
	case devValidityMinutes:
		req.NotBefore = now.Add(-time.Hour)
		req.NotAfter = now.Add(devMinutes)
	case devValidityExpired:
		req.NotBefore = now.AddDate(-1, 0, 0)
		req.NotAfter = now.AddDate(0, 0, -1)
	}
	der, err := d.ca.IssueForCSR(pk.CSRDER, req)
	if err != nil {
		serverError(w, r, d.log, fmt.Errorf("issue dev certificate: %w", err))
		return
	}
	name := "apple-push-cert-dev-" + now.UTC().Format(time.DateOnly) + ".pem"
	writeDownload(w, name, "application/x-pem-file", applesim.PEM(der))
}

// soonDays is the validity in days of a "soon" certificate: devSoonDays,
// or fewer when the configured warning window is shorter, so that the
// certificate shows as expiring soon as soon as it is uploaded.
func (d *DevApple) soonDays() int {
	return max(1, min(devSoonDays, d.svc.ExpiresSoonDays()))
}

// parseIssueForm reads the topic and validity choices. A missing validity
// is a one-year certificate, as the form sent before it had the choice.
func parseIssueForm(w http.ResponseWriter, r *http.Request) (issueForm, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDevIssueBody)
	if err := r.ParseForm(); err != nil {
		return issueForm{}, err
	}
	var in issueForm
	switch t := r.PostFormValue("topic"); t {
	case "renew":
		in.renew = true
	case "new":
	default:
		return issueForm{}, fmt.Errorf("unknown topic choice %q", t)
	}
	switch v := r.PostFormValue("validity"); v {
	case "", devValidityYear:
		in.validity = devValidityYear
	case devValiditySoon, devValidityMinutes, devValidityExpired:
		in.validity = v
	default:
		return issueForm{}, fmt.Errorf("unknown validity choice %q", v)
	}
	return in, nil
}
