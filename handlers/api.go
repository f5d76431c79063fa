package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// The resource's names as the device-management API spells them.
const (
	apiEntityType     = "#microsoft.graph.applePushNotificationCertificate"
	apiResourcePath   = "/deviceManagement/applePushNotificationCertificate"
	apiGenerateAction = "generateApplePushNotificationCertificateSigningRequest"
	apiDownloadFunc   = "downloadApplePushNotificationCertificateSigningRequest"
)

// maxAPIBody bounds a request body, both as sent and after decompression: a
// push certificate is about 2 KiB, so 1 MiB leaves room for any real one.
const maxAPIBody = pushcert.MaxUploadSize

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
	var reqErr *apiRequestError
	switch {
	case errors.As(err, &reqErr):
		reqErr.write(w)
	case err != nil:
		h.fail(w, r, fmt.Errorf("get certificate: %w", err))
	case !apiExists(st):
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
			apiGenerateAction+" and "+apiDownloadFunc+" functions under /v1.0 and /beta.")
}

// write is Patch and Create: one path for both, differing only in the
// service method called.
func (h *API) write(w http.ResponseWriter, r *http.Request, create bool) {
	in, err := parseAPIWrite(w, r)
	var st pushcert.State
	if err == nil {
		st, err = h.apply(r.Context(), in, create)
	}
	var (
		reqErr  *apiRequestError
		invalid *pushcert.ValidationError
	)
	switch {
	case errors.As(err, &reqErr):
		reqErr.write(w)
	case errors.Is(err, errAPIPrecondition), in.ifMatch != nil && errors.Is(err, pushcert.ErrConflict):
		WriteAPIError(w, http.StatusPreconditionFailed, apiCodeResourceModified,
			"The certificate was changed since the ETag in If-Match was read. Nothing was changed: GET it again and retry with the new ETag.")
	case errors.Is(err, pushcert.ErrConflict):
		WriteAPIError(w, http.StatusConflict, apiCodeConflict, pushcert.ErrConflict.Error())
	case errors.Is(err, pushcert.ErrExists):
		WriteAPIError(w, http.StatusConflict, apiCodeConflict, pushcert.ErrExists.Error())
	case errors.As(err, &invalid):
		writeValidationError(w, invalid)
	case err != nil:
		h.fail(w, r, fmt.Errorf("write certificate: %w", err))
	default:
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
}

// errAPIPrecondition is If-Match naming no current version.
var errAPIPrecondition = errors.New("if-match does not match")

// apply turns a decoded write into the service call. With If-Match, the
// version the client saw is the one the service must write on, so a
// concurrent change makes the write fail whole instead of overwriting it.
func (h *API) apply(ctx context.Context, in apiWrite, create bool) (pushcert.State, error) {
	u := pushcert.Update{
		Actor:            in.actor,
		AppleID:          in.body.appleID,
		Certificate:      in.body.certificate,
		AllowTopicChange: in.allowTopicChange,
	}
	if in.ifMatch != nil {
		cur, err := h.svc.State(ctx)
		if err != nil {
			return pushcert.State{}, err
		}
		if !in.ifMatch.matches(cur) {
			return pushcert.State{}, errAPIPrecondition
		}
		u.IfVersion = cur.Version
	}
	if create {
		return h.svc.Create(ctx, u)
	}
	return h.svc.Update(ctx, u)
}

// writeValidationError answers a refusal by the service with its code and
// message, prefixed by the property it is about. A topic change is a
// conflict with the devices' enrollment, not a malformed request.
func writeValidationError(w http.ResponseWriter, ve *pushcert.ValidationError) {
	msg := ve.Message
	if ve.Field != "" {
		msg = ve.Field + ": " + msg
	}
	switch ve.Code {
	case pushcert.CodeTopicMismatch:
		WriteAPIError(w, http.StatusConflict, apiCodeTopicMismatch, msg+
			". To accept the new topic, repeat the request with the query parameter "+apiTopicChangeParam+
			"=true or the header \"Prefer: "+apiTopicChangePrefer+"\".")
	case pushcert.CodeTooLarge:
		WriteAPIError(w, http.StatusRequestEntityTooLarge, apiCodeTooLarge, msg)
	default:
		WriteAPIError(w, http.StatusBadRequest, ve.Code, msg)
	}
}

// apiRequestError is a request the handler refuses before calling the
// service. Its message is written for the client and names what is wrong.
type apiRequestError struct {
	status  int
	code    string
	message string
}

func (e *apiRequestError) Error() string { return e.message }

func (e *apiRequestError) write(w http.ResponseWriter) {
	WriteAPIError(w, e.status, e.code, e.message)
}

func badRequest(format string, args ...any) *apiRequestError {
	return &apiRequestError{status: http.StatusBadRequest, code: apiCodeInvalidRequest, message: fmt.Sprintf(format, args...)}
}

// apiWrite is a decoded PATCH or POST.
type apiWrite struct {
	actor             auth.User
	sel               []string
	ifMatch           *apiIfMatch // nil: no If-Match, the write applies to the current version
	allowTopicChange  bool
	preferTopicChange bool // the opt-in came as a Prefer header, to be acknowledged
	body              apiBody
}

// parseAPIWrite decodes everything a write carries: $select, the
// topic-change opt-in, If-Match, the user and the body.
func parseAPIWrite(w http.ResponseWriter, r *http.Request) (apiWrite, error) {
	var in apiWrite
	var err error
	if in.sel, err = parseSelect(r.URL.Query()); err != nil {
		return in, err
	}
	if in.allowTopicChange, in.preferTopicChange, err = parseTopicOptIn(r); err != nil {
		return in, err
	}
	if in.ifMatch, err = parseIfMatch(r.Header.Values("If-Match")); err != nil {
		return in, err
	}
	if in.actor, err = apiActor(r); err != nil {
		return in, err
	}
	data, err := readAPIBody(w, r)
	if err != nil {
		return in, err
	}
	in.body, err = decodeAPIBody(data)
	return in, err
}

// apiActor is the user web's bearer-token middleware put in the context.
// Its absence means a route was mounted without authentication.
func apiActor(r *http.Request) (auth.User, error) {
	u, ok := auth.UserFrom(r.Context())
	if !ok {
		return auth.User{}, errors.New("no authenticated user in the request context")
	}
	return u, nil
}

// parseTopicOptIn reads the explicit consent to a topic change: the query
// parameter allowTopicChange=true or a "Prefer: allow-topic-change" header.
func parseTopicOptIn(r *http.Request) (allow, viaPrefer bool, err error) {
	for _, v := range r.URL.Query()[apiTopicChangeParam] {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			allow = true
		case "false":
		default:
			return false, false, badRequest("the query parameter %s must be true or false", apiTopicChangeParam)
		}
	}
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(pref, ";")
			name, _, _ = strings.Cut(name, "=")
			if strings.EqualFold(strings.TrimSpace(name), apiTopicChangePrefer) {
				allow, viaPrefer = true, true
			}
		}
	}
	return allow, viaPrefer, nil
}

