package pushcert_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

const keyMismatchMessage = "this certificate was issued for a CSR that pushcert did not generate (or one older than 90 days): download a new CSR from pushcert, upload it at Apple's portal, and upload the certificate Apple returns"

// activeTopic returns the topic of the active certificate.
func (e *env) activeTopic(t testing.TB) string {
	t.Helper()
	st := e.state(t)
	if st.Certificate == nil {
		t.Fatalf("no active certificate")
	}
	return st.Certificate.Topic
}

func TestUpdateRefused(t *testing.T) {
	ctx := context.Background()
	// update builds the request; the strings it returns must also be in
	// the refusal's message.
	type update func(t *testing.T, e *env) (pushcert.Update, []string)
	withCert := func(cert []byte) pushcert.Update {
		return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: cert}
	}
	pendingCert := func(req applesim.Request) update {
		return func(t *testing.T, e *env) (pushcert.Update, []string) {
			pk := e.csr(t)
			return withCert(applesim.PEM(e.issue(t, pk.CSRDER, req))), nil
		}
	}
	keyPEM := func(t *testing.T) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(otherKey(t))
		if err != nil {
			t.Fatalf("marshal key: %v", err)
		}
		return pemBlock("PRIVATE KEY", der)
	}
	tests := []struct {
		name         string
		active       bool // an active certificate exists first
		update       update
		wantField    string
		wantCode     string
		wantText     string
		wantRecorded bool
	}{
		{
			name: "larger than 1 MiB",
			update: func(*testing.T, *env) (pushcert.Update, []string) {
				return withCert(bytes.Repeat([]byte("A"), 1<<20+1)), nil
			},
			wantField: "certificate", wantCode: pushcert.CodeTooLarge, wantText: "larger than 1 MiB", wantRecorded: false,
		},
		{
			name:      "empty file",
			update:    func(*testing.T, *env) (pushcert.Update, []string) { return withCert([]byte{}), nil },
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate, wantText: "the certificate is empty", wantRecorded: true,
		},
		{
			name:      "private key instead of the certificate",
			update:    func(t *testing.T, _ *env) (pushcert.Update, []string) { return withCert(keyPEM(t)), nil },
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate,
			wantText:     "this is a private key, not a certificate: upload the certificate file Apple issued (.pem)",
			wantRecorded: true,
		},
		{
			name: "the CSR instead of the certificate",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				return withCert([]byte(e.csr(t).Request)), nil
			},
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate,
			wantText:     "this is a certificate signing request: take it to Apple's Push Certificates Portal and upload the certificate Apple gives back",
			wantRecorded: true,
		},
		{
			name: "PKCS 12 bundle",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				pk := e.csr(t)
				keyDER, err := x509.MarshalPKCS8PrivateKey(otherKey(t))
				if err != nil {
					t.Fatalf("marshal key: %v", err)
				}
				return withCert(pkcs12Bundle(t, e.issue(t, pk.CSRDER, applesim.Request{}), keyDER)), nil
			},
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate, wantText: "export the certificate alone as .pem", wantRecorded: true,
		},
		{
			name:      "placeholder text",
			update:    func(*testing.T, *env) (pushcert.Update, []string) { return withCert([]byte("Certificate value")), nil },
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate, wantText: "not a certificate pushcert can read", wantRecorded: true,
		},
		{
			name:      "certificate without a topic",
			update:    pendingCert(applesim.Request{Topic: applesim.NoTopic}),
			wantField: "certificate", wantCode: pushcert.CodeNotMDMCertificate, wantText: "not an MDM push certificate", wantRecorded: true,
		},
		{
			name:      "certificate with a topic that is not MDM",
			update:    pendingCert(applesim.Request{Topic: "com.apple.safari.push.example"}),
			wantField: "certificate", wantCode: pushcert.CodeNotMDMCertificate, wantText: `its topic "com.apple.safari.push.example" does not start with com.apple.mgmt.`, wantRecorded: true,
		},
		{
			name: "not yet valid",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				nb := e.clock.Now().Add(2 * day)
				pk := e.csr(t)
				return withCert(applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{NotBefore: nb}))), []string{nb.Format("2006-01-02 15:04 UTC")}
			},
			wantField: "certificate", wantCode: pushcert.CodeNotYetValid, wantText: "is not valid until", wantRecorded: true,
		},
		{
			name: "expired",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				now := e.clock.Now()
				pk := e.csr(t)
				der := e.issue(t, pk.CSRDER, applesim.Request{NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-35 * day)})
				return withCert(applesim.PEM(der)), []string{now.Add(-35 * day).Format(time.DateOnly)}
			},
			wantField: "certificate", wantCode: pushcert.CodeExpired, wantText: "this certificate expired on", wantRecorded: true,
		},
		{
			name: "issued by another authority",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				pk := e.csr(t)
				return withCert(applesim.PEM(issueWith(t, mustCA(t, foreignCA), e.clock.Now(), pk.CSRDER, applesim.Request{}))), []string{`"Example Push CA"`}
			},
			wantField: "certificate", wantCode: pushcert.CodeUntrustedIssuer, wantText: "not issued by Apple", wantRecorded: true,
		},
		{
			name: "key pushcert did not make",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				e.csr(t)
				return withCert(applesim.PEM(issueForKey(t, e.ca, e.clock.Now(), &otherKey(t).PublicKey, applesim.Request{}))), nil
			},
			wantField: "certificate", wantCode: pushcert.CodeKeyMismatch, wantText: keyMismatchMessage, wantRecorded: true,
		},
		{
			name: "CSR older than 90 days",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				pk := e.csr(t)
				e.clock.Advance(91 * day)
				return withCert(applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{}))), nil
			},
			wantField: "certificate", wantCode: pushcert.CodeKeyMismatch, wantText: keyMismatchMessage, wantRecorded: true,
		},
		{
			name:   "key of the active certificate, another topic",
			active: true,
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				old := e.activeTopic(t)
				newTopic := applesim.NewTopic()
				der := issueForKey(t, e.ca, e.clock.Now(), publicOf(t, e.activeKey(t)), applesim.Request{Topic: newTopic})
				return withCert(applesim.PEM(der)), []string{"from " + old + " to " + newTopic}
			},
			wantField: "certificate", wantCode: pushcert.CodeTopicMismatch, wantText: "every enrolled device would have to re-enroll", wantRecorded: true,
		},
		{
			name:   "topic change",
			active: true,
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				old := e.activeTopic(t)
				newTopic := applesim.NewTopic()
				pk := e.csr(t)
				return withCert(applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{Topic: newTopic}))), []string{
					"the topic changed from " + old + " to " + newTopic,
					"created anew instead of renewed",
					"another Apple ID",
					"every enrolled device would have to re-enroll",
					testAppleID,
				}
			},
			wantField: "certificate", wantCode: pushcert.CodeTopicMismatch, wantText: "topic changed", wantRecorded: true,
		},
		{
			name:   "older than the active certificate",
			active: true,
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				st := e.state(t)
				pk := e.csr(t)
				na := st.Certificate.NotAfter.Add(-30 * day)
				der := e.issue(t, pk.CSRDER, applesim.Request{Topic: st.Certificate.Topic, NotAfter: na})
				return withCert(applesim.PEM(der)), []string{na.Format(time.DateOnly), st.Certificate.NotAfter.Format(time.DateOnly)}
			},
			wantField: "certificate", wantCode: pushcert.CodeOlderCertificate, wantText: "before the active one", wantRecorded: true,
		},
		{
			name: "no Apple ID on the first upload",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, Certificate: applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{}))}, nil
			},
			wantField: "appleIdentifier", wantCode: pushcert.CodeInvalidAppleID,
			wantText:     "enter the Apple ID (an email address) that created the certificate at Apple's portal",
			wantRecorded: true,
		},
		{
			name: "Apple ID that is no email address, with a certificate",
			update: func(t *testing.T, e *env) (pushcert.Update, []string) {
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, AppleID: "mdm team", Certificate: applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{}))}, nil
			},
			wantField: "appleIdentifier", wantCode: pushcert.CodeInvalidAppleID, wantText: "enter the Apple ID", wantRecorded: true,
		},
		{
			name: "placeholder certificate and Apple ID, as in the API docs",
			update: func(*testing.T, *env) (pushcert.Update, []string) {
				return pushcert.Update{Actor: admin, AppleID: "Apple Identifier value", Certificate: []byte("Certificate value")}, nil
			},
			wantField: "certificate", wantCode: pushcert.CodeInvalidCertificate, wantText: "not a certificate pushcert can read", wantRecorded: true,
		},
		{
			name:   "Apple ID only, no email address",
			active: true,
			update: func(*testing.T, *env) (pushcert.Update, []string) {
				return pushcert.Update{Actor: admin, AppleID: "Ada <ada@example.com>"}, nil
			},
			wantField: "appleIdentifier", wantCode: pushcert.CodeInvalidAppleID, wantText: "enter the Apple ID",
		},
		{
			name:   "nothing to update",
			active: true,
			update: func(*testing.T, *env) (pushcert.Update, []string) {
				return pushcert.Update{Actor: admin, AppleID: "  "}, nil
			},
			wantField: "certificate", wantCode: pushcert.CodeNothingToUpdate, wantText: "nothing to update",
		},
		{
			name: "Apple ID only before any certificate",
			update: func(*testing.T, *env) (pushcert.Update, []string) {
				return pushcert.Update{Actor: admin, AppleID: testAppleID}, nil
			},
			wantField: "certificate", wantCode: pushcert.CodeNoCertificate, wantText: "there is no push certificate yet",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if tt.active {
				e.activate(t, "")
			}
			u, wantTexts := tt.update(t, e)
			before, beforeKey, beforeEvents, beforePending := e.state(t), e.activeKey(t), len(e.events(t)), e.pendingCount(t)
			if tt.active != (before.Certificate != nil) || tt.active != (beforeKey != nil) {
				t.Fatalf("got active certificate %v and key %v before, want %v", before.Certificate != nil, beforeKey != nil, tt.active)
			}

			got, err := e.svc.Update(ctx, u)

			var ve *pushcert.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got error %v (%T), want *ValidationError", err, err)
			}
			if !reflect.DeepEqual(got, pushcert.State{}) {
				t.Errorf("got state %+v with the refusal, want the zero State", got)
			}
			if ve.Field != tt.wantField || ve.Code != tt.wantCode {
				t.Errorf("got field %q code %q, want %q %q", ve.Field, ve.Code, tt.wantField, tt.wantCode)
			}
			for _, want := range append([]string{tt.wantText}, wantTexts...) {
				if !strings.Contains(ve.Message, want) {
					t.Errorf("got message %q, want it to contain %q", ve.Message, want)
				}
			}

			after := e.state(t)
			if !reflect.DeepEqual(after.Certificate, before.Certificate) {
				t.Errorf("got active certificate %+v, want it unchanged %+v", after.Certificate, before.Certificate)
			}
			if !bytes.Equal(e.activeKey(t), beforeKey) {
				t.Errorf("got the active key changed, want it unchanged")
			}
			if after.AppleID != before.AppleID || !after.LastModified.Equal(before.LastModified) || after.LastModifiedBy != before.LastModifiedBy {
				t.Errorf("got apple id %q modified %v by %v, want %q %v %v", after.AppleID, after.LastModified, after.LastModifiedBy, before.AppleID, before.LastModified, before.LastModifiedBy)
			}
			if n := e.pendingCount(t); n != beforePending {
				t.Errorf("got %d pending keys, want %d", n, beforePending)
			}
			events := e.events(t)
			if tt.wantRecorded {
				if after.Version != before.Version+1 || after.UploadStatus != pushcert.UploadFailed || after.UploadFailureReason != ve.Message {
					t.Errorf("got version %d status %q reason %q, want %d %q %q", after.Version, after.UploadStatus, after.UploadFailureReason, before.Version+1, pushcert.UploadFailed, ve.Message)
				}
				if len(events) != beforeEvents+1 {
					t.Fatalf("got %d events, want %d", len(events), beforeEvents+1)
				}
				ev := events[0]
				if ev.Kind != pushcert.EventUploadFailed || ev.Actor.Subject != admin.Subject || ev.Actor.Email != admin.Email || ev.Detail != ve.Message {
					t.Errorf("got event %s by %q: %q, want %s by %q: %q", ev.Kind, ev.Actor.Subject, ev.Detail, pushcert.EventUploadFailed, admin.Subject, ve.Message)
				}
			} else {
				if after.Version != before.Version || after.UploadStatus != before.UploadStatus || after.UploadFailureReason != before.UploadFailureReason {
					t.Errorf("got version %d status %q reason %q, want %d %q %q", after.Version, after.UploadStatus, after.UploadFailureReason, before.Version, before.UploadStatus, before.UploadFailureReason)
				}
				if len(events) != beforeEvents {
					t.Errorf("got %d events, want %d", len(events), beforeEvents)
				}
			}
		})
	}
}

