package handlers

// This file serves the API's service metadata: the CSDL document that the
// responses' @odata.context URLs point at.

import (
	"net/http"
	"strconv"
	"strings"
)

// apiPropertyTypes are the entity's properties' EDM types, as the
// device-management API declares them. Every name in apiProperties has one;
// TestMetadataNamesEveryProperty holds the two lists together.
var apiPropertyTypes = map[string]string{
	"id":                             "Edm.String",
	"appleIdentifier":                "Edm.String",
	"topicIdentifier":                "Edm.String",
	"lastModifiedDateTime":           "Edm.DateTimeOffset",
	"expirationDateTime":             "Edm.DateTimeOffset",
	"certificateUploadStatus":        "Edm.String",
	"certificateUploadFailureReason": "Edm.String",
	"certificateSerialNumber":        "Edm.String",
	"certificate":                    "Edm.String",
}

// metadataDocument is the CSDL (OData v4 XML) of the API: the entity type,
// the deviceManagement singleton that contains it (so the context
// "$metadata#deviceManagement/applePushNotificationCertificate/$entity"
// resolves), and the bound action and function that make and download the
// CSR. It has no secrets and never changes while the server runs.
var metadataDocument = buildMetadata()

// buildMetadata writes metadataDocument from apiProperties, so that a
// property added to the entity is described too.
func buildMetadata() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="applePushNotificationCertificate">
        <Key>
          <PropertyRef Name="id"/>
        </Key>
`)
	for _, name := range apiProperties {
		b.WriteString(`        <Property Name="` + name + `" Type="` + apiPropertyTypes[name] + `"`)
		if name == "id" {
			b.WriteString(` Nullable="false"`)
		}
		b.WriteString("/>\n")
	}
	b.WriteString(`      </EntityType>
      <EntityType Name="deviceManagement">
        <Key>
          <PropertyRef Name="id"/>
        </Key>
        <Property Name="id" Type="Edm.String" Nullable="false"/>
        <NavigationProperty Name="applePushNotificationCertificate" Type="graph.applePushNotificationCertificate" ContainsTarget="true"/>
      </EntityType>
      <Action Name="` + apiGenerateAction + `" IsBound="true">
        <Parameter Name="bindingParameter" Type="graph.applePushNotificationCertificate"/>
        <ReturnType Type="Edm.String"/>
      </Action>
      <Function Name="` + apiDownloadFunc + `" IsBound="true">
        <Parameter Name="bindingParameter" Type="graph.applePushNotificationCertificate"/>
        <ReturnType Type="Edm.String"/>
      </Function>
      <EntityContainer Name="GraphService">
        <Singleton Name="deviceManagement" Type="graph.deviceManagement"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`)
	return []byte(b.String())
}

// Metadata handles GET /v1.0/$metadata and GET /beta/$metadata: the CSDL
// document the @odata.context URLs point at, for OData clients and SDKs
// that read it. It is public, as it describes only the resource's shape.
func (h *API) Metadata(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "application/xml; charset=utf-8")
	hd.Set("OData-Version", "4.0")
	// The document changes only with an upgrade; an hour of caching lets a
	// client that reads it for every call skip most of those reads.
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("Content-Length", strconv.Itoa(len(metadataDocument)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(metadataDocument)
	}
}