// apiIfMatch is a parsed If-Match header: * or a list of entity tags.
type apiIfMatch struct {
	any  bool
	tags []string // opaque tags without W/ and quotes
}

// parseIfMatch reads If-Match; nil when absent. Weak and strong forms of a
// tag are the same here, since our ETags are weak and clients send back
// what they were given.
func parseIfMatch(values []string) (*apiIfMatch, error) {
	if len(values) == 0 {
		return nil, nil
	}
	m := &apiIfMatch{}
	s := strings.Join(values, ",")
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		if s[0] == '*' {
			m.any = true
			s = s[1:]
			continue
		}
		s = strings.TrimPrefix(s, "W/")
		end := -1
		if strings.HasPrefix(s, `"`) {
			end = strings.IndexByte(s[1:], '"')
		}
		if end < 0 {
			return nil, badRequest(`If-Match must be * or ETags from an earlier response, such as W/"3"`)
		}
		m.tags = append(m.tags, s[1:1+end])
		s = s[end+2:]
	}
	if !m.any && len(m.tags) == 0 {
		return nil, badRequest(`If-Match must be * or ETags from an earlier response, such as W/"3"`)
	}
	return m, nil
}

// matches reports whether the condition holds for cur. * holds when the
// resource exists (as GET would answer 200), as RFC 9110 defines it.
func (m *apiIfMatch) matches(cur pushcert.State) bool {
	if m.any && apiExists(cur) {
		return true
	}
	v := strconv.FormatInt(cur.Version, 10)
	for _, t := range m.tags {
		if t == v {
			return true
		}
	}
	return false
}

// apiETag is the entity tag of a version of the resource.
func apiETag(st pushcert.State) string {
	return `W/"` + strconv.FormatInt(st.Version, 10) + `"`
}

