package main

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/target/nanomdmtest"
)

const deliveriesPath = "/api/pushcert/deliveries"

// deliveryConfig writes a delivery configuration file with targets and
// returns its path.
func deliveryConfig(t *testing.T, targets ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"targets": targets})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "delivery.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// renewalFor asks pushcert at base for a CSR and plays Apple renewing the
// certificate of topic: it returns the upload body.
func renewalFor(t *testing.T, base, token, topic string) []byte {
	t.Helper()
	code, body := apiCall(t, http.MethodPost, base+apiPath+"/generateApplePushNotificationCertificateSigningRequest", token, nil)
	if code != http.StatusOK {
		t.Fatalf("generate CSR: got %d %s, want 200", code, body)
	}
	var v struct{ Value string }
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(v.Value))
	if block == nil {
		t.Fatalf("generate CSR: got %q, want a PEM CSR", v.Value)
	}
	ca, err := appleCA()
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.IssueForCSR(block.Bytes, applesim.Request{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	upload, _ := json.Marshal(map[string]string{"appleIdentifier": "it@example.com", "certificate": string(applesim.PEM(der))})
	return upload
}

// upload sends body as a PATCH and returns the active serial and topic.
func upload(t *testing.T, base, token string, body []byte) (serial, topic string) {
	t.Helper()
	code, resp := apiCall(t, http.MethodPatch, base+apiPath, token, body)
	if code != http.StatusOK {
		t.Fatalf("upload: got %d %s, want 200", code, resp)
	}
	var e struct {
		Serial string `json:"certificateSerialNumber"`
		Topic  string `json:"topicIdentifier"`
	}
	if err := json.Unmarshal(resp, &e); err != nil {
		t.Fatal(err)
	}
	return e.Serial, e.Topic
}

// targetStatus is one target of GET /api/pushcert/deliveries.
type targetStatus struct {
	Name            string `json:"name"`
	InSync          bool   `json:"inSync"`
	State           string `json:"state"`
	DeliveredSerial string `json:"deliveredSerialNumber"`
	LastResult      string `json:"lastResult"`
	LastError       string `json:"lastError"`
}

func deliveries(t *testing.T, base, token string) map[string]targetStatus {
	t.Helper()
	code, body := apiCall(t, http.MethodGet, base+deliveriesPath, token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", deliveriesPath, code, body)
	}
	var v struct{ Targets []targetStatus }
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]targetStatus{}
	for _, ts := range v.Targets {
		out[ts.Name] = ts
	}
	return out
}