func TestUpdateRefusalNamesCertificate(t *testing.T) {
	e := newEnv(t, nil)
	pk := e.csr(t)
	now := e.clock.Now()
	der := e.issue(t, pk.CSRDER, applesim.Request{NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(-day)})
	_, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der})
	if err == nil {
		t.Fatalf("got no error for an expired certificate, want one")
	}
	d := pushcert.Describe(parseCert(t, der))
	ev := e.events(t)[0]
	if ev.Serial != d.SerialNumber || ev.Topic != d.Topic || !ev.NotAfter.Equal(d.NotAfter) {
		t.Errorf("got failure event for %s %s %v, want %s %s %v", ev.Serial, ev.Topic, ev.NotAfter, d.SerialNumber, d.Topic, d.NotAfter)
	}
}

func TestUpdateAccepted(t *testing.T) {
	ctx := context.Background()
	// accepted is what a row expects of its update.
	type accepted struct {
		u           pushcert.Update
		cert        []byte           // DER that becomes active; nil: the active one stays
		key         crypto.PublicKey // the active key's public half afterwards
		appleID     string
		kind        pushcert.EventKind
		detail      string
		pendingLeft int
	}
	// first uploads a certificate for a new CSR, encoded by enc.
	first := func(enc func(t *testing.T, der []byte) []byte) func(t *testing.T, e *env) accepted {
		return func(t *testing.T, e *env) accepted {
			pk := e.csr(t)
			der := e.issue(t, pk.CSRDER, applesim.Request{})
			return accepted{
				u:    pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: enc(t, der)},
				cert: der, key: parseCert(t, der).PublicKey, appleID: testAppleID, kind: pushcert.EventUploadSucceeded,
			}
		}
	}
	// renew uploads, 300 days on, a certificate with the active topic for
	// a new CSR.
	renew := func(e *env, t *testing.T, u pushcert.Update) accepted {
		topic := e.activeTopic(t)
		e.clock.Advance(300 * day)
		pk := e.csr(t)
		der := e.issue(t, pk.CSRDER, applesim.Request{Topic: topic})
		u.Actor, u.Certificate = admin, applesim.PEM(der)
		return accepted{u: u, cert: der, key: parseCert(t, der).PublicKey, appleID: testAppleID, kind: pushcert.EventUploadSucceeded}
	}
	foreign := func(t *testing.T, e *env) accepted {
		pk := e.csr(t)
		der := issueWith(t, mustCA(t, foreignCA), e.clock.Now(), pk.CSRDER, applesim.Request{})
		return accepted{
			u:    pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der},
			cert: der, key: parseCert(t, der).PublicKey, appleID: testAppleID, kind: pushcert.EventUploadSucceeded,
		}
	}
	tests := []struct {
		name      string
		configure func(t *testing.T, cfg *pushcert.Config)
		active    bool // an active certificate exists first
		prepare   func(t *testing.T, e *env) accepted
	}{
		{name: "first certificate, PEM", prepare: first(func(_ *testing.T, der []byte) []byte { return applesim.PEM(der) })},
		{name: "first certificate, DER", prepare: first(func(_ *testing.T, der []byte) []byte { return der })},
		{name: "first certificate, base64", prepare: first(func(_ *testing.T, der []byte) []byte {
			return []byte(base64.StdEncoding.EncodeToString(der))
		})},
		{name: "first certificate, base64 URL alphabet in lines", prepare: first(func(_ *testing.T, der []byte) []byte {
			return []byte(wrapLines(base64.URLEncoding.EncodeToString(der), 76) + "\n")
		})},
		{name: "first certificate, PEM bundle with a key first", prepare: first(func(t *testing.T, der []byte) []byte {
			keyDER, err := x509.MarshalPKCS8PrivateKey(otherKey(t))
			if err != nil {
				t.Fatalf("marshal key: %v", err)
			}
			return append(pemBlock("PRIVATE KEY", keyDER), applesim.PEM(der)...)
		})},
		{name: "first certificate, Apple ID with spaces around", prepare: func(t *testing.T, e *env) accepted {
			a := first(func(_ *testing.T, der []byte) []byte { return applesim.PEM(der) })(t, e)
			a.u.AppleID = "  " + testAppleID + "\n"
			return a
		}},
		{name: "renewal with the same topic", active: true, prepare: func(t *testing.T, e *env) accepted {
			return renew(e, t, pushcert.Update{})
		}},
		{name: "renewal against the current version", active: true, prepare: func(t *testing.T, e *env) accepted {
			return renew(e, t, pushcert.Update{If: pushcert.AtVersion(e.state(t).Version)})
		}},
		{name: "renewal with a new Apple ID", active: true, prepare: func(t *testing.T, e *env) accepted {
			a := renew(e, t, pushcert.Update{AppleID: "it@example.com"})
			a.appleID, a.detail = "it@example.com", "Apple ID changed from "+testAppleID+" to it@example.com"
			return a
		}},
		{name: "topic change allowed", active: true, prepare: func(t *testing.T, e *env) accepted {
			old := e.activeTopic(t)
			pk := e.csr(t)
			der := e.issue(t, pk.CSRDER, applesim.Request{Topic: applesim.NewTopic()})
			return accepted{
				u:    pushcert.Update{Actor: admin, Certificate: der, AllowTopicChange: true},
				cert: der, key: parseCert(t, der).PublicKey, appleID: testAppleID, kind: pushcert.EventUploadSucceeded,
				detail: "topic changed from " + old + " (devices must re-enroll)",
			}
		}},
		{name: "certificate for the oldest of three CSRs", prepare: func(t *testing.T, e *env) accepted {
			pk1 := e.csr(t)
			e.clock.Advance(time.Minute)
			e.csr(t)
			e.clock.Advance(time.Minute)
			e.csr(t)
			der := e.issue(t, pk1.CSRDER, applesim.Request{})
			return accepted{
				u:    pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der},
				cert: der, key: parseCert(t, der).PublicKey, appleID: testAppleID, kind: pushcert.EventUploadSucceeded,
				pendingLeft: 2,
			}
		}},
		{name: "certificate for the active key", active: true, prepare: func(t *testing.T, e *env) accepted {
			st := e.state(t)
			e.csr(t) // an outstanding CSR is left alone
			pub := publicOf(t, e.activeKey(t))
			der := issueForKey(t, e.ca, e.clock.Now(), pub, applesim.Request{Topic: st.Certificate.Topic, NotAfter: st.Certificate.NotAfter.Add(200 * day)})
			return accepted{
				u:    pushcert.Update{Actor: admin, Certificate: der},
				cert: der, key: pub, appleID: testAppleID, kind: pushcert.EventUploadSucceeded,
				pendingLeft: 1,
			}
		}},
		{
			name:      "another issuer when any is allowed",
			configure: func(_ *testing.T, cfg *pushcert.Config) { cfg.AllowAnyIssuer = true },
			prepare:   foreign,
		},
		{
			name: "another issuer among the trust roots",
			configure: func(t *testing.T, cfg *pushcert.Config) {
				cfg.TrustRoots = x509.NewCertPool()
				cfg.TrustRoots.AddCert(mustCA(t, foreignCA).Cert)
			},
			prepare: foreign,
		},
		{name: "Apple ID only", active: true, prepare: func(t *testing.T, e *env) accepted {
			return accepted{
				u:       pushcert.Update{Actor: admin, AppleID: " new@example.com "},
				key:     publicOf(t, e.activeKey(t)),
				appleID: "new@example.com", kind: pushcert.EventAppleIDChanged,
				detail: "from " + testAppleID + " to new@example.com",
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *pushcert.Config) {
				if tt.configure != nil {
					tt.configure(t, cfg)
				}
			})
			if tt.active {
				e.activate(t, "")
			}
			a := tt.prepare(t, e)
			before, beforeEvents := e.state(t), len(e.events(t))

			got, err := e.svc.Update(ctx, a.u)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}

			after := e.state(t)
			if !reflect.DeepEqual(got, after) {
				t.Errorf("got returned state %+v, want the stored %+v", got, after)
			}
			if after.Version != before.Version+1 {
				t.Errorf("got version %d, want %d", after.Version, before.Version+1)
			}
			wantCert := before.Certificate
			if a.cert != nil {
				d := pushcert.Describe(parseCert(t, a.cert))
				wantCert = &d
			}
			if !reflect.DeepEqual(after.Certificate, wantCert) {
				t.Errorf("got certificate %+v, want %+v", after.Certificate, wantCert)
			}
			if after.AppleID != a.appleID {
				t.Errorf("got Apple ID %q, want %q", after.AppleID, a.appleID)
			}
			if after.UploadStatus != pushcert.UploadSucceeded || after.UploadFailureReason != "" {
				t.Errorf("got status %q reason %q, want %q and none", after.UploadStatus, after.UploadFailureReason, pushcert.UploadSucceeded)
			}
			if !after.LastModified.Equal(e.clock.Now()) || after.LastModifiedBy.Subject != admin.Subject {
				t.Errorf("got modified %v by %q, want %v by %q", after.LastModified, after.LastModifiedBy.Subject, e.clock.Now(), admin.Subject)
			}
			if pub := publicOf(t, e.activeKey(t)); !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(a.key) {
				t.Errorf("got an active key that is not the expected one")
			}
			if n := e.pendingCount(t); n != a.pendingLeft {
				t.Errorf("got %d pending keys left, want %d", n, a.pendingLeft)
			}
			events := e.events(t)
			if len(events) != beforeEvents+1 {
				t.Fatalf("got %d events, want %d", len(events), beforeEvents+1)
			}
			ev := events[0]
			var wantSerial, wantTopic string
			var wantNotAfter time.Time
			if a.cert != nil {
				wantSerial, wantTopic, wantNotAfter = wantCert.SerialNumber, wantCert.Topic, wantCert.NotAfter
			}
			if ev.Kind != a.kind || ev.Actor.Subject != admin.Subject || ev.Serial != wantSerial || ev.Topic != wantTopic ||
				!ev.NotAfter.Equal(wantNotAfter) || ev.Detail != a.detail {
				t.Errorf("got event %s by %q serial %q topic %q until %v detail %q, want %s by %q %q %q %v %q",
					ev.Kind, ev.Actor.Subject, ev.Serial, ev.Topic, ev.NotAfter, ev.Detail,
					a.kind, admin.Subject, wantSerial, wantTopic, wantNotAfter, a.detail)
			}
		})
	}
}

func TestUpdateSameAppleIDChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.activate(t, "")
	before, beforeEvents := e.state(t), len(e.events(t))
	got, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(e.state(t), before) {
		t.Errorf("got state %+v, want it unchanged %+v", got, before)
	}
	if n := len(e.events(t)); n != beforeEvents {
		t.Errorf("got %d events, want %d", n, beforeEvents)
	}
}

func TestAppleIDValidation(t *testing.T) {
	tests := []struct {
		appleID string
		valid   bool
	}{
		{"admin@example.com", true},
		{"first.last+mdm@sub.example.co.uk", true},
		{"  padded@example.com  ", true},
		{"not an email", false},
		{"admin@localhost", false},
		{"@example.com", false},
		{"admin@", false},
		{"admin@example.com.", false},
		{"admin@.example.com", false},
		{"admin@[192.0.2.1]", false},
		{"Ada <ada@example.com>", false},
		{"<ada@example.com>", false},
		{"ada@example.com (Ada)", false},
		{"ada @example.com", false},
		{"a\x00da@example.com", false},
		{`"ada lovelace"@example.com`, false},
		{"a,b@example.com", false},
		{strings.Repeat("a", 65) + "@example.com", false},
		{"a@" + strings.Repeat("b", 250) + ".com", false},
	}
	for _, tt := range tests {
		t.Run(tt.appleID, func(t *testing.T) {
			e := newEnv(t, nil)
			e.activate(t, "")
			before := e.state(t)
			st, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: tt.appleID})
			var ve *pushcert.ValidationError
			isInvalid := errors.As(err, &ve) && ve.Code == pushcert.CodeInvalidAppleID && ve.Field == "appleIdentifier"
			if tt.valid {
				if err != nil || st.AppleID != strings.TrimSpace(tt.appleID) {
					t.Errorf("got Apple ID %q, error %v, want %q accepted", st.AppleID, err, strings.TrimSpace(tt.appleID))
				}
				return
			}
			if !isInvalid {
				t.Errorf("got error %v, want %s on appleIdentifier", err, pushcert.CodeInvalidAppleID)
			}
			if after := e.state(t); !reflect.DeepEqual(after, before) {
				t.Errorf("got state %+v, want it unchanged", after)
			}
		})
	}
}

