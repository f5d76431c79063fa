package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// The resource's names as the device-management API spells them.
const (
	apiEntityType     = "#microsoft.graph.applePushNotificationCertificate"
	apiResourcePath   = "/deviceManagement/applePushNotificationCertificate"
	apiGenerateAction = "generateApplePushNotificationCertificateSigningRequest"
	apiDownloadFunc   = "downloadApplePushNotificationCertificateSigningRequest"
	apiMetadataPath   = "/$metadata" // the CSDL document, under each version
)

// The error codes the API answers with, besides the service's validation
// codes (pushcert.Code*), which it passes through unchanged.
const (
	apiCodeInvalidRequest   = "invalidRequest"
	apiCodeNotFound         = "notFound"
	apiCodeMethodNotAllowed = "methodNotAllowed"
	apiCodeUnsupportedMedia = "unsupportedMediaType"
	apiCodeTooLarge         = pushcert.CodeTooLarge
	apiCodeResourceModified = "resourceModified"
	apiCodeConflict         = "conflict"
	apiCodeTopicMismatch    = pushcert.CodeTopicMismatch
)

// The two ways a write opts in to a topic change, which makes every
// enrolled device re-enroll.
const (
	apiTopicChangeParam  = "allowTopicChange"
	apiTopicChangePrefer = "allow-topic-change"
)

// API serves the push certificate as JSON, shaped like the
// device-management API's applePushNotificationCertificate resource, so
// scripts written for that API work by changing only the base URL and the
// token. web mounts it under /v1.0 and /beta behind bearer-token auth.
type API struct {
	log     *slog.Logger
	svc     *pushcert.Service
	baseURL string
	entity  entityCache
}

// NewAPI returns the JSON API over svc. baseURL is the external URL the
// server is reached at (no trailing slash needed); the OData context and
// Location URLs start with it.
func NewAPI(log *slog.Logger, svc *pushcert.Service, baseURL string) *API {
	return &API{log: log, svc: svc, baseURL: strings.TrimRight(baseURL, "/")}
}

// Get handles GET /v1.0/deviceManagement/applePushNotificationCertificate
// (and the same under /beta): the entity with an ETag, or 404 while nothing
// was ever uploaded. $select=a,b limits the properties returned.
func (h *API) Get(w http.ResponseWriter, r *http.Request) {
	sel, err := parseSelect(r.URL.Query())
	var st pushcert.State
	if err == nil {
		st, err = h.svc.State(r.Context())
	}
	switch {
	case err != nil:
		h.writeError(w, r, fmt.Errorf("get certificate: %w", err))
	case !st.Exists():
		WriteAPIError(w, http.StatusNotFound, apiCodeNotFound,
			"No push certificate has been uploaded yet: generate a CSR with POST "+apiResourcePath+"/"+apiGenerateAction+
				", take it to Apple's Push Certificates Portal, and upload the certificate Apple issues with POST or PATCH "+apiResourcePath+".")
	default:
		h.writeEntity(w, r, http.StatusOK, st, sel)
	}
}

// Patch handles PATCH /v1.0/deviceManagement/applePushNotificationCertificate
// (and /beta). The JSON body carries appleIdentifier and/or certificate (PEM
// text, or bare base64 of the DER); the properties the server derives are
// accepted and ignored. The first upload may be a PATCH too.
//
// A certificate with a different topic than the active one is refused with
// 409 topicMismatch, because every enrolled device would have to re-enroll,
// unless the request opts in with the query parameter allowTopicChange=true
// or the header "Prefer: allow-topic-change" (answered with
// "Preference-Applied: allow-topic-change"). If-Match with an ETag from an
// earlier response (or *) makes the write conditional: 412 when stale.
func (h *API) Patch(w http.ResponseWriter, r *http.Request) {
	h.write(w, r, false)
}

// Create handles POST /v1.0/deviceManagement/applePushNotificationCertificate
// (and /beta), the seed's create: 201 with the entity and a Location header
// when no certificate exists yet, 409 conflict when one does (update it with
// PATCH). The body, the topic-change opt-in and If-Match are as for Patch.
func (h *API) Create(w http.ResponseWriter, r *http.Request) {
	h.write(w, r, true)
}

