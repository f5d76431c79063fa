package handlers

import (
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// csdl is the part of a CSDL document the tests read.
type csdl struct {
	XMLName  xml.Name `xml:"Edmx"`
	Version  string   `xml:"Version,attr"`
	Services struct {
		Schemas []struct {
			Namespace   string `xml:"Namespace,attr"`
			Alias       string `xml:"Alias,attr"`
			EntityTypes []struct {
				Name string `xml:"Name,attr"`
				Key  []struct {
					Name string `xml:"Name,attr"`
				} `xml:"Key>PropertyRef"`
				Properties []struct {
					Name string `xml:"Name,attr"`
					Type string `xml:"Type,attr"`
				} `xml:"Property"`
				Navigation []struct {
					Name           string `xml:"Name,attr"`
					Type           string `xml:"Type,attr"`
					ContainsTarget bool   `xml:"ContainsTarget,attr"`
				} `xml:"NavigationProperty"`
			} `xml:"EntityType"`
			Actions   []csdlOperation `xml:"Action"`
			Functions []csdlOperation `xml:"Function"`
			Container struct {
				Name       string `xml:"Name,attr"`
				Singletons []struct {
					Name string `xml:"Name,attr"`
					Type string `xml:"Type,attr"`
				} `xml:"Singleton"`
			} `xml:"EntityContainer"`
		} `xml:"Schema"`
	} `xml:"DataServices"`
}

type csdlOperation struct {
	Name       string `xml:"Name,attr"`
	IsBound    bool   `xml:"IsBound,attr"`
	Parameters []struct {
		Name string `xml:"Name,attr"`
		Type string `xml:"Type,attr"`
	} `xml:"Parameter"`
	ReturnType struct {
		Type string `xml:"Type,attr"`
	} `xml:"ReturnType"`
}

// getMetadata asks for the metadata document at path through a mux with
// the routes web/routes.go gives it, and parses it.
func getMetadata(t *testing.T, method, path string) (*httptest.ResponseRecorder, csdl) {
	t.Helper()
	api := NewAPI(slog.New(slog.DiscardHandler), nil, testBaseURL)
	mux := http.NewServeMux()
	for _, p := range []string{"/v1.0", "/beta"} {
		mux.HandleFunc("GET "+p+"/$metadata", api.Metadata)
		mux.HandleFunc(p+"/", api.NotFound)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	var doc csdl
	if w.Code == http.StatusOK && method == http.MethodGet {
		if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("got metadata that is not well-formed XML: %v\n%s", err, w.Body)
		}
	}
	return w, doc
}

func TestMetadata(t *testing.T) {
	for _, path := range []string{"/v1.0/$metadata", "/beta/$metadata"} {
		t.Run(path, func(t *testing.T) {
			w, doc := getMetadata(t, http.MethodGet, path)
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/xml") {
				t.Errorf("got Content-Type %q, want application/xml", got)
			}
			if got := w.Header().Get("OData-Version"); got != "4.0" {
				t.Errorf("got OData-Version %q, want 4.0", got)
			}
			if doc.XMLName.Space != "http://docs.oasis-open.org/odata/ns/edmx" || doc.Version != "4.0" {
				t.Errorf("got root {%s}%s version %q, want the OData v4 edmx:Edmx", doc.XMLName.Space, doc.XMLName.Local, doc.Version)
			}
			if len(doc.Services.Schemas) != 1 {
				t.Fatalf("got %d schemas, want 1", len(doc.Services.Schemas))
			}
			s := doc.Services.Schemas[0]
			if s.Namespace != "microsoft.graph" || s.Alias != "graph" {
				t.Errorf("got namespace %q alias %q, want microsoft.graph and graph", s.Namespace, s.Alias)
			}
			entity := "graph.applePushNotificationCertificate"
			if len(s.Actions) != 1 || s.Actions[0].Name != apiGenerateAction || !s.Actions[0].IsBound ||
				len(s.Actions[0].Parameters) != 1 || s.Actions[0].Parameters[0].Type != entity || s.Actions[0].ReturnType.Type != "Edm.String" {
				t.Errorf("got actions %+v, want %s bound to %s returning Edm.String", s.Actions, apiGenerateAction, entity)
			}
			if len(s.Functions) != 1 || s.Functions[0].Name != apiDownloadFunc || !s.Functions[0].IsBound ||
				len(s.Functions[0].Parameters) != 1 || s.Functions[0].Parameters[0].Type != entity || s.Functions[0].ReturnType.Type != "Edm.String" {
				t.Errorf("got functions %+v, want %s bound to %s returning Edm.String", s.Functions, apiDownloadFunc, entity)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		w, _ := getMetadata(t, http.MethodHead, "/v1.0/$metadata")
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("got %d with %d bytes, want 200 without a body", w.Code, w.Body.Len())
		}
	})
	t.Run("POST", func(t *testing.T) {
		w, _ := getMetadata(t, http.MethodPost, "/v1.0/$metadata")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("got %d Allow %q, want 405 Allow %q", w.Code, w.Header().Get("Allow"), "GET, HEAD")
		}
	})
}

