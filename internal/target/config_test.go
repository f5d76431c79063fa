package target

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets of the configuration tests: none may appear in any error.
var configSecrets = []string{"env-secret-value", "file-secret-value", "literal-secret-value", "url-secret-value"}

var configEnv = map[string]string{
	"NANOMDM_API_KEY":  "env-secret-value",
	"MICROMDM_API_KEY": " env-secret-value-2\n",
	"EMPTY":            "",
}

// configFixtures makes the files the configurations name and returns
// their folder, which the rows call {{TMP}}.
func configFixtures(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	files := map[string]string{
		"key.txt":    "file-secret-value\n",
		"empty.txt":  " \n",
		"ca.pem":     newPair(t, "", ecdsaKey).Certificate.PEM,
		"bad-ca.pem": "not a certificate",
		"plain.txt":  "a file, not a folder",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"push", "other"} {
		if err := os.Mkdir(filepath.Join(tmp, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

// summary is every setting of a target on one line.
func summary(tg Target) string {
	switch tg := tg.(type) {
	case *MDM:
		ca := "system"
		if tg.client.Transport.(*http.Transport).TLSClientConfig.RootCAs != nil {
			ca = "own"
		}
		return fmt.Sprintf("%s %s %s user=%s key=%s timeout=%s ca=%s", tg.Kind(), tg.Name(), tg.Describe(), tg.user, tg.apiKey, tg.timeout, ca)
	case *Folder:
		c, k, p := tg.Files()
		return fmt.Sprintf("%s %s %s cert=%s key=%s pair=%s format=%s", tg.Kind(), tg.Name(), tg.Describe(), c, k, p, tg.keyFormat)
	}
	return fmt.Sprintf("%T", tg)
}

// one is a configuration file of one target with the given fields.
func one(fields string) string { return `{"targets": [{` + fields + `}]}` }

const (
	nano  = `"name": "nano", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY", `
	local = `"url": "http://127.0.0.1:9000"`
)

// parseTest is a row of TestParse. In conf and want, {{TMP}} is the
// folder of configFixtures.
type parseTest struct {
	name string
	conf string
	want []string // each target's summary (a prefix of it), or texts the error must hold
	ok   bool     // whether the file is valid
}

var parseTests = []parseTest{
	// The example of the package documentation.
	{"every kind", `{"targets": [
			{"name": "nanomdm", "kind": "nanomdm", "url": "https://mdm.example.com", "apiKeyEnv": "NANOMDM_API_KEY", "caFile": "{{TMP}}/ca.pem"},
			{"name": "hub", "kind": "nanohub", "url": "https://hub.example.com/", "apiKeyFile": "{{TMP}}/key.txt", "timeout": "1m"},
			{"name": "micromdm", "kind": "micromdm", "url": "https://micromdm.example.com", "apiKeyEnv": "MICROMDM_API_KEY", "user": "admin"},
			{"name": "shared-volume", "kind": "folder", "dir": "{{TMP}}/push", "certFile": "push.pem", "keyFile": "push.key", "keyFormat": "pkcs1"}
		]}`, []string{
		"nanomdm nanomdm https://mdm.example.com/v1/pushcert user=nanomdm key=env-secret-value timeout=30s ca=own",
		"nanohub hub https://hub.example.com/api/v1/nanomdm/pushcert user=nanohub key=file-secret-value timeout=1m0s ca=system",
		"micromdm micromdm https://micromdm.example.com/v1/config/certificate user=admin key=env-secret-value-2 timeout=30s ca=system",
		"folder shared-volume {{TMP}}/push cert={{TMP}}/push/push.pem key={{TMP}}/push/push.key pair= format=pkcs1",
	}, true},
	{"empty list", `{"targets": []}`, nil, true},
	{"path kept, query hidden", one(nano + `"url": "https://mdm.example.com/mdm/v1/pushcert?x=1"`),
		[]string{"nanomdm nano https://mdm.example.com/mdm/v1/pushcert user=nanomdm"}, true},
	{"folder defaults and pair file", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "pairFile": "pair.pem", "keyFormat": "pkcs8"`),
		[]string{"folder f {{TMP}}/push cert={{TMP}}/push/push.pem key={{TMP}}/push/push.key pair={{TMP}}/push/pair.pem format=pkcs8"}, true},
	{"plain http to loopback", `{"targets": [
			{"name": "a", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY", "url": "http://127.0.0.1:9000"},
			{"name": "b", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY", "url": "http://127.8.9.10:9000"},
			{"name": "c", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY", "url": "http://[::1]:9000"},
			{"name": "d", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY", "url": "http://localhost:9000"}
		]}`, []string{"http://127.0.0.1:9000/v1/pushcert", "http://127.8.9.10:9000/v1/pushcert", "http://[::1]:9000/v1/pushcert", "http://localhost:9000/v1/pushcert"}, true},

	// The URL.
	{"plain http across the network", one(nano + `"url": "http://mdm.example.com"`),
		[]string{`target "nano": url is plain http to mdm.example.com`, "use https"}, false},
	{"plain http to a name that looks local", one(nano + `"url": "http://localhost.example.com"`),
		[]string{"url is plain http to localhost.example.com"}, false},
	{"password in the URL", one(nano + `"url": "https://admin:url-secret-value@mdm.example.com"`),
		[]string{"url must not hold a user or password"}, false},
	{"not a URL", one(nano + `"url": "mdm.example.com"`), []string{"url must start with https://"}, false},
	{"no URL", one(`"name": "nano", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_API_KEY"`), []string{"url is not a URL"}, false},

	// The secret.
	{"literal API key", one(nano + local + `, "apiKey": "literal-secret-value"`),
		[]string{`target "nano": apiKey is not allowed in the file`, "apiKeyEnv", "apiKeyFile"}, false},
	{"literal password", one(nano + local + `, "password": "literal-secret-value"`), []string{"password is not allowed in the file"}, false},
	{"variable not set", one(`"name": "nano", "kind": "nanomdm", "apiKeyEnv": "NANOMDM_KEY", ` + local),
		[]string{`target "nano": the environment variable NANOMDM_KEY (apiKeyEnv) is not set or empty`}, false},
	{"variable empty", one(`"name": "nano", "kind": "nanomdm", "apiKeyEnv": "EMPTY", ` + local), []string{"EMPTY (apiKeyEnv) is not set or empty"}, false},
	{"key file missing", one(`"name": "nano", "kind": "nanomdm", "apiKeyFile": "{{TMP}}/nope", ` + local),
		[]string{"apiKeyFile {{TMP}}/nope cannot be read: no such file"}, false},
	{"key file empty", one(`"name": "nano", "kind": "nanomdm", "apiKeyFile": "{{TMP}}/empty.txt", ` + local), []string{"apiKeyFile {{TMP}}/empty.txt is empty"}, false},
	{"both sources", one(nano + `"apiKeyFile": "{{TMP}}/key.txt", ` + local), []string{"set apiKeyEnv or apiKeyFile, not both"}, false},
	{"no secret", one(`"name": "nano", "kind": "nanomdm", ` + local), []string{"no API key: set apiKeyEnv"}, false},

	// The other fields of an MDM server.
	{"user with a colon", one(nano + local + `, "user": "a:b"`), []string{"user must not hold a colon"}, false},
	{"empty user", one(nano + local + `, "user": ""`), []string{"user is empty"}, false},
	{"CA file without certificates", one(nano + local + `, "caFile": "{{TMP}}/bad-ca.pem"`), []string{"caFile {{TMP}}/bad-ca.pem holds no PEM certificate"}, false},
	{"CA file missing", one(nano + local + `, "caFile": "{{TMP}}/nope.pem"`), []string{"caFile {{TMP}}/nope.pem cannot be read"}, false},
	{"timeout not a duration", one(nano + local + `, "timeout": "soon"`), []string{`timeout "soon" is not a positive duration`}, false},
	{"timeout zero", one(nano + local + `, "timeout": "0s"`), []string{`timeout "0s" is not a positive duration`}, false},
	{"timeout a number", one(nano + local + `, "timeout": 30`), []string{"timeout must be a string"}, false},

	// Folders.
	{"folder missing", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/nope"`), []string{`target "f": dir {{TMP}}/nope does not exist`}, false},
	{"folder is a file", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/plain.txt"`), []string{"dir {{TMP}}/plain.txt is not a folder"}, false},
	{"no folder", one(`"name": "f", "kind": "folder"`), []string{"dir is missing"}, false},
	{"unknown key format", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "keyFormat": "der"`), []string{`keyFormat "der" is not pkcs1 or pkcs8`}, false},
	{"file name with a folder", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "certFile": "../push.pem"`),
		[]string{`certFile "../push.pem" must be a plain file name`}, false},
	{"hidden file name", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "keyFile": ".key"`), []string{`keyFile ".key" must be a plain file name`}, false},
	{"one name for two files", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "pairFile": "push.pem"`),
		[]string{`certFile and pairFile are both "push.pem"`}, false},
	{"two targets, one file", `{"targets": [
			{"name": "a", "kind": "folder", "dir": "{{TMP}}/push"},
			{"name": "b", "kind": "folder", "dir": "{{TMP}}/push/", "certFile": "b.pem"}
		]}`, []string{`target "b": writes {{TMP}}/push/push.key, which target "a" writes too`}, false},

	// Names, kinds and fields.
	{"duplicate name", `{"targets": [
			{"name": "a", "kind": "folder", "dir": "{{TMP}}/push"},
			{"name": "a", "kind": "folder", "dir": "{{TMP}}/other"}
		]}`, []string{`target "a": the name is already used by target "a"`}, false},
	{"name with capitals", one(`"name": "Nano MDM", "kind": "folder", "dir": "{{TMP}}/push"`),
		[]string{`targets[0] (name "Nano MDM"): name "Nano MDM" must be 1 to 40 of a-z, 0-9 and -`}, false},
	{"name too long", one(`"name": "` + strings.Repeat("a", 41) + `", "kind": "folder", "dir": "{{TMP}}/push"`), []string{"must be 1 to 40"}, false},
	{"no name", one(`"kind": "folder", "dir": "{{TMP}}/push"`), []string{"targets[0]: name is missing"}, false},
	{"unknown kind", one(`"name": "j", "kind": "jamf", "url": "https://jamf.example.com"`),
		[]string{`target "j": unknown kind "jamf": want nanomdm, nanohub, micromdm or folder`}, false},
	{"no kind", one(`"name": "j"`), []string{`target "j": kind is missing`}, false},
	{"unknown field", one(nano + local + `, "colour": "blue"`), []string{`target "nano": unknown field "colour"`}, false},
	{"field in the wrong case", one(`"name": "nano", "kind": "nanomdm", "apikeyenv": "NANOMDM_API_KEY", ` + local),
		[]string{`unknown field "apikeyenv": did you mean "apiKeyEnv"?`}, false},
	{"field of another kind", one(nano + local + `, "dir": "{{TMP}}/push"`), []string{"dir is not a field of a nanomdm target"}, false},
	{"URL on a folder", one(`"name": "f", "kind": "folder", "dir": "{{TMP}}/push", "url": "https://x.example.com"`), []string{"url is not a field of a folder target"}, false},

	// The file.
	{"not JSON", "{\"targets\": [\n  {\"name\": literal-secret-value}\n]}", []string{"the file is not valid JSON (line 2, column 12)"}, false},
	{"not an object", `["targets"]`, []string{"the file must hold a JSON object"}, false},
	{"null", `null`, []string{"the file must hold a JSON object"}, false},
	{"no targets", `{}`, []string{`no "targets"`}, false},
	{"unknown top field", `{"targets": [], "version": "1"}`, []string{`unknown field "version"`}, false},
	{"targets not a list", `{"targets": {}}`, []string{`"targets" must be a list of objects`}, false},
	{"target not an object", `{"targets": ["nano"]}`, []string{"targets[0]: a target must be a JSON object"}, false},

	// Every problem at once, each with its target.
	{"all errors together", `{"targets": [
			{"name": "a", "kind": "nanomdm", "url": "http://mdm.example.com", "apiKeyEnv": "NANOMDM_API_KEY"},
			{"name": "b", "kind": "micromdm", "url": "https://micro.example.com", "apiKey": "literal-secret-value"},
			{"name": "c", "kind": "folder", "dir": "{{TMP}}/nope"},
			{"name": "d", "kind": "nanohub", "url": "https://hub.example.com", "apiKeyEnv": "NOPE", "timeout": "x"}
		]}`, []string{
		`delivery configuration delivery.json: target "a": url is plain http`,
		`delivery configuration delivery.json: target "b": apiKey is not allowed`,
		`delivery configuration delivery.json: target "c": dir {{TMP}}/nope does not exist`,
		`delivery configuration delivery.json: target "d": the environment variable NOPE (apiKeyEnv) is not set`,
		`delivery configuration delivery.json: target "d": timeout "x" is not a positive duration`,
	}, false},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := configFixtures(t)
			fill := func(s string) string { return strings.ReplaceAll(s, "{{TMP}}", tmp) }
			targets, err := Parse("delivery.json", []byte(fill(tt.conf)), getenv(configEnv))
			if !tt.ok {
				if err == nil || targets != nil {
					t.Fatalf("got %d targets and error %v, want no targets and an error", len(targets), err)
				}
				for _, want := range tt.want {
					if !strings.Contains(err.Error(), fill(want)) {
						t.Errorf("got error:\n%v\nwant it to hold %q", err, fill(want))
					}
				}
				for _, s := range configSecrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("got error holding the secret %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error:\n%v\nwant %d targets", err, len(tt.want))
			}
			if len(targets) != len(tt.want) {
				t.Fatalf("got %d targets, want %d", len(targets), len(tt.want))
			}
			for i, tg := range targets {
				if got := summary(tg); !strings.Contains(got, fill(tt.want[i])) {
					t.Errorf("got target %d %q, want %q", i, got, fill(tt.want[i]))
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	tmp := configFixtures(t)
	path := filepath.Join(tmp, "delivery.json")
	conf := one(`"name": "f", "kind": "folder", "dir": "` + filepath.Join(tmp, "push") + `"`)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	targets, err := Load(path, getenv(nil))
	if err != nil || len(targets) != 1 || targets[0].Name() != "f" {
		t.Fatalf("got %v %v, want the folder target f", targets, err)
	}
	_, err = Load(filepath.Join(tmp, "nope.json"), getenv(nil))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(tmp, "nope.json")) {
		t.Errorf("got %v, want an error naming the missing file", err)
	}
}
