package target

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Load reads the delivery configuration file at path (see the package
// documentation for its format). getenv reads the secrets the file names
// with apiKeyEnv. Every problem in the file is reported at once, each
// naming its target, and no error holds a secret's value.
func Load(path string, getenv func(string) string) ([]Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("delivery configuration: %w", err)
	}
	return Parse(path, data, getenv)
}

// Parse is Load on bytes already read; name is the file's name in error
// messages.
func Parse(name string, data []byte, getenv func(string) string) ([]Target, error) {
	prefix := "delivery configuration " + name + ": "
	list, err := targetList(data)
	if err != nil {
		return nil, errors.New(prefix + err.Error())
	}
	var (
		targets []Target
		errs    []error
		names   = map[string]string{} // name → label of the target that has it
		files   = map[string]string{} // a folder target's file → label
	)
	for i, raw := range list {
		t, label, err := parseTarget(i, raw, getenv)
		for _, e := range split(err) {
			errs = append(errs, fmt.Errorf("%s%s: %w", prefix, label, e))
		}
		if t == nil {
			continue
		}
		if other, ok := names[t.Name()]; ok {
			errs = append(errs, fmt.Errorf("%s%s: the name is already used by %s", prefix, label, other))
			continue
		}
		names[t.Name()] = label
		if f, ok := t.(*Folder); ok {
			c, k, p := f.Files()
			for _, path := range []string{c, k, p} {
				if other, ok := files[path]; ok {
					errs = append(errs, fmt.Errorf("%s%s: writes %s, which %s writes too", prefix, label, path, other))
				} else if path != "" {
					files[path] = label
				}
			}
		}
		targets = append(targets, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return targets, nil
}

// targetList reads the file's outer object and returns its targets, each
// still raw.
func targetList(data []byte) ([]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, jsonError(data, err)
	}
	if top == nil {
		return nil, errors.New(`the file must hold a JSON object: {"targets": [...]}`)
	}
	for _, k := range sortedKeys(top) {
		if k != "targets" {
			return nil, fmt.Errorf(`unknown field %q: the file holds only "targets"`, clip(k, 40))
		}
	}
	raw, ok := top["targets"]
	if !ok {
		return nil, errors.New(`no "targets": list the delivery targets under "targets" (an empty list delivers nowhere)`)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, errors.New(`"targets" must be a list of objects`)
	}
	return list, nil
}

// jsonError says where the JSON is broken without quoting it: the file
// may hold a secret pasted in the wrong place.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the byte that broke the syntax.
		line, col := position(data, syn.Offset-1)
		return fmt.Errorf("the file is not valid JSON (line %d, column %d)", line, col)
	case errors.As(err, &typ):
		return fmt.Errorf(`the file must hold a JSON object: {"targets": [...]}`)
	}
	return errors.New("the file is not valid JSON")
}

// position is the line and column (both from 1) of byte offset in data.
func position(data []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// The fields of a target, with the kinds each applies to.
var (
	mdmKinds    = []string{KindNanoMDM, KindNanoHUB, KindMicroMDM}
	folderKinds = []string{KindFolder}
	allKinds    = []string{KindNanoMDM, KindNanoHUB, KindMicroMDM, KindFolder}
	fields      = map[string][]string{
		"name": allKinds, "kind": allKinds,
		"url": mdmKinds, "user": mdmKinds, "apiKeyEnv": mdmKinds, "apiKeyFile": mdmKinds,
		"caFile": mdmKinds, "timeout": mdmKinds,
		"dir": folderKinds, "certFile": folderKinds, "keyFile": folderKinds,
		"pairFile": folderKinds, "keyFormat": folderKinds,
	}
)

// parseTarget builds the i-th target of the file. label names the target
// in messages.
func parseTarget(i int, raw json.RawMessage, getenv func(string) string) (t Target, label string, err error) {
	label = fmt.Sprintf("targets[%d]", i)
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, label, errors.New("a target must be a JSON object")
	}
	var errs []error
	v := map[string]string{}
	for _, k := range sortedKeys(obj) {
		var s string
		if json.Unmarshal(obj[k], &s) != nil {
			// A value of the wrong type is not quoted: it may be a secret.
			errs = append(errs, fmt.Errorf("%s must be a string", clip(k, 40)))
			continue
		}
		v[k] = s
	}
	name, kind := v["name"], v["kind"]
	switch {
	case checkName(name) == nil:
		label = fmt.Sprintf("target %q", name)
	case name != "":
		label = fmt.Sprintf("targets[%d] (name %q)", i, clip(name, 40))
	}
	_, mdm := servers[kind]
	if kind == "" {
		errs = append(errs, errors.New("kind is missing: want nanomdm, nanohub, micromdm or folder"))
	} else if !mdm && kind != KindFolder {
		errs = append(errs, fmt.Errorf("unknown kind %q: want nanomdm, nanohub, micromdm or folder", clip(kind, 40)))
	}
	errs = append(errs, checkFields(obj, kind)...)
	if len(errs) > 0 {
		// The name's own problems come from the constructor once the rest
		// is sound; report them here when it is not.
		if err := checkName(name); err != nil {
			errs = append(errs, err)
		}
		return nil, label, errors.Join(errs...)
	}
	if kind == KindFolder {
		t, err = NewFolder(FolderOptions{
			Name: name, Dir: v["dir"], CertFile: v["certFile"], KeyFile: v["keyFile"],
			PairFile: v["pairFile"], KeyFormat: v["keyFormat"],
		})
	} else {
		t, err = parseMDM(kind, v, getenv)
	}
	if err != nil {
		return nil, label, err
	}
	return t, label, nil
}