func TestUpdateStaleVersion(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		update func(t *testing.T, e *env, stale int64) pushcert.Update
	}{
		{"certificate", func(t *testing.T, e *env, stale int64) pushcert.Update {
			topic := e.activeTopic(t)
			e.clock.Advance(day)
			pk := e.csr(t)
			return pushcert.Update{Actor: admin, Certificate: e.issue(t, pk.CSRDER, applesim.Request{Topic: topic}), If: pushcert.AtVersion(stale)}
		}},
		{"refused certificate", func(_ *testing.T, _ *env, stale int64) pushcert.Update {
			return pushcert.Update{Actor: admin, Certificate: []byte("Certificate value"), If: pushcert.AtVersion(stale)}
		}},
		{"Apple ID", func(_ *testing.T, _ *env, stale int64) pushcert.Update {
			return pushcert.Update{Actor: admin, AppleID: "new@example.com", If: pushcert.AtVersion(stale)}
		}},
		{"nothing", func(_ *testing.T, _ *env, stale int64) pushcert.Update {
			return pushcert.Update{Actor: admin, If: pushcert.AtVersion(stale)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.activate(t, "")
			stale := e.state(t).Version
			if _, err := e.svc.Update(ctx, pushcert.Update{Actor: admin, AppleID: "other@example.com"}); err != nil {
				t.Fatalf("change Apple ID: %v", err)
			}
			u := tt.update(t, e, stale)
			before, beforeKey, beforeEvents, beforePending := e.state(t), e.activeKey(t), len(e.events(t)), e.pendingCount(t)

			got, err := e.svc.Update(ctx, u)
			if !errors.Is(err, pushcert.ErrPreconditionFailed) {
				t.Fatalf("got error %v, want ErrPreconditionFailed", err)
			}
			if !reflect.DeepEqual(got, pushcert.State{}) {
				t.Errorf("got state %+v, want the zero State", got)
			}
			if after := e.state(t); !reflect.DeepEqual(after, before) {
				t.Errorf("got state %+v, want it unchanged %+v", after, before)
			}
			if !bytes.Equal(e.activeKey(t), beforeKey) {
				t.Errorf("got the active key changed, want it unchanged")
			}
			if n := len(e.events(t)); n != beforeEvents {
				t.Errorf("got %d events, want %d: a conflict records nothing", n, beforeEvents)
			}
			if n := e.pendingCount(t); n != beforePending {
				t.Errorf("got %d pending keys, want %d", n, beforePending)
			}
		})
	}
}