// readAPIBody reads a JSON request body within the 1 MiB limit, as sent and
// after gzip decompression, so a small compressed bomb stops at the limit.
func readAPIBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	enc, err := contentEncoding(r.Header.Values("Content-Encoding"))
	if err != nil {
		return nil, err
	}
	body := http.MaxBytesReader(w, r.Body, maxAPIBody)
	if enc == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, bodyReadError(err)
		}
		defer zr.Close()
		body = http.MaxBytesReader(w, zr, maxAPIBody)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, bodyReadError(err)
	}
	return data, nil
}

// bodyReadError tells a body over the limit from one that cannot be read
// (broken gzip, a connection that ended early).
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &apiRequestError{status: http.StatusRequestEntityTooLarge, code: apiCodeTooLarge,
			message: "The request body is larger than 1 MiB (after decompression); a push certificate is about 2 KiB. Nothing was changed."}
	}
	return badRequest("the request body could not be read: send JSON, uncompressed or as valid gzip")
}

// checkJSONContentType accepts application/json with any parameters, but
// only UTF-8 as its charset.
func checkJSONContentType(ct string) error {
	refuse := &apiRequestError{status: http.StatusUnsupportedMediaType, code: apiCodeUnsupportedMedia,
		message: "Send the request body as JSON with the header Content-Type: application/json."}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return refuse
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return refuse
	}
	return nil
}

// contentEncoding returns "" or "gzip", the body codings accepted.
func contentEncoding(values []string) (string, error) {
	var coding string
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			switch {
			case c == "" || c == "identity":
			case (c == "gzip" || c == "x-gzip") && coding == "":
				coding = "gzip"
			default:
				return "", &apiRequestError{status: http.StatusUnsupportedMediaType, code: apiCodeUnsupportedMedia,
					message: "Content-Encoding " + strconv.Quote(clipText(c, 40)) + " is not supported: send the body uncompressed or gzip-compressed once."}
			}
		}
	}
	return coding, nil
}

// apiBody is a decoded PATCH or POST body.
type apiBody struct {
	appleID     string // "" keeps the stored one
	certificate []byte // nil: no certificate sent
}

// apiIgnored are the properties the server derives (and the annotations it
// sends), accepted in a body, as the seeds' examples send them, and
// ignored. Each must be a string or null.
var apiIgnored = map[string]bool{
	"id":                             true,
	"topicIdentifier":                true,
	"lastModifiedDateTime":           true,
	"expirationDateTime":             true,
	"certificateUploadStatus":        true,
	"certificateUploadFailureReason": true,
	"certificateSerialNumber":        true,
	"@odata.context":                 true,
	"@odata.etag":                    true,
}

// decodeAPIBody reads a body that must be exactly one JSON object whose
// properties are all known, each at most once and of the right JSON type.
// It walks the tokens itself because encoding/json silently takes the last
// of duplicate keys and matches names case-insensitively.
func decodeAPIBody(data []byte) (apiBody, error) {
	var b apiBody
	if len(bytes.TrimSpace(data)) == 0 {
		return b, badRequest("the request body is empty: send a JSON object with appleIdentifier and/or certificate")
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD and store
	// the mangled text; a body that is not UTF-8 is refused instead.
	if !utf8.Valid(data) {
		return b, badRequest("the request body is not valid UTF-8: send JSON encoded as UTF-8")
	}
	notObject := badRequest("the request body must be a single JSON object, such as {\"appleIdentifier\": \"...\", \"certificate\": \"...\"}")
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return b, notObject
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return b, notObject
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return b, notObject
		}
		if seen[name] {
			return b, badRequest("the property %s appears more than once in the request body", quoteName(name))
		}
		seen[name] = true
		if err := b.set(name, raw); err != nil {
			return b, err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return b, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return b, notObject
	}
	return b, nil
}

// set applies one property of the body.
func (b *apiBody) set(name string, raw json.RawMessage) error {
	switch {
	case name == "appleIdentifier":
		s, err := jsonString(name, raw, false)
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return &apiRequestError{status: http.StatusBadRequest, code: pushcert.CodeInvalidAppleID,
				message: "appleIdentifier: it is empty; send the Apple ID (an email address) that created the certificate, or leave the property out"}
		}
		b.appleID = s
	case name == "certificate":
		s, err := jsonString(name, raw, false)
		if err != nil {
			return err
		}
		// Never nil, even when empty: an empty certificate is an upload the
		// service refuses and records, not "no certificate sent".
		b.certificate = append(make([]byte, 0, len(s)), s...)
	case name == "@odata.type":
		s, err := jsonString(name, raw, false)
		if err != nil {
			return err
		}
		if s != apiEntityType {
			return badRequest("the property @odata.type must be %q", apiEntityType)
		}
	case apiIgnored[name]:
		if _, err := jsonString(name, raw, true); err != nil {
			return err
		}
	default:
		return badRequest("the property %s is not a property of applePushNotificationCertificate: send appleIdentifier and/or certificate", quoteName(name))
	}
	return nil
}

