package handlers

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
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