// checkFields refuses unknown fields, a literal apiKey, and fields of
// another kind.
func checkFields(obj map[string]json.RawMessage, kind string) []error {
	var errs []error
	for _, k := range sortedKeys(obj) {
		kinds, known := fields[k]
		switch {
		case strings.EqualFold(k, "apiKey") || strings.EqualFold(k, "password"):
			errs = append(errs, fmt.Errorf("%s is not allowed in the file, which is no place for a secret: name an environment variable with apiKeyEnv or a file with apiKeyFile", k))
		case !known:
			errs = append(errs, unknownField(k))
		case slices.Contains(allKinds, kind) && !slices.Contains(kinds, kind):
			errs = append(errs, fmt.Errorf("%s is not a field of a %s target", k, kind))
		}
	}
	return errs
}

func unknownField(k string) error {
	for f := range fields {
		if strings.EqualFold(f, k) {
			return fmt.Errorf("unknown field %q: did you mean %q?", clip(k, 40), f)
		}
	}
	return fmt.Errorf("unknown field %q", clip(k, 40))
}

// parseMDM builds a target on an MDM server's API from its fields.
func parseMDM(kind string, v map[string]string, getenv func(string) string) (Target, error) {
	var errs []error
	key, err := secret(v["apiKeyEnv"], v["apiKeyFile"], getenv)
	if err != nil {
		errs = append(errs, err)
	}
	roots, err := caPool(v["caFile"])
	if err != nil {
		errs = append(errs, err)
	}
	var timeout time.Duration
	if s, ok := v["timeout"]; ok {
		timeout, err = time.ParseDuration(s)
		if err != nil || timeout <= 0 {
			errs = append(errs, fmt.Errorf("timeout %q is not a positive duration such as 30s or 2m", clip(s, 40)))
		}
	}
	if _, ok := v["user"]; ok && v["user"] == "" {
		errs = append(errs, errors.New("user is empty: leave it out for the default"))
	}
	if key == "" {
		// Stands in for the missing key so that the URL and name are
		// still checked; the target is not returned.
		key = "-"
	}
	m, err := newMDM(kind, Options{Name: v["name"], URL: v["url"], User: v["user"], APIKey: key, RootCAs: roots, Timeout: timeout})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// secret reads the API key from the environment variable or the file; it
// never puts the value in an error.
func secret(env, file string, getenv func(string) string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", errors.New("set apiKeyEnv or apiKeyFile, not both")
	case env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		key := strings.TrimSpace(getenv(env))
		if key == "" {
			return "", fmt.Errorf("the environment variable %s (apiKeyEnv) is not set or empty", env)
		}
		return key, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("apiKeyFile %s cannot be read: %w", file, errors.Unwrap(err))
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return "", fmt.Errorf("apiKeyFile %s is empty", file)
		}
		return key, nil
	}
	return "", errors.New("no API key: set apiKeyEnv (an environment variable) or apiKeyFile (a file) to where the key is")
}

// caPool is the system's roots plus the certificates in caFile, or nil
// (the system's roots) when caFile is empty.
func caPool(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("caFile %s cannot be read: %w", caFile, errors.Unwrap(err))
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("caFile %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,40}$`)

// checkName enforces the form of a target's name.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("name is missing")
	case !nameRE.MatchString(name):
		return fmt.Errorf("name %q must be 1 to 40 of a-z, 0-9 and -", clip(name, 40))
	}
	return nil
}

// split returns the errors joined in err, or err alone.
func split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, split(e)...)
		}
		return out
	}
	return []error{err}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