// interleavingStore makes a competing write through the real store just
// before the service's next write, as a concurrent request would.
type interleavingStore struct {
	*store.DB
	once sync.Once
	race func()
}

func (s *interleavingStore) interleave() { s.once.Do(s.race) }

func (s *interleavingStore) Activate(ctx context.Context, a pushcert.Activation) (pushcert.State, error) {
	s.interleave()
	return s.DB.Activate(ctx, a)
}

func (s *interleavingStore) SetAppleID(ctx context.Context, v int64, appleID string, e pushcert.Event) (pushcert.State, error) {
	s.interleave()
	return s.DB.SetAppleID(ctx, v, appleID, e)
}

func (s *interleavingStore) RecordUploadFailure(ctx context.Context, v int64, reason string, e pushcert.Event) (pushcert.State, error) {
	s.interleave()
	return s.DB.RecordUploadFailure(ctx, v, reason, e)
}

func TestUpdateConcurrentChange(t *testing.T) {
	ctx := context.Background()
	other := auth.User{Subject: "sub-bob", Email: "bob@example.com"}
	tests := []struct {
		name      string
		update    func(t *testing.T, e *env) pushcert.Update
		wantErr   error  // a sentinel, or nil for a validation error
		wantCode  string // the validation error's code
		wantEvent pushcert.EventKind
	}{
		{
			name: "valid certificate",
			update: func(t *testing.T, e *env) pushcert.Update {
				topic := e.activeTopic(t)
				e.clock.Advance(day)
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, Certificate: e.issue(t, pk.CSRDER, applesim.Request{Topic: topic})}
			},
			wantErr: pushcert.ErrConflict, wantEvent: pushcert.EventAppleIDChanged,
		},
		{
			// The precondition held when the service read the state; the
			// store's check under the row lock is what catches the race.
			name: "valid certificate based on the version read",
			update: func(t *testing.T, e *env) pushcert.Update {
				topic := e.activeTopic(t)
				e.clock.Advance(day)
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, Certificate: e.issue(t, pk.CSRDER, applesim.Request{Topic: topic}), If: pushcert.AtVersion(e.state(t).Version)}
			},
			wantErr: pushcert.ErrPreconditionFailed, wantEvent: pushcert.EventAppleIDChanged,
		},
		{
			name: "Apple ID",
			update: func(*testing.T, *env) pushcert.Update {
				return pushcert.Update{Actor: admin, AppleID: "new@example.com"}
			},
			wantErr: pushcert.ErrConflict, wantEvent: pushcert.EventAppleIDChanged,
		},
		{
			name: "Apple ID if the resource exists",
			update: func(*testing.T, *env) pushcert.Update {
				return pushcert.Update{Actor: admin, AppleID: "new@example.com", If: pushcert.Precondition{Any: true}}
			},
			wantErr: pushcert.ErrPreconditionFailed, wantEvent: pushcert.EventAppleIDChanged,
		},
		{
			name: "refused certificate",
			update: func(*testing.T, *env) pushcert.Update {
				return pushcert.Update{Actor: admin, Certificate: []byte("Certificate value")}
			},
			wantCode: pushcert.CodeInvalidCertificate, wantEvent: pushcert.EventAppleIDChanged,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.activate(t, "")
			// From here on the service's first write is preceded by bob's.
			e.svc = pushcert.NewService(&interleavingStore{DB: e.db, race: func() {
				if _, err := e.db.SetAppleID(ctx, 0, "bob@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged, Actor: other, At: e.clock.Now()}); err != nil {
					t.Errorf("competing write: %v", err)
				}
			}}, testConfig(t, e.clock.Now))
			u := tt.update(t, e)
			before, beforeKey, beforePending := e.state(t), e.activeKey(t), e.pendingCount(t)

			_, err := e.svc.Update(ctx, u)

			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
			} else {
				var ve *pushcert.ValidationError
				if !errors.As(err, &ve) || ve.Code != tt.wantCode {
					t.Fatalf("got error %v, want a validation error %s", err, tt.wantCode)
				}
			}
			after := e.state(t)
			if !reflect.DeepEqual(after.Certificate, before.Certificate) || !bytes.Equal(e.activeKey(t), beforeKey) {
				t.Errorf("got the active certificate or key changed, want both unchanged")
			}
			if after.AppleID != "bob@example.com" || after.Version != before.Version+1 || after.UploadStatus != before.UploadStatus {
				t.Errorf("got Apple ID %q version %d status %q, want the competing write only: %q %d %q",
					after.AppleID, after.Version, after.UploadStatus, "bob@example.com", before.Version+1, before.UploadStatus)
			}
			if n := e.pendingCount(t); n != beforePending {
				t.Errorf("got %d pending keys, want %d", n, beforePending)
			}
			if ev := e.events(t)[0]; ev.Kind != tt.wantEvent || ev.Actor.Subject != other.Subject {
				t.Errorf("got last event %s by %q, want %s by %q", ev.Kind, ev.Actor.Subject, tt.wantEvent, other.Subject)
			}
		})
	}
}

