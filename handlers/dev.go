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
	v := views.DevAppleView{IssuerCA: d.ca.Cert.Subject.CommonName}
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

// Issue handles POST /dev/apple/issue: it issues a push certificate for the
// latest pending CSR and answers it as a .pem download. The form field topic
// is "renew" (the active certificate's topic, or a new one when there is
// none) or "new" (a different topic, to see pushcert refuse it).
func (d *DevApple) Issue(w http.ResponseWriter, r *http.Request) {
	renew, err := parseIssueForm(w, r)
	if err != nil {
		RenderError(w, r, d.log, true, http.StatusBadRequest, "Form not readable",
			`Choose "renew" or "new" on the Dev Apple page and try again.`)
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
	if renew && st.Certificate != nil {
		topic = st.Certificate.Topic
	}
	der, err := d.ca.IssueForCSR(pk.CSRDER, applesim.Request{Topic: topic})
	if err != nil {
		serverError(w, r, d.log, fmt.Errorf("issue dev certificate: %w", err))
		return
	}
	name := "apple-push-cert-dev-" + d.now().UTC().Format(time.DateOnly) + ".pem"
	writeDownload(w, name, "application/x-pem-file", applesim.PEM(der))
}

// parseIssueForm reads the topic choice: true for "renew", false for "new".
func parseIssueForm(w http.ResponseWriter, r *http.Request) (renew bool, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDevIssueBody)
	if err := r.ParseForm(); err != nil {
		return false, err
	}
	switch t := r.PostFormValue("topic"); t {
	case "renew":
		return true, nil
	case "new":
		return false, nil
	default:
		return false, fmt.Errorf("unknown topic choice %q", t)
	}
}