// jsonString decodes raw as a JSON string, or null when nullable.
func jsonString(name string, raw json.RawMessage, nullable bool) (string, error) {
	if nullable && string(raw) == "null" {
		return "", nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		if nullable {
			return "", badRequest("the property %s must be a JSON string or null", quoteName(name))
		}
		return "", badRequest("the property %s must be a JSON string", quoteName(name))
	}
	return s, nil
}

// quoteName quotes a property name from a request for a message, shortened
// so that a huge key does not make a huge error.
func quoteName(name string) string {
	return strconv.Quote(clipText(name, 80))
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// apiProperties are the entity's properties in the order they are written.
var apiProperties = []string{
	"id",
	"appleIdentifier",
	"topicIdentifier",
	"lastModifiedDateTime",
	"expirationDateTime",
	"certificateUploadStatus",
	"certificateUploadFailureReason",
	"certificateSerialNumber",
	"certificate",
}

// parseSelect reads $select (also sent as %24select, which Query decodes
// the same) into property names; nil means all. Names are matched without
// regard to case and returned as the entity spells them.
func parseSelect(q url.Values) ([]string, error) {
	vals, ok := q["$select"]
	if !ok {
		return nil, nil
	}
	var sel []string
	for _, v := range vals {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if name == "*" {
				return nil, nil
			}
			canon := ""
			for _, p := range apiProperties {
				if strings.EqualFold(p, name) {
					canon = p
				}
			}
			if canon == "" {
				return nil, badRequest("$select names %s, which is not a property of applePushNotificationCertificate", quoteName(name))
			}
			sel = append(sel, canon)
		}
	}
	return sel, nil
}

