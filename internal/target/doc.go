// Package target delivers the active push certificate and its private key
// to the places that send the pushes: NanoMDM, NanoHUB and MicroMDM
// through their APIs, and any other program through files in a folder.
// Another package decides when to deliver; this one knows how, and says
// in plain words why a delivery failed (*Error).
//
// # Configuration file
//
// Load reads the targets from a JSON file. Example:
//
//	{"targets": [
//	  {"name": "nanomdm", "kind": "nanomdm", "url": "https://mdm.example.com",
//	   "apiKeyEnv": "NANOMDM_API_KEY", "caFile": "/etc/pushcert/mdm-ca.pem"},
//	  {"name": "hub", "kind": "nanohub", "url": "https://hub.example.com",
//	   "apiKeyFile": "/run/secrets/nanohub-api-key", "timeout": "1m"},
//	  {"name": "micromdm", "kind": "micromdm", "url": "https://micromdm.example.com",
//	   "apiKeyEnv": "MICROMDM_API_KEY"},
//	  {"name": "shared-volume", "kind": "folder", "dir": "/srv/mdm/push",
//	   "certFile": "push.pem", "keyFile": "push.key", "keyFormat": "pkcs1",
//	   "pairFile": "push-pair.pem"}
//	]}
//
// The file holds one object with one field, "targets", a list (an empty
// list delivers nowhere). Every value in a target is a string. Fields of
// every target:
//
//   - name: required, unique in the file; 1 to 40 of a-z, 0-9 and "-".
//     Pages, logs and metrics name the target by it.
//   - kind: required; "nanomdm", "nanohub", "micromdm" or "folder".
//
// Fields of the MDM servers (nanomdm, nanohub, micromdm):
//
//   - url: required. The API's address. With no path, or "/", the kind's
//     endpoint is added: /v1/pushcert (NanoMDM), /api/v1/nanomdm/pushcert
//     (NanoHUB), /v1/config/certificate (MicroMDM); give the full path when
//     the server sits behind a prefix. It must be https, since the private
//     key travels in the request; plain http is allowed only to a loopback
//     address (127.0.0.0/8, ::1, localhost). It must not hold a user or
//     password. The target follows no redirects.
//   - apiKeyEnv or apiKeyFile: exactly one is required. The name of an
//     environment variable, or the path of a file, holding the server's
//     API key (surrounding white space is dropped). A literal "apiKey" (or
//     "password") in the file is refused: the file is no place for a
//     secret.
//   - user: the HTTP Basic user; by default the kind's name, which is what
//     each server expects (nanomdm, nanohub, micromdm).
//   - caFile: a PEM file of CA certificates trusted, besides the system's,
//     for this target's TLS certificate (a private CA).
//   - timeout: a Go duration bounding one delivery; "30s" by default.
//
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honored.
//
// NanoMDM and NanoHUB receive a PUT of the certificate followed by the
// private key, both PEM (an RSA key as PKCS#1, an ECDSA key as PKCS#8).
// MicroMDM receives a PUT of {"cert": base64 of the PEM certificate,
// "key": base64 of the PEM PKCS#1 key}: MicroMDM reads keys only as
// PKCS#1, so it takes RSA keys only.
//
// Fields of the folder kind:
//
//   - dir: required. An existing folder; pushcert writes only the files
//     below in it.
//   - certFile: the certificate's file name in dir; "push.pem" by default.
//   - keyFile: the private key's file name; "push.key" by default. Written
//     with mode 0600.
//   - pairFile: when set, one more file with the certificate followed by
//     the key, mode 0600. It is the one file that always holds a matching
//     pair, even while a delivery is under way.
//   - keyFormat: "pkcs1" (the default: "RSA PRIVATE KEY", or "EC PRIVATE
//     KEY" for ECDSA) or "pkcs8" ("PRIVATE KEY").
//
// Each file is replaced atomically: written to a temporary file in dir,
// synced, renamed over the old one, and the folder synced.
//
// Unknown fields, unknown kinds and fields of another kind are errors.
// Paths are taken as given, relative ones from pushcert's working folder.
// Load reports every problem of the file at once, each naming its target;
// no error ever holds a secret's value.
package target
