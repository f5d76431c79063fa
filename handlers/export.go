package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/export"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// The query the sign-in callback adds to the export page's address when it
// returns from a fresh sign-in pushcert asked for: ?signin=renewed, or
// ?signin=old when the provider sent back an earlier sign-in instead.
const (
	SignInQuery   = "signin"
	SignInRenewed = "renewed"
	SignInOld     = "old"
)

// How the history says an export was asked for.
const (
	exportViaConsole = "the console"
	exportViaAPI     = "the API"
)

// maxExportBody bounds an export request's body, form or JSON: a format
// and two passphrases of at most export.MaxPassphrase characters.
const maxExportBody = 16 << 10

// Export serves the export of the active certificate and its private key:
// the console's page for administrators and the API for tokens of the
// export role. web checks the role and, for the console, a recent sign-in
// before these handlers run; the Deliverer records every export (and so
// raises the alert) before the file is handed out.
type Export struct {
	log   *slog.Logger
	svc   *pushcert.Service
	deliv *delivery.Deliverer // nil: export is not available
	dev   bool
	// signInAge is how recent a sign-in web requires, for the page's
	// wording.
	signInAge time.Duration
}

// NewExport returns the export handlers over deliv; a nil deliv refuses
// every export as turned off.
func NewExport(log *slog.Logger, svc *pushcert.Service, deliv *delivery.Deliverer, dev bool, signInAge time.Duration) *Export {
	return &Export{log: log, svc: svc, deliv: deliv, dev: dev, signInAge: signInAge}
}

// exportRequest is a decoded export request, from the form or the API.
type exportRequest struct {
	format     export.Format
	passphrase string
}

// exportFormError is a form the page shows again with its message (a
// passphrase typed differently twice, an unknown format).
type exportFormError struct{ message string }

func (e *exportFormError) Error() string { return e.message }

// Show handles GET /export: the formats, the passphrase fields and the
// note that exports are recorded, or why nothing can be exported.
func (h *Export) Show(w http.ResponseWriter, r *http.Request) {
	v, err := h.view(r, string(export.PKCS12Compatible))
	if err != nil {
		serverError(w, r, h.log, fmt.Errorf("show export page: %w", err))
		return
	}
	switch r.URL.Query().Get(SignInQuery) {
	case SignInRenewed:
		v.SignIn = views.ExportSignInRenewed
	case SignInOld:
		v.SignIn = views.ExportSignInOld
	}
	render(w, r, h.log, http.StatusOK, views.ExportPage(newShell(r, h.dev, "Export"), v))
}

// Download handles POST /export, the page's Download button: the file
// as a download, or the form again (422) with what to change. web has
// checked the admin role and a recent sign-in.
func (h *Export) Download(w http.ResponseWriter, r *http.Request) {
	in, chosen, err := parseExportForm(w, r)
	var file export.File
	if err == nil {
		file, err = h.export(r, in, exportViaConsole)
	}
	var pe *export.PassphraseError
	var fe *exportFormError
	switch {
	case errors.As(err, &pe):
		h.refuse(w, r, chosen, sentence(pe.Message))
	case errors.As(err, &fe):
		h.refuse(w, r, chosen, fe.message)
	case err != nil:
		pageError(w, r, h.log, h.dev, fmt.Errorf("export: %w", err))
	default:
		writeDownload(w, file.Name, file.ContentType, file.Data)
	}
}

// refuse shows the form again with message, the chosen format kept and the
// passphrase fields empty.
func (h *Export) refuse(w http.ResponseWriter, r *http.Request, chosen, message string) {
	v, err := h.view(r, chosen)
	if err != nil {
		serverError(w, r, h.log, fmt.Errorf("show export page: %w", err))
		return
	}
	v.Error = message
	render(w, r, h.log, http.StatusUnprocessableEntity, views.ExportPage(newShell(r, h.dev, "Export"), v))
}

