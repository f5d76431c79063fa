package handlers

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/session"
)

// errFormUnreadable is a form the handler could not read (a broken
// multipart body, a version that is not a number). Nothing was changed.
var errFormUnreadable = errors.New("form unreadable")

// pageAnswer is how a page answers an error: the status and the error
// page's title and message, written for the person who sent the form.
type pageAnswer struct {
	status         int
	title, message string
}

const changedMeanwhile = "The push certificate was changed by someone else after this page was loaded, so nothing was changed. Reload the status page, check what changed, and upload again if it is still needed."

// pageErrors is the pages' one table from an error to its answer: the
// service's sentinel errors and the pages' own. A validation error that
// is not in pageCodes is not here: the form is shown again with it.
var pageErrors = []struct {
	err    error
	answer pageAnswer
}{
	{pushcert.ErrPreconditionFailed, pageAnswer{http.StatusConflict, "Changed by someone else", changedMeanwhile}},
	{pushcert.ErrConflict, pageAnswer{http.StatusConflict, "Changed by someone else", changedMeanwhile}},
	{pushcert.ErrNoCSR, pageAnswer{http.StatusNotFound, "No CSR to download",
		"No certificate signing request is waiting for a certificate. Generate one with the button on the status page."}},
	{apns.ErrNoCertificate, pageAnswer{http.StatusConflict, "Nothing to check",
		"There is no active push certificate to test yet. Upload one first; it is checked as soon as it is active."}},
	{delivery.ErrNoTargets, pageAnswer{http.StatusConflict, "No delivery targets",
		"No delivery targets are configured, so there is nothing to deliver to. An operator lists them in the file PUSHCERT_DELIVERY_CONFIG names (see docs/delivery.md)."}},
	{delivery.ErrNoActiveKey, pageAnswer{http.StatusConflict, "No active certificate",
		"There is no active push certificate to deliver or export yet. Upload one first; it is delivered as soon as it is active."}},
	{delivery.ErrExportDisabled, pageAnswer{http.StatusForbidden, "Export turned off",
		"Export is turned off on this pushcert: an operator set PUSHCERT_DISABLE_EXPORT, so the certificate and private key cannot be downloaded. Nothing was exported. MDM servers get them through delivery (see docs/delivery.md)."}},
	{session.ErrEnded, pageAnswer{http.StatusNotFound, "Session already ended",
		"That session has ended already: its user signed out, it expired, or another administrator signed it out. Nothing was changed."}},
	{errFormUnreadable, pageAnswer{http.StatusBadRequest, "Form not readable",
		"pushcert could not read the submitted form. Reload the status page and try again. Nothing was changed."}},
}

// pageCodes answers the validation errors that get an error page of their
// own rather than the form again.
var pageCodes = map[string]pageAnswer{
	pushcert.CodeTooLarge: {http.StatusRequestEntityTooLarge, "File too large",
		"The file is larger than 1 MiB, so it cannot be a push certificate (they are about 2 KiB). Choose the .pem file Apple issued and upload it again. Nothing was changed."},
}

// pageAnswerFor finds err's answer in the table; ok is false for an error
// the pages do not expect (a 500) and for a validation error the form
// shows itself.
func pageAnswerFor(err error) (a pageAnswer, ok bool) {
	if ve, isVE := errors.AsType[*pushcert.ValidationError](err); isVE {
		a, ok = pageCodes[ve.Code]
		return a, ok
	}
	for _, row := range pageErrors {
		if errors.Is(err, row.err) {
			return row.answer, true
		}
	}
	return pageAnswer{}, false
}

// pageError answers a page request that failed with err: its row of the
// table, or the generic 500 page (err is logged, never shown).
func pageError(w http.ResponseWriter, r *http.Request, log *slog.Logger, dev bool, err error) {
	if a, ok := pageAnswerFor(err); ok {
		RenderError(w, r, log, dev, a.status, a.title, a.message)
		return
	}
	serverError(w, r, log, err)
}