func TestConcurrentUploads(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.activate(t, "")
	topic := e.activeTopic(t)
	e.clock.Advance(day)
	var updates []pushcert.Update
	for i := range 2 {
		pk := e.csr(t)
		der := e.issue(t, pk.CSRDER, applesim.Request{Topic: topic, NotAfter: e.clock.Now().AddDate(1, 0, i)})
		updates = append(updates, pushcert.Update{Actor: admin, Certificate: der})
	}
	errs := make([]error, len(updates))
	var wg sync.WaitGroup
	for i, u := range updates {
		wg.Go(func() { _, errs[i] = e.svc.Update(ctx, u) })
	}
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		var ve *pushcert.ValidationError
		switch {
		case err == nil:
			succeeded++
		case errors.Is(err, pushcert.ErrConflict), errors.As(err, &ve) && ve.Code == pushcert.CodeOlderCertificate:
		default:
			t.Errorf("got error %v, want none, ErrConflict or %s", err, pushcert.CodeOlderCertificate)
		}
	}
	if succeeded == 0 {
		t.Errorf("got no upload through, want at least one")
	}
	c, err := pushcert.ParseCertificate([]byte(e.state(t).Certificate.PEM))
	if err != nil {
		t.Fatalf("parse the stored certificate: %v", err)
	}
	if !publicOf(t, e.activeKey(t)).(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
		t.Errorf("got an active key that does not belong to the active certificate")
	}
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		active       bool
		update       func(t *testing.T, e *env) pushcert.Update
		wantErr      error  // sentinel expected, if any
		wantCode     string // validation code expected, if any
		wantRecorded bool   // a failure is recorded
		wantCreated  bool   // the uploaded certificate is active afterwards
	}{
		{
			name: "first certificate",
			update: func(t *testing.T, e *env) pushcert.Update {
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: e.issue(t, pk.CSRDER, applesim.Request{})}
			},
			wantCreated: true,
		},
		{
			name:   "a certificate exists",
			active: true,
			update: func(t *testing.T, e *env) pushcert.Update {
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: e.issue(t, pk.CSRDER, applesim.Request{Topic: e.activeTopic(t)})}
			},
			wantErr: pushcert.ErrExists,
		},
		{
			name: "no certificate",
			update: func(*testing.T, *env) pushcert.Update {
				return pushcert.Update{Actor: admin, AppleID: testAppleID}
			},
			wantCode: pushcert.CodeNoCertificate,
		},
		{
			name: "refused certificate",
			update: func(*testing.T, *env) pushcert.Update {
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: []byte("Certificate value")}
			},
			wantCode: pushcert.CodeInvalidCertificate, wantRecorded: true,
		},
		{
			name: "stale version",
			update: func(t *testing.T, e *env) pushcert.Update {
				pk := e.csr(t)
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: e.issue(t, pk.CSRDER, applesim.Request{}), If: pushcert.AtVersion(99)}
			},
			wantErr: pushcert.ErrPreconditionFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if tt.active {
				e.activate(t, "")
			}
			u := tt.update(t, e)
			before, beforeEvents := e.state(t), len(e.events(t))

			got, err := e.svc.Create(ctx, u)

			var ve *pushcert.ValidationError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
			case tt.wantCode != "":
				if !errors.As(err, &ve) || ve.Code != tt.wantCode {
					t.Fatalf("got error %v, want validation error %s", err, tt.wantCode)
				}
			case err != nil:
				t.Fatalf("got error %v, want none", err)
			}
			after := e.state(t)
			if tt.wantCreated {
				d := pushcert.Describe(parseCert(t, u.Certificate))
				if !reflect.DeepEqual(got, after) || after.Certificate == nil || *after.Certificate != d || after.AppleID != testAppleID {
					t.Errorf("got state %+v, want the new certificate %s active with %s", after, d.SerialNumber, testAppleID)
				}
				return
			}
			if !reflect.DeepEqual(after.Certificate, before.Certificate) || after.AppleID != before.AppleID {
				t.Errorf("got certificate %+v Apple ID %q, want them unchanged", after.Certificate, after.AppleID)
			}
			wantVersion, wantEvents, wantStatus := before.Version, beforeEvents, before.UploadStatus
			if tt.wantRecorded {
				wantVersion, wantEvents, wantStatus = before.Version+1, beforeEvents+1, pushcert.UploadFailed
			}
			if after.Version != wantVersion || after.UploadStatus != wantStatus {
				t.Errorf("got version %d status %q, want %d %q", after.Version, after.UploadStatus, wantVersion, wantStatus)
			}
			if n := len(e.events(t)); n != wantEvents {
				t.Errorf("got %d events, want %d", n, wantEvents)
			}
		})
	}
}

