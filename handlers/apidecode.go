package handlers

// This file decodes the JSON API's requests: the body, If-Match, the
// topic-change opt-in and $select. Every refusal here names what is wrong.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// maxAPIBody bounds a request body, both as sent and after decompression: a
// push certificate is about 2 KiB, so 1 MiB leaves room for any real one.
const maxAPIBody = pushcert.MaxUploadSize

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
	precondition      pushcert.Precondition // from If-Match; zero without one
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
	if in.precondition, err = parseIfMatch(r.Header.Values("If-Match")); err != nil {
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

// parseIfMatch reads If-Match into the write's precondition; the zero
// Precondition when absent. Weak and strong forms of a tag are the same
// here, since our ETags are weak and clients send back what they were
// given. A tag that is no version of ours (ours are W/"N") can never
// match: it stands for version 0, which no resource has.
func parseIfMatch(values []string) (pushcert.Precondition, error) {
	var p pushcert.Precondition
	if len(values) == 0 {
		return p, nil
	}
	bad := badRequest(`If-Match must be * or ETags from an earlier response, such as W/"3"`)
	s := strings.Join(values, ",")
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		if s[0] == '*' {
			p.Any = true
			s = s[1:]
			continue
		}
		s = strings.TrimPrefix(s, "W/")
		end := -1
		if strings.HasPrefix(s, `"`) {
			end = strings.IndexByte(s[1:], '"')
		}
		if end < 0 {
			return pushcert.Precondition{}, bad
		}
		v, err := strconv.ParseInt(s[1:1+end], 10, 64)
		if err != nil || v < 1 {
			v = 0
		}
		p.Versions = append(p.Versions, v)
		s = s[end+2:]
	}
	if p.IsZero() {
		return p, bad
	}
	return p, nil
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
		return pushcert.TooLarge()
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
	// Likewise for an escape of half a UTF-16 surrogate pair, such as
	// "a\ud800@b.example": encoding/json decodes it as U+FFFD.
	if esc, ok := loneSurrogate(data); ok {
		return b, badRequest("the request body holds the escape %s, half of a UTF-16 surrogate pair without its other half: send the text as UTF-8, or each character outside the BMP as a complete pair of escapes", esc)
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

// loneSurrogate returns the first \uXXXX escape in a JSON text that is half
// of a surrogate pair without its other half: a high surrogate
// (D800-DBFF) not followed at once by an escaped low one (DC00-DFFF), or a
// low one not preceded by a high one. Every other escape is skipped whole,
// so the text of an escaped backslash ("\\ud800") is no escape.
func loneSurrogate(data []byte) (string, bool) {
	high := -1 // where the escape just read begins, when it was a high surrogate
	for i := 0; i < len(data); i++ {
		u, isUnit := uint16(0), false
		if data[i] == '\\' && i+1 < len(data) {
			u, isUnit = escapedUnit(data[i+1:])
		}
		switch {
		case isUnit && u >= 0xDC00 && u <= 0xDFFF && high >= 0:
			high = -1 // the pair is complete
		case isUnit && u >= 0xDC00 && u <= 0xDFFF:
			return string(data[i : i+6]), true
		case high >= 0:
			return string(data[high : high+6]), true
		case isUnit && u >= 0xD800 && u <= 0xDBFF:
			high = i
		}
		switch {
		case isUnit:
			i += 5
		case data[i] == '\\':
			i++ // an escape such as \n or \\, skipped whole
		}
	}
	if high >= 0 {
		return string(data[high : high+6]), true
	}
	return "", false
}

// escapedUnit reads the code unit of a "uXXXX" escape (after its
// backslash) at the start of b.
func escapedUnit(b []byte) (uint16, bool) {
	if len(b) < 5 || b[0] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[1:5]), 16, 16)
	return uint16(v), err == nil
}

// set applies one property of the body.
func (b *apiBody) set(name string, raw json.RawMessage) error {
	switch {
	case name == "appleIdentifier":
		s, err := jsonString(name, raw, false)
		if err != nil {
			return err
		}
		// Empty keeps the stored Apple ID, as leaving the property out
		// does: the service's rule for the form and the API alike.
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