// API handles POST /api/pushcert/export with {"format": ..., "passphrase":
// ...}: the file itself, for a token of the export role (web checks it).
func (h *Export) API(w http.ResponseWriter, r *http.Request) {
	in, err := parseExportJSON(w, r)
	var file export.File
	if err == nil {
		file, err = h.export(r, in, exportViaAPI)
	}
	if err != nil {
		writeAPIErrorFor(w, r, h.log, fmt.Errorf("export: %w", err))
		return
	}
	writeDownload(w, file.Name, file.ContentType, file.Data)
}

// export is the one call both transports make.
func (h *Export) export(r *http.Request, in exportRequest, via string) (export.File, error) {
	if h.deliv == nil {
		return export.File{}, delivery.ErrExportDisabled
	}
	u, ok := auth.UserFrom(r.Context())
	if !ok {
		return export.File{}, errors.New("no user in the request")
	}
	return h.deliv.Export(r.Context(), u, in.format, in.passphrase, via)
}

// view is the export page with the format chosen checked.
func (h *Export) view(r *http.Request, chosen string) (views.ExportView, error) {
	v := views.ExportView{
		Enabled:       h.deliv != nil && h.deliv.ExportEnabled(),
		Format:        chosen,
		MinPassphrase: export.MinPassphrase,
		SignInAge:     durationWords(h.signInAge),
	}
	for _, o := range export.Formats() {
		v.Formats = append(v.Formats, views.ExportFormat{Value: string(o.Format), Label: o.Label, Description: o.Description})
	}
	if !v.Enabled {
		return v, nil
	}
	st, err := h.svc.State(r.Context())
	if err != nil {
		return views.ExportView{}, err
	}
	if c := st.Certificate; c != nil {
		v.Certificate = &views.ExportCertificate{Topic: c.Topic, Serial: c.SerialNumber, Expiry: formatTime(c.NotAfter)}
	}
	return v, nil
}

// parseExportForm reads the export form. chosen is the format as sent, to
// check it again in a form shown anew; the passphrases are never kept.
func parseExportForm(w http.ResponseWriter, r *http.Request) (in exportRequest, chosen string, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxExportBody)
	if err := r.ParseForm(); err != nil {
		return exportRequest{}, "", errFormUnreadable
	}
	chosen = r.PostForm.Get("format")
	f, err := export.ParseFormat(chosen)
	if err != nil {
		return exportRequest{}, chosen, &exportFormError{"Choose one of the formats below."}
	}
	in = exportRequest{format: f, passphrase: r.PostForm.Get("passphrase")}
	if in.passphrase != r.PostForm.Get("confirm") {
		return exportRequest{}, chosen, &exportFormError{"The two passphrases differ: type the same passphrase in both fields."}
	}
	return in, chosen, nil
}

// parseExportJSON reads the API's {"format": ..., "passphrase": ...}.
func parseExportJSON(w http.ResponseWriter, r *http.Request) (exportRequest, error) {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return exportRequest{}, err
	}
	var body struct {
		Format     string `json:"format"`
		Passphrase string `json:"passphrase"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxExportBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return exportRequest{}, &apiRequestError{status: http.StatusRequestEntityTooLarge, code: apiCodeTooLarge,
			message: fmt.Sprintf("The request body is larger than %d KiB; an export request is a format and a passphrase.", maxExportBody>>10)}
	}
	// The decoder's own message may quote the body, and with it a
	// passphrase: it is not shown.
	if err != nil {
		return exportRequest{}, badRequest(`Send one JSON object with "format" (%s, %s or %s) and, for PKCS#12, "passphrase".`,
			export.PKCS12Compatible, export.PKCS12Modern, export.PEM)
	}
	f, err := export.ParseFormat(body.Format)
	if err != nil {
		return exportRequest{}, badRequest("format: %s", err)
	}
	return exportRequest{format: f, passphrase: body.Passphrase}, nil
}

// durationWords says d in minutes, or in seconds when it is not whole
// minutes: "5 minutes", "1 minute", "90 seconds".
func durationWords(d time.Duration) string {
	n, unit := int(d/time.Minute), "minute"
	if d%time.Minute != 0 {
		n, unit = int(d/time.Second), "second"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
