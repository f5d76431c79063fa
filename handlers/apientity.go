package handlers

// This file encodes the JSON API's answers: the entity, kept encoded per
// installation and version, and JSON written with gzip when asked.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// apiETag is the entity tag of a version of the resource.
func apiETag(st pushcert.State) string {
	return `W/"` + strconv.FormatInt(st.Version, 10) + `"`
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
// state and passes it in: the encoding is reused only for the same
// installation id and version, and every write bumps the version, so a
// change made through any replica shows in the next answer. The PEM certificate, escaped for JSON, is most of the
// work it saves.
type entityCache struct {
	mu      sync.Mutex
	id      string // the installation and version the encoding is of
	version int64
	props   [][]byte // `"name":value` for each of apiProperties; nil until the first use
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
	// Every write bumps the version, so (id, version) names one state.
	if c.props == nil || c.id != st.ID || c.version != st.Version {
		props, err := encodeProperties(st)
		if err != nil {
			return nil, err
		}
		c.id, c.version, c.props, c.whole = st.ID, st.Version, props, nil
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
