package web_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

// TestMetadataPublic follows a real response's @odata.context through the
// whole server: the CSDL document answers without a token, as it holds
// only the resource's shape, under both API versions.
func TestMetadataPublic(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	_, body := apiCall(t, app, http.MethodGet,
		"/v1.0/deviceManagement/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest", app.Token(t, "admin"))
	ctx, _ := body["@odata.context"].(string)
	u, err := url.Parse(ctx)
	if err != nil || u.Path != "/v1.0/$metadata" || u.Fragment != "Edm.String" {
		t.Fatalf("got @odata.context %q, want one at /v1.0/$metadata#Edm.String", ctx)
	}
	for _, path := range []string{u.Path, "/beta/$metadata"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(app.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			doc, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
				t.Fatalf("got %d %q without a token, want 200 application/xml", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var root struct {
				XMLName xml.Name
			}
			if err := xml.Unmarshal(doc, &root); err != nil || root.XMLName.Local != "Edmx" {
				t.Errorf("got root %q (err %v), want a well-formed edmx:Edmx document", root.XMLName.Local, err)
			}
			if !strings.Contains(string(doc), `<EntityType Name="applePushNotificationCertificate">`) {
				t.Errorf("got a document without the entity type, want it:\n%s", doc)
			}
		})
	}
}