func TestGenerateCSR(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	pk1 := e.csr(t)
	e.clock.Advance(time.Minute)
	pk2 := e.csr(t)

	for _, pk := range []pushcert.PendingKey{pk1, pk2} {
		if pk.ID == "" || pk.KeyDER != nil || pk.VendorSigned || pk.CreatedBy != admin {
			t.Errorf("got id %q, key %d bytes, vendor-signed %v, by %v; want an id, no key, plain, by %v", pk.ID, len(pk.KeyDER), pk.VendorSigned, pk.CreatedBy, admin)
		}
		if pk.Request != pushcert.CSRPEM(pk.CSRDER) {
			t.Errorf("got request %q, want the PEM CSR", pk.Request)
		}
		csr, err := x509.ParseCertificateRequest(pk.CSRDER)
		if err != nil {
			t.Fatalf("parse csr: %v", err)
		}
		if got := csr.Subject.Organization; len(got) != 1 || got[0] != testOrg || csr.Subject.CommonName != testOrg+" MDM Push" {
			t.Errorf("got subject %q, want O=%s CN=%s MDM Push", csr.Subject, testOrg, testOrg)
		}
		hash, err := pushcert.PublicKeyHash(csr.PublicKey)
		if err != nil || hash != pk.PublicKeyHash {
			t.Errorf("got public key hash %q, want %q (err %v)", pk.PublicKeyHash, hash, err)
		}
	}
	if pk1.ID == pk2.ID || pk1.PublicKeyHash == pk2.PublicKeyHash {
		t.Errorf("got the same key twice, want a new one each call")
	}
	if !pk2.CreatedAt.Equal(e.clock.Now()) {
		t.Errorf("got created at %v, want %v", pk2.CreatedAt, e.clock.Now())
	}
	latest, err := e.svc.LatestCSR(ctx)
	if err != nil {
		t.Fatalf("LatestCSR: %v", err)
	}
	if latest.ID != pk2.ID || latest.Request != pk2.Request || latest.KeyDER != nil {
		t.Errorf("got latest %s (key %d bytes), want %s without its key", latest.ID, len(latest.KeyDER), pk2.ID)
	}
	if n := e.pendingCount(t); n != 2 {
		t.Errorf("got %d pending keys, want 2", n)
	}
	ev := e.events(t)
	if len(ev) != 2 || ev[0].Kind != pushcert.EventCSRGenerated || ev[0].Actor.Subject != admin.Subject {
		t.Errorf("got events %+v, want two %s by %s", ev, pushcert.EventCSRGenerated, admin.Subject)
	}
}

func TestGenerateCSRKeepsActive(t *testing.T) {
	e := newEnv(t, nil)
	e.activate(t, "")
	before, beforeKey := e.state(t), e.activeKey(t)
	e.csr(t)
	after := e.state(t)
	if !reflect.DeepEqual(after.Certificate, before.Certificate) || after.AppleID != before.AppleID || after.UploadStatus != before.UploadStatus {
		t.Errorf("got state %+v, want the active certificate untouched %+v", after, before)
	}
	if !bytes.Equal(e.activeKey(t), beforeKey) {
		t.Errorf("got the active key changed by a CSR, want it untouched")
	}
}

func TestGenerateCSRPrunes(t *testing.T) {
	tests := []struct {
		name        string
		lifetime    time.Duration // 0: the default
		advance     time.Duration
		wantLatest  bool // the first CSR is still the latest after advance
		wantPending int  // pending keys after a second CSR
	}{
		{"within the default lifetime", 0, 89 * day, true, 2},
		{"beyond the default lifetime", 0, 91 * day, false, 1},
		{"beyond a configured lifetime", 7 * day, 8 * day, false, 1},
		{"within a configured lifetime", 7 * day, 6 * day, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, func(cfg *pushcert.Config) { cfg.PendingKeyLifetime = tt.lifetime })
			wantLifetime := tt.lifetime
			if wantLifetime == 0 {
				wantLifetime = pushcert.DefaultPendingKeyLifetime
			}
			if got := e.svc.PendingKeyLifetime(); got != wantLifetime {
				t.Errorf("got lifetime %v, want %v", got, wantLifetime)
			}
			first := e.csr(t)
			e.clock.Advance(tt.advance)
			latest, err := e.svc.LatestCSR(ctx)
			switch {
			case tt.wantLatest && (err != nil || latest.ID != first.ID):
				t.Errorf("got latest %q (err %v), want %q", latest.ID, err, first.ID)
			case !tt.wantLatest && !errors.Is(err, pushcert.ErrNotFound):
				t.Errorf("got latest %q (err %v), want ErrNotFound", latest.ID, err)
			}
			e.csr(t)
			if n := e.pendingCount(t); n != tt.wantPending {
				t.Errorf("got %d pending keys, want %d", n, tt.wantPending)
			}
		})
	}
}