// apiExists reports whether the resource has anything to show: a
// certificate, or at least an upload attempt whose failure can be read.
func apiExists(st pushcert.State) bool {
	return st.Certificate != nil || st.UploadStatus != pushcert.UploadNone
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

// apiField is one property of a JSON object, kept in order.
type apiField struct {
	name  string
	value any // string or nil (null)
}

// writeEntity answers with the entity (only the selected properties when
// sel is not nil) and its ETag.
func (h *API) writeEntity(w http.ResponseWriter, r *http.Request, status int, st pushcert.State, sel []string) {
	body, err := h.entity.body(st, h.baseURL+apiVersionPrefix(r), sel)
	if err != nil {
		h.fail(w, r, fmt.Errorf("encode entity: %w", err))
		return
	}
	w.Header().Set("ETag", apiETag(st))
	writeAPIJSON(w, r, status, body)
}

// entityCache keeps the entity encoded as JSON, for the one state it was
// encoded from: each property on its own, and the whole entity for each
// service root it was asked under. Every request still reads the current
// state and passes it in: the encoding is reused only when that state is
// the same, field for field, so a change made through any replica shows in
// the next answer. The PEM certificate, escaped for JSON, is most of the
// work it saves.
type entityCache struct {
	mu    sync.Mutex
	state pushcert.State
	props [][]byte // `"name":value` for each of apiProperties; nil until the first use
	// whole maps a service root (base URL and version prefix) to the entity
	// with every property. There are two roots, /v1.0 and /beta.
	whole map[string][]byte
}

// body returns the entity of st, as served under root, with the properties
// in sel or, when sel is nil, all of them. The bytes are shared and must not
// be changed.
func (c *entityCache) body(st pushcert.State, root string, sel []string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.props == nil || !sameState(c.state, st) {
		props, err := encodeProperties(st)
		if err != nil {
			return nil, err
		}
		c.state, c.props, c.whole = st, props, nil
	}
	if b, ok := c.whole[root]; ok && sel == nil {
		return b, nil
	}
	body, err := marshalFields([]apiField{
		{"@odata.context", root + "/$metadata#deviceManagement/applePushNotificationCertificate/$entity"},
		{"@odata.type", apiEntityType},
		{"@odata.etag", apiETag(st)},
	})
	if err != nil {
		return nil, err
	}
	// The annotations' object is opened again to append the properties.
	body = body[:len(body)-1]
	for i, name := range apiProperties {
		if sel == nil || slices.Contains(sel, name) {
			body = append(body, ',')
			body = append(body, c.props[i]...)
		}
	}
	body = append(body, '}')
	if sel == nil && len(c.whole) < maxEntityRoots {
		if c.whole == nil {
			c.whole = make(map[string][]byte)
		}
		c.whole[root] = body
	}
	return body, nil
}

// maxEntityRoots bounds entityCache.whole. The root comes from the route,
// not the client, so two is all there are; the bound only keeps a future
// route from growing it.
const maxEntityRoots = 4

// encodeProperties encodes the properties of st, in apiProperties' order.
func encodeProperties(st pushcert.State) ([][]byte, error) {
	values := entityProperties(st)
	props := make([][]byte, len(apiProperties))
	for i, name := range apiProperties {
		b, err := marshalFields([]apiField{{name, values[name]}})
		if err != nil {
			return nil, err
		}
		props[i] = b[1 : len(b)-1] // without the object's braces
	}
	return props, nil
}

// sameState reports whether a and b are the same resource: every field
// equal, times as instants. A new field of State must be added here.
func sameState(a, b pushcert.State) bool {
	if a.ID != b.ID || a.Version != b.Version || a.AppleID != b.AppleID ||
		a.UploadStatus != b.UploadStatus || a.UploadFailureReason != b.UploadFailureReason ||
		!a.LastModified.Equal(b.LastModified) || a.LastModifiedBy != b.LastModifiedBy {
		return false
	}
	ac, bc := a.Certificate, b.Certificate
	if ac == nil || bc == nil {
		return ac == nil && bc == nil
	}
	return ac.Topic == bc.Topic && ac.CommonName == bc.CommonName && ac.SerialNumber == bc.SerialNumber &&
		ac.Issuer == bc.Issuer && ac.Fingerprint == bc.Fingerprint && ac.PEM == bc.PEM &&
		ac.NotBefore.Equal(bc.NotBefore) && ac.NotAfter.Equal(bc.NotAfter)
}

// entityProperties maps st to the entity's properties. Those that come from
// the certificate are null while there is none; times are RFC 3339 in UTC.
func entityProperties(st pushcert.State) map[string]any {
	p := map[string]any{
		"id":                             st.ID,
		"appleIdentifier":                st.AppleID,
		"topicIdentifier":                nil,
		"lastModifiedDateTime":           nil,
		"expirationDateTime":             nil,
		"certificateUploadStatus":        string(st.UploadStatus),
		"certificateUploadFailureReason": st.UploadFailureReason,
		"certificateSerialNumber":        nil,
		"certificate":                    nil,
	}
	if !st.LastModified.IsZero() {
		p["lastModifiedDateTime"] = st.LastModified.UTC().Format(time.RFC3339Nano)
	}
	if c := st.Certificate; c != nil {
		p["topicIdentifier"] = c.Topic
		p["expirationDateTime"] = c.NotAfter.UTC().Format(time.RFC3339)
		p["certificateSerialNumber"] = c.SerialNumber
		p["certificate"] = c.PEM
	}
	return p
}

// writeString answers with an OData string value, the shape of the CSR
// functions' results.
func (h *API) writeString(w http.ResponseWriter, r *http.Request, value string) {
	body, err := marshalFields([]apiField{
		{"@odata.context", h.baseURL + apiVersionPrefix(r) + "/$metadata#Edm.String"},
		{"value", value},
	})
	if err != nil {
		h.fail(w, r, fmt.Errorf("encode value: %w", err))
		return
	}
	writeAPIJSON(w, r, http.StatusOK, body)
}

// marshalFields encodes fields as a JSON object in their order.
func marshalFields(fields []apiField) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// apiGzipWriters reuses gzip writers, whose buffers are large next to the
// few KiB of a response.
var apiGzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// writeAPIJSON writes a JSON body, gzip-compressed when the client accepts
// it. Responses describe a credential's state, so no cache may keep them.
func writeAPIJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		var buf bytes.Buffer
		zw := apiGzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		apiGzipWriters.Put(zw)
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// acceptsGzip reports whether Accept-Encoding allows gzip: named with a
// quality above zero, or not named and allowed by *.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := 1.0
			if k, v, found := strings.Cut(params, "="); found && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				starQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