// GenerateCSR handles POST
// /v1.0/deviceManagement/applePushNotificationCertificate/generateApplePushNotificationCertificateSigningRequest
// (also with "()", and under /beta): every call makes a new pending key and
// answers {"value": request}, the text to take to Apple's portal. A request
// body, if any, is ignored.
func (h *API) GenerateCSR(w http.ResponseWriter, r *http.Request) {
	actor, err := apiActor(r)
	var pk pushcert.PendingKey
	if err == nil {
		pk, err = h.svc.GenerateCSR(r.Context(), actor)
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("generate csr: %w", err))
		return
	}
	h.writeString(w, r, pk.Request)
}

// DownloadCSR handles GET
// /v1.0/deviceManagement/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest
// (also with "()", and under /beta): {"value": request} for the newest
// pending CSR, generating one when none is pending.
func (h *API) DownloadCSR(w http.ResponseWriter, r *http.Request) {
	actor, err := apiActor(r)
	var pk pushcert.PendingKey
	if err == nil {
		pk, err = h.svc.LatestCSR(r.Context())
		if errors.Is(err, pushcert.ErrNotFound) {
			pk, err = h.svc.GenerateCSR(r.Context(), actor)
		}
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("download csr: %w", err))
		return
	}
	h.writeString(w, r, pk.Request)
}

// fail answers a request the server could not complete with a generic 500
// in the API's error shape, or, when the client went away meanwhile, with
// only a line at debug level (see abandon): that is not a server error.
func (h *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(r, err) {
		abandon(w, r, h.log, err)
		return
	}
	apiServerError(w, r, h.log, err)
}

// NotFound handles every other path under /v1.0/ and /beta/: 405 with an
// Allow header for a known path asked with the wrong method (the mux sends
// those here, since this pattern matches any method), 404 otherwise, both
// in the API's error shape.
func (h *API) NotFound(w http.ResponseWriter, r *http.Request) {
	if allow := apiAllowedMethods(r.URL.Path); allow != "" {
		w.Header().Set("Allow", allow)
		WriteAPIError(w, http.StatusMethodNotAllowed, apiCodeMethodNotAllowed,
			fmt.Sprintf("The method %s is not allowed on this resource; use %s.", clipText(r.Method, 20), allow))
		return
	}
	WriteAPIError(w, http.StatusNotFound, apiCodeNotFound,
		"There is no API resource at this path. The API serves "+apiResourcePath+" and its "+
			apiGenerateAction+" and "+apiDownloadFunc+" functions, and the service metadata at "+apiMetadataPath+", under /v1.0 and /beta.")
}

// write is Patch and Create: decode the request, one service call (they
// differ only in which), the API's error table, the entity.
func (h *API) write(w http.ResponseWriter, r *http.Request, create bool) {
	in, err := parseAPIWrite(w, r)
	var st pushcert.State
	if err == nil {
		u := pushcert.Update{
			Actor:            in.actor,
			AppleID:          in.body.appleID,
			Certificate:      in.body.certificate,
			AllowTopicChange: in.allowTopicChange,
			If:               in.precondition,
		}
		if create {
			st, err = h.svc.Create(r.Context(), u)
		} else {
			st, err = h.svc.Update(r.Context(), u)
		}
	}
	if err != nil {
		h.writeError(w, r, fmt.Errorf("write certificate: %w", err))
		return
	}
	if in.preferTopicChange {
		w.Header().Set("Preference-Applied", apiTopicChangePrefer)
	}
	status := http.StatusOK
	if create {
		status = http.StatusCreated
		w.Header().Set("Location", h.baseURL+apiVersionPrefix(r)+apiResourcePath)
	}
	h.writeEntity(w, r, status, st, in.sel)
}

// apiVersionPrefix is the API version the request came in under, "/v1.0"
// or "/beta", so that the URLs in a response point to the same version.
func apiVersionPrefix(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/beta/") {
		return "/beta"
	}
	return "/v1.0"
}

// apiAllowedMethods returns the Allow header of a known API path, or ""
// for a path the API does not serve.
func apiAllowedMethods(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1.0")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/beta"); !ok {
			return ""
		}
	}
	if rest == apiMetadataPath {
		return "GET, HEAD"
	}
	fn, ok := strings.CutPrefix(rest, apiResourcePath)
	switch {
	case !ok:
		return ""
	case fn == "":
		return "GET, HEAD, PATCH, POST"
	case fn == "/"+apiGenerateAction || fn == "/"+apiGenerateAction+"()":
		return "POST"
	case fn == "/"+apiDownloadFunc || fn == "/"+apiDownloadFunc+"()":
		return "GET, HEAD"
	default:
		return ""
	}
}
