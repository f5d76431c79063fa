package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/export"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// Headers the request-ID middleware sets on every response; the API's error
// bodies repeat them.
const (
	HeaderRequestID       = "request-id"
	HeaderClientRequestID = "client-request-id"
)

// apiError is the device-management API's error shape.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	InnerError apiInnerError `json:"innerError"`
}

type apiInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id,omitempty"`
}

// WriteAPIError answers an API request with status and the error shape
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
// message must be safe to show a client: never an internal error's text.
func WriteAPIError(w http.ResponseWriter, status int, code, message string) {
	body := apiError{Error: apiErrorBody{
		Code:    code,
		Message: message,
		InnerError: apiInnerError{
			Date:            time.Now().UTC().Format("2006-01-02T15:04:05"),
			RequestID:       w.Header().Get(HeaderRequestID),
			ClientRequestID: w.Header().Get(HeaderClientRequestID),
		},
	}}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// apiServerError logs err with the request and answers a generic 500 in the
// API's error shape; err's text never reaches the client.
func apiServerError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", w.Header().Get(HeaderRequestID), "err", err)
	WriteAPIError(w, http.StatusInternalServerError, "internalServerError", "The server could not complete the request. Nothing was changed; try again later.")
}

// apiErrors is the API's one table from the service's sentinel errors to
// the answer: status, error code and message. Validation errors are
// answered by their code (apiCodeStatus), a request the API could not
// decode by its own apiRequestError, an export's refused passphrase by its
// *export.PassphraseError, anything else with a 500.
var apiErrors = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{pushcert.ErrPreconditionFailed, http.StatusPreconditionFailed, apiCodeResourceModified,
		"The certificate was changed since the ETag in If-Match was read. Nothing was changed: GET it again and retry with the new ETag."},
	{pushcert.ErrConflict, http.StatusConflict, apiCodeConflict,
		"The certificate was changed by someone else while this request was handled. Nothing was changed: GET it again and retry."},
	{pushcert.ErrExists, http.StatusConflict, apiCodeConflict,
		"A push certificate already exists: upload its renewal with PATCH instead of POST."},
	{apns.ErrNoCertificate, http.StatusConflict, apiCodeConflict,
		"There is no active push certificate to check yet: upload one first."},
	{delivery.ErrNoTargets, http.StatusConflict, apiCodeConflict,
		"No delivery targets are configured, so there is nothing to deliver to: list them in the file PUSHCERT_DELIVERY_CONFIG names (see docs/delivery.md)."},
	{delivery.ErrNoActiveKey, http.StatusConflict, apiCodeConflict,
		"There is no active push certificate to deliver or export yet: upload one first."},
	{delivery.ErrExportDisabled, http.StatusForbidden, apiCodeExportDisabled,
		"Export is turned off on this pushcert (PUSHCERT_DISABLE_EXPORT): the certificate and private key cannot be fetched. MDM servers get them through delivery (see docs/delivery.md)."},
}

// apiCodeExportDisabled is the code of an export refused because the
// operator turned export off, told apart from a token without the role.
const apiCodeExportDisabled = "exportDisabled"

// apiCodeStatus is the status of a validation error by its code; a code not
// listed is 400. A topic change conflicts with the devices' enrollment,
// it is not a malformed request.
var apiCodeStatus = map[string]int{
	pushcert.CodeTopicMismatch: http.StatusConflict,
	pushcert.CodeTooLarge:      http.StatusRequestEntityTooLarge,
}

// writeError answers an API request that failed with err through the
// table. Only messages written for clients reach the body; err itself is
// logged when it is a server error.
func (h *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeAPIErrorFor(w, r, h.log, err)
}

// writeAPIErrorFor answers any API request, the device-management
// resource's or pushcert's own, through the table; log records the
// errors that are the server's.
func writeAPIErrorFor(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if reqErr, ok := errors.AsType[*apiRequestError](err); ok {
		reqErr.write(w)
		return
	}
	if ve, ok := errors.AsType[*pushcert.ValidationError](err); ok {
		writeValidationError(w, ve)
		return
	}
	// An export's passphrase refusal is written for the client and never
	// quotes the passphrase.
	if pe, ok := errors.AsType[*export.PassphraseError](err); ok {
		WriteAPIError(w, http.StatusBadRequest, apiCodeInvalidRequest, sentence(pe.Message))
		return
	}
	for _, row := range apiErrors {
		if errors.Is(err, row.err) {
			WriteAPIError(w, row.status, row.code, row.message)
			return
		}
	}
	if clientGone(r, err) {
		abandon(w, r, log, err)
		return
	}
	apiServerError(w, r, log, err)
}

// writeValidationError answers a refusal by the service with its code and
// message, prefixed by the property it is about; a refused topic change
// says how to opt in.
func writeValidationError(w http.ResponseWriter, ve *pushcert.ValidationError) {
	msg := ve.Message
	if ve.Field != "" {
		msg = ve.Field + ": " + msg
	}
	if ve.Code == pushcert.CodeTopicMismatch {
		msg += ". To accept the new topic, repeat the request with the query parameter " + apiTopicChangeParam +
			"=true or the header \"Prefer: " + apiTopicChangePrefer + "\"."
	}
	status, ok := apiCodeStatus[ve.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	WriteAPIError(w, status, ve.Code, msg)
}
