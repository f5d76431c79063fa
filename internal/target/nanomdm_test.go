package target

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/target/nanomdmtest"
)

// These tests deliver to a real NanoMDM (see nanomdmtest) and read what it
// stored.

// nanoTarget configures a target for srv the way an operator does, with
// a URL without path and the key from the environment.
func nanoTarget(t *testing.T, srv *nanomdmtest.Server, apiKey string) Target {
	t.Helper()
	conf := fmt.Sprintf(`{"targets": [{"name": "nano", "kind": "nanomdm", "url": %q, "apiKeyEnv": "NANOMDM_API_KEY"}]}`, srv.URL())
	targets, err := Parse("delivery.json", []byte(conf), getenv(map[string]string{"NANOMDM_API_KEY": apiKey}))
	if err != nil {
		t.Fatal(err)
	}
	return targets[0]
}

// wantStored checks that NanoMDM holds p's certificate and key.
func wantStored(t *testing.T, srv *nanomdmtest.Server, p Pair) {
	t.Helper()
	certPEM, keyPEM, ok := srv.StoredPair(t)
	if !ok {
		t.Fatal("got nothing stored in NanoMDM, want the pair")
	}
	cert, pub, _ := parseStored(t, certPEM, keyPEM)
	if got := fmt.Sprintf("%X", cert.SerialNumber); got != p.Certificate.SerialNumber {
		t.Errorf("got stored serial %s, want %s", got, p.Certificate.SerialNumber)
	}
	if !samePublicKey(t, p, pub) {
		t.Error("got a stored key that is not the delivered one")
	}
}

func TestNanoMDMDelivery(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	tg := nanoTarget(t, srv, srv.APIKey())
	if got, want := tg.Describe(), srv.URL()+"/v1/pushcert"; got != want {
		t.Errorf("got Describe %q, want %q", got, want)
	}
	topic := applesim.NewTopic()
	first := newPair(t, topic, rsaKey)
	if err := tg.Deliver(t.Context(), first); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	wantStored(t, srv, first)

	// A renewal keeps the topic and brings a new key.
	renewed := newPair(t, topic, rsaKey)
	if err := tg.Deliver(t.Context(), renewed); err != nil {
		t.Fatalf("renewed delivery: %v", err)
	}
	wantStored(t, srv, renewed)
}

func TestNanoMDMDeliversECDSA(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	p := newPair(t, "", ecdsaKey)
	if err := nanoTarget(t, srv, srv.APIKey()).Deliver(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	wantStored(t, srv, p)
}

func TestNanoMDMWrongAPIKey(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	err := nanoTarget(t, srv, "not-the-key").Deliver(t.Context(), newPair(t, "", rsaKey))
	wantMessage(t, err, "NanoMDM refused the API key (401)")
	if _, _, ok := srv.StoredPair(t); ok {
		t.Error("got a pair stored with the wrong API key, want none")
	}
}

func TestNanoMDMRefusesCertificate(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	err := nanoTarget(t, srv, srv.APIKey()).Deliver(t.Context(), newPair(t, applesim.NoTopic, rsaKey))
	// NanoMDM's own words come through.
	wantMessage(t, err, "NanoMDM refused the certificate (400): no APNs Topic found")
}

func TestNanoMDMDown(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	tg := nanoTarget(t, srv, srv.APIKey())
	p := newPair(t, "", rsaKey)

	srv.Stop()
	err := tg.Deliver(t.Context(), p)
	hostport := strings.TrimPrefix(srv.URL(), "http://")
	wantMessage(t, err, "connection refused by "+hostport+": is NanoMDM running?")

	srv.Start()
	if err := tg.Deliver(t.Context(), p); err != nil {
		t.Fatalf("delivery after the restart: %v", err)
	}
	wantStored(t, srv, p)
}

func TestNanoMDMCanceled(t *testing.T) {
	t.Parallel()
	srv := nanomdmtest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := nanoTarget(t, srv, srv.APIKey()).Deliver(ctx, newPair(t, "", rsaKey))
	wantMessage(t, err, "the delivery was canceled before NanoMDM")
}