// waitDelivery polls the delivery status until ok holds for target, and
// returns it; it fails the test after 30 s with the last status seen.
func waitDelivery(t *testing.T, base, token, name string, ok func(targetStatus) bool) targetStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts := deliveries(t, base, token)[name]
		if ok(ts) {
			return ts
		}
		if time.Now().After(deadline) {
			t.Fatalf("target %s: still %+v after 30 s", name, ts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedSerial is the serial of the certificate NanoMDM holds ("" when
// none), after checking that the key it holds is that certificate's.
func storedSerial(t *testing.T, nano *nanomdmtest.Server) string {
	t.Helper()
	certPEM, keyPEM, ok := nano.StoredPair(t)
	if !ok {
		return ""
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatalf("NanoMDM holds no PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS1PrivateKey(kb.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
		key, _ = k.(crypto.Signer)
	}
	pub, _ := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if key == nil || pub == nil || !pub.Equal(key.Public()) {
		t.Fatal("NanoMDM holds a certificate and a key that are not a pair")
	}
	return fmt.Sprintf("%X", cert.SerialNumber)
}

// waitStored waits until NanoMDM holds the certificate with serial.
func waitStored(t *testing.T, nano *nanomdmtest.Server, serial string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := storedSerial(t, nano); got != serial; got = storedSerial(t, nano) {
		if time.Now().After(deadline) {
			t.Fatalf("NanoMDM holds serial %q after 30 s, want %s", got, serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeliveryToNanoMDM is the issue's "done when" on one machine: an
// upload puts the certificate and its key into a real NanoMDM within
// seconds and the status says in sync; with NanoMDM stopped a renewal shows
// out of sync with the reason, and once NanoMDM is back it is delivered
// without anyone acting.
func TestDeliveryToNanoMDM(t *testing.T) {
	nano := nanomdmtest.Start(t)
	provider := startProvider(t)
	listen := freeAddr(t)
	cfg := deliveryConfig(t, map[string]string{"name": "nanomdm", "kind": "nanomdm", "url": nano.URL(), "apiKeyEnv": "TEST_NANOMDM_API_KEY"})
	addr, out := startRun(t, nil, env(prodEnv(t, provider, listen, map[string]string{
		"PUSHCERT_DELIVERY_CONFIG": cfg,
		"TEST_NANOMDM_API_KEY":     nano.APIKey(),
	})))
	base := "http://" + addr
	token := providerToken(t, provider, "admin")

	if ts := deliveries(t, base, token)["nanomdm"]; ts.State != "nothing" || ts.InSync {
		t.Errorf("before any certificate: got %+v, want state nothing", ts)
	}
	serial, topic := upload(t, base, token, certificateForNewCSR(t, base, token))
	waitStored(t, nano, serial)
	ts := waitDelivery(t, base, token, "nanomdm", func(ts targetStatus) bool { return ts.InSync })
	if ts.DeliveredSerial != serial || ts.State != "in-sync" || ts.LastResult != "succeeded" {
		t.Errorf("after the upload: got %+v, want in sync with %s", ts, serial)
	}
	metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, `pushcert_delivery_in_sync{kind="nanomdm",target="nanomdm"} 1`) ||
		!strings.Contains(metrics, `pushcert_delivery_last_success_timestamp_seconds{kind="nanomdm",target="nanomdm"}`) {
		t.Errorf("/metrics lacks the target's gauges:\n%s", grepLines(metrics, "pushcert_delivery"))
	}

	nano.Stop()
	renewed, _ := upload(t, base, token, renewalFor(t, base, token, topic))
	ts = waitDelivery(t, base, token, "nanomdm", func(ts targetStatus) bool { return ts.LastResult == "failed" })
	if ts.InSync || ts.State != "out-of-sync" || ts.DeliveredSerial != serial || !strings.Contains(ts.LastError, "connection refused") {
		t.Errorf("with NanoMDM down: got %+v, want out of sync on %s because the connection was refused", ts, serial)
	}
	if got := storedSerial(t, nano); got != serial {
		t.Errorf("NanoMDM holds %s while down, want the earlier %s", got, serial)
	}

	nano.Start()
	waitStored(t, nano, renewed)
	ts = waitDelivery(t, base, token, "nanomdm", func(ts targetStatus) bool { return ts.InSync })
	if ts.DeliveredSerial != renewed || ts.LastError != "" {
		t.Errorf("after NanoMDM is back: got %+v, want in sync with %s", ts, renewed)
	}
	if logs := out.String(); strings.Contains(logs, nano.APIKey()) || strings.Contains(logs, "PRIVATE KEY") {
		t.Error("the log holds NanoMDM's API key or a private key")
	}
}

// get fetches url and returns the body of a 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d, want 200", url, resp.StatusCode)
	}
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// countingNanoMDM is an HTTP server that answers as NanoMDM does and counts
// the certificates it receives, by serial.
type countingNanoMDM struct {
	mu   sync.Mutex
	got  map[string]int
	down atomic.Bool // answers 503, as a server in maintenance
}

func (c *countingNanoMDM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if c.down.Load() {
		http.Error(w, `{"error":"maintenance"}`, http.StatusServiceUnavailable)
		return
	}
	b, _ := pem.Decode(body)
	if r.Method != http.MethodPut || b == nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		http.Error(w, `{"error":"bad certificate"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.got[fmt.Sprintf("%X", cert.SerialNumber)]++
	c.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]string{"topic": pushcert.Describe(cert).Topic})
}

func (c *countingNanoMDM) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.got {
		out[k] = v
	}
	return out
}

// TestDeliveryReplicasOnPostgres: two replicas on one PostgreSQL database,
// both reconciling every second, deliver each activation once, whichever
// replica took the upload.
func TestDeliveryReplicasOnPostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	bin := buildReplicaBinary(t)
	provider := startProvider(t)
	rec := &countingNanoMDM{got: map[string]int{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	mdm := srv.URL
	shared := map[string]string{
		"PUSHCERT_DATABASE_URL":      dbURL,
		"PUSHCERT_DELIVERY_CONFIG":   deliveryConfig(t, map[string]string{"name": "mdm", "kind": "nanomdm", "url": mdm, "apiKeyEnv": "TEST_MDM_KEY"}),
		"PUSHCERT_DELIVERY_INTERVAL": "1s",
		"TEST_MDM_KEY":               "test-api-key",
	}
	a := newReplica(t, bin, "replica A", prodEnv(t, provider, freeAddr(t), shared))
	b := newReplica(t, bin, "replica B", prodEnv(t, provider, freeAddr(t), shared))
	a.start(t)
	b.start(t)
	a.waitReady(t)
	b.waitReady(t)
	token := providerToken(t, provider, "admin")

	first, topic := upload(t, a.base, token, certificateForNewCSR(t, a.base, token))
	waitDelivery(t, b.base, token, "mdm", func(ts targetStatus) bool { return ts.InSync && ts.DeliveredSerial == first })
	second, _ := upload(t, b.base, token, renewalFor(t, b.base, token, topic))
	waitDelivery(t, a.base, token, "mdm", func(ts targetStatus) bool { return ts.InSync && ts.DeliveredSerial == second })

	// The MDM server goes down during the next renewal: both replicas show
	// it out of sync with the reason, and once it is back it gets the
	// certificate without anyone acting.
	rec.down.Store(true)
	third, _ := upload(t, a.base, token, renewalFor(t, a.base, token, topic))
	ts := waitDelivery(t, b.base, token, "mdm", func(ts targetStatus) bool { return ts.LastResult == "failed" })
	if ts.State != "out-of-sync" || ts.DeliveredSerial != second || !strings.Contains(ts.LastError, "503") {
		t.Errorf("with the server down, through B: got %+v, want out of sync on %s with the 503", ts, second)
	}
	rec.down.Store(false)
	waitDelivery(t, b.base, token, "mdm", func(ts targetStatus) bool { return ts.InSync && ts.DeliveredSerial == third })
	// Both replicas reconcile every second: give each several turns to
	// deliver again.
	time.Sleep(3 * time.Second)
	if got := rec.counts(); len(got) != 3 || got[first] != 1 || got[second] != 1 || got[third] != 1 {
		t.Errorf("the MDM server got %v, want %s, %s and %s once each", got, first, second, third)
	}
	if t.Failed() {
		for _, r := range []*replica{a, b} {
			t.Logf("%s log:\n%s", r.name, r.out.String())
		}
	}
}

// TestSlowTargetNeverDelaysActivation: an upload answers at once with the
// new certificate active while its delivery to a target that has not
// answered yet is still in flight; the target then gets it.
func TestSlowTargetNeverDelaysActivation(t *testing.T) {
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		arrived <- struct{}{}
		<-release
		_ = json.NewEncoder(w).Encode(map[string]string{"topic": topicOf(body)})
	}))
	t.Cleanup(slow.Close)
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)

	provider := startProvider(t)
	cfg := deliveryConfig(t, map[string]string{"name": "slow", "kind": "nanomdm", "url": slow.URL, "apiKeyEnv": "TEST_SLOW_KEY"})
	addr, _ := startRun(t, nil, env(prodEnv(t, provider, freeAddr(t), map[string]string{
		"PUSHCERT_DELIVERY_CONFIG": cfg,
		"TEST_SLOW_KEY":            "test-api-key",
	})))
	base := "http://" + addr
	token := providerToken(t, provider, "admin")
	serial, _ := upload(t, base, token, certificateForNewCSR(t, base, token))
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivery never reached the target")
	}
	if ts := deliveries(t, base, token)["slow"]; ts.State != "pending" || ts.LastResult != "none" {
		t.Errorf("while the target has not answered: got %+v, want pending with no result yet", ts)
	}
	releaseAll()
	ts := waitDelivery(t, base, token, "slow", func(ts targetStatus) bool { return ts.InSync })
	if ts.DeliveredSerial != serial {
		t.Errorf("got %+v, want in sync with %s", ts, serial)
	}
}

// topicOf is the topic of the PEM certificate that starts body, as NanoMDM
// names it in its answer.
func topicOf(body []byte) string {
	b, _ := pem.Decode(body)
	if b == nil {
		return ""
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return ""
	}
	return pushcert.Describe(c).Topic
}