// TestMetadataNamesEveryProperty compares the document with a real entity:
// every property the JSON has is declared, with nothing extra, and the
// entity's @odata.context resolves in the document (the deviceManagement
// singleton contains the applePushNotificationCertificate of the type
// @odata.type names).
func TestMetadataNamesEveryProperty(t *testing.T) {
	f := newAPIFixture(t)
	entity := f.upload(t, "com.apple.mgmt.External.metadata", f.now().AddDate(1, 0, 0))
	var keys []string
	for k := range entity {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)

	ctx, _ := entity["@odata.context"].(string)
	docURL, fragment, ok := strings.Cut(ctx, "#")
	path, onBase := strings.CutPrefix(docURL, testBaseURL)
	if !ok || !onBase || path != "/v1.0/$metadata" || fragment != "deviceManagement/applePushNotificationCertificate/$entity" {
		t.Fatalf("got @odata.context %q, want %s/v1.0/$metadata#deviceManagement/applePushNotificationCertificate/$entity", ctx, testBaseURL)
	}
	w, doc := getMetadata(t, http.MethodGet, path)
	if w.Code != http.StatusOK {
		t.Fatalf("got status %d for the @odata.context document, want 200", w.Code)
	}
	s := doc.Services.Schemas[0]
	types := map[string]int{}
	for i, et := range s.EntityTypes {
		types[s.Alias+"."+et.Name] = i
		types[s.Namespace+"."+et.Name] = i
	}

	// deviceManagement is a singleton whose type contains the certificate.
	if s.Container.Name == "" || len(s.Container.Singletons) != 1 || s.Container.Singletons[0].Name != "deviceManagement" {
		t.Fatalf("got container %+v, want one with the deviceManagement singleton", s.Container)
	}
	dm, ok := types[s.Container.Singletons[0].Type]
	if !ok {
		t.Fatalf("got singleton type %q, want a declared entity type", s.Container.Singletons[0].Type)
	}
	nav := s.EntityTypes[dm].Navigation
	if len(nav) != 1 || nav[0].Name != "applePushNotificationCertificate" || !nav[0].ContainsTarget {
		t.Fatalf("got navigation %+v, want applePushNotificationCertificate contained", nav)
	}
	i, ok := types[nav[0].Type]
	if !ok || "#"+s.Namespace+"."+s.EntityTypes[i].Name != entity["@odata.type"] {
		t.Fatalf("got navigation type %q, want the declared type of @odata.type %v", nav[0].Type, entity["@odata.type"])
	}

	et := s.EntityTypes[i]
	var declared []string
	for _, p := range et.Properties {
		declared = append(declared, p.Name)
		if !strings.HasPrefix(p.Type, "Edm.") {
			t.Errorf("got property %s of type %q, want an Edm type", p.Name, p.Type)
		}
	}
	slices.Sort(declared)
	if !slices.Equal(declared, keys) {
		t.Errorf("got declared properties %q, want the entity's %q", declared, keys)
	}
	if len(et.Key) != 1 || et.Key[0].Name != "id" {
		t.Errorf("got key %q, want [id]", et.Key)
	}
}