func TestLatestCSRNone(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.svc.LatestCSR(context.Background()); !errors.Is(err, pushcert.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestGenerateCSRVendorSigned(t *testing.T) {
	now := testclock.Start(t)
	id := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	v, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, now)
	if err != nil {
		t.Fatalf("NewVendor: %v", err)
	}
	e := newEnv(t, func(cfg *pushcert.Config) { cfg.Vendor = v })
	pk := e.csr(t)
	if !pk.VendorSigned {
		t.Errorf("got VendorSigned false, want true")
	}
	csrDER, chain, sig, err := pushcert.ParseVendorRequest(pk.Request)
	if err != nil {
		t.Fatalf("ParseVendorRequest: %v", err)
	}
	if len(chain) != 3 || !chain[0].Equal(id.cert) || !chain[1].Equal(id.inter) || !chain[2].Equal(id.root) {
		t.Fatalf("got chain of %d, want vendor, intermediate, root", len(chain))
	}
	if err := chain[0].CheckSignature(x509.SHA256WithRSA, csrDER, sig); err != nil {
		t.Errorf("got signature that does not verify with the vendor certificate: %v", err)
	}
	if !bytes.Equal(csrDER, pk.CSRDER) {
		t.Errorf("got a CSR in the request that is not the pending key's")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatalf("parse csr: %v", err)
	}
	if hash, err := pushcert.PublicKeyHash(csr.PublicKey); err != nil || hash != pk.PublicKeyHash {
		t.Errorf("got CSR key hash %q, want the pending key's %q", hash, pk.PublicKeyHash)
	}
	// Apple would issue for that CSR, and the certificate must be accepted.
	der := e.issue(t, csrDER, applesim.Request{})
	if _, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der}); err != nil {
		t.Errorf("got error %v uploading the certificate for the vendor-signed CSR, want none", err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.activate(t, "")
	for range 3 {
		e.clock.Advance(time.Minute)
		e.csr(t)
	}
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"default", 0, 5},
		{"negative means default", -1, 5},
		{"limited", 2, 2},
		{"more than there are", 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := e.svc.History(ctx, tt.limit)
			if err != nil {
				t.Fatalf("History: %v", err)
			}
			if len(ev) != tt.want {
				t.Fatalf("got %d events, want %d", len(ev), tt.want)
			}
			if ev[0].Kind != pushcert.EventCSRGenerated || !ev[0].At.Equal(e.clock.Now()) {
				t.Errorf("got first event %s at %v, want the newest, %s at %v", ev[0].Kind, ev[0].At, pushcert.EventCSRGenerated, e.clock.Now())
			}
			for i := 1; i < len(ev); i++ {
				if ev[i].At.After(ev[i-1].At) {
					t.Errorf("got event %d at %v after event %d at %v, want newest first", i, ev[i].At, i-1, ev[i-1].At)
				}
			}
		})
	}
}

func TestRotateKeys(t *testing.T) {
	const oldSecret, newSecret = "the first key-encryption secret", "the second key-encryption secret"
	tests := []struct {
		name         string
		secrets      []string // the keyring the rotation runs with
		wantRotation bool     // keys are re-encrypted
	}{
		{"same secret", []string{oldSecret}, false},
		{"new secret", []string{newSecret, oldSecret}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
			open := func(secrets ...string) *store.DB {
				kr, err := store.NewKeyring(secrets[0], secrets[1:]...)
				if err != nil {
					t.Fatalf("NewKeyring: %v", err)
				}
				db, err := store.Open(ctx, path, kr)
				if err != nil {
					t.Fatalf("store.Open: %v", err)
				}
				t.Cleanup(func() { _ = db.Close() })
				return db
			}
			e := &env{db: open(oldSecret), clock: testclock.New(t), ca: mustCA(t, appleCA)}
			e.svc = pushcert.NewService(e.db, testConfig(t, e.clock.Now))
			e.activate(t, "")
			pending := e.csr(t)
			keyBefore := e.activeKey(t)
			_ = e.db.Close()

			e.db = open(tt.secrets...)
			e.svc = pushcert.NewService(e.db, testConfig(t, e.clock.Now))
			n, err := e.svc.RotateKeys(ctx, auth.System)
			if err != nil {
				t.Fatalf("RotateKeys: %v", err)
			}
			// The active key, the open pending key and the one consumed by
			// the activation are all stored, so all three are re-encrypted.
			want := 0
			if tt.wantRotation {
				want = 3
			}
			if n != want {
				t.Errorf("got %d keys re-encrypted, want %d", n, want)
			}
			if ev := e.events(t)[0]; ev.Kind != pushcert.EventKeysRotated || ev.Actor.Subject != auth.System.Subject || !ev.At.Equal(e.clock.Now()) {
				t.Errorf("got event %s by %q at %v, want %s by %q at %v", ev.Kind, ev.Actor.Subject, ev.At, pushcert.EventKeysRotated, auth.System.Subject, e.clock.Now())
			}
			_ = e.db.Close()

			// With only the secret the keys are now under, both still read.
			e.db = open(tt.secrets[0])
			if !bytes.Equal(e.activeKey(t), keyBefore) {
				t.Errorf("got another active key after rotation, want the same key")
			}
			keys, err := e.db.PendingKeys(ctx, time.Time{})
			if err != nil || len(keys) != 1 || keys[0].ID != pending.ID {
				t.Errorf("got pending keys %d (err %v), want the one pending key readable", len(keys), err)
			}
		})
	}
}
