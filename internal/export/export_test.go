package export_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"mime"
	"regexp"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushcert/pushcert/internal/export"
)

func TestFormats(t *testing.T) {
	got := export.Formats()
	want := []export.Format{export.PKCS12Compatible, export.PKCS12Modern, export.PEM}
	if len(got) != len(want) {
		t.Fatalf("got %d formats, want %d", len(got), len(want))
	}
	for i, o := range got {
		if o.Format != want[i] {
			t.Errorf("format %d: got %s, want %s", i, o.Format, want[i])
		}
		if o.Label == "" || o.Description == "" {
			t.Errorf("%s: got label %q and description %q, want both", o.Format, o.Label, o.Description)
		}
	}
	got[0].Label = "changed"
	if export.Formats()[0].Label == "changed" {
		t.Error("got a shared slice from Formats, want a new one per call")
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    export.Format
		wantErr bool
	}{
		{"pkcs12-compatible", export.PKCS12Compatible, false},
		{"pkcs12-modern", export.PKCS12Modern, false},
		{"pem", export.PEM, false},
		{"", "", true},
		{"PEM", "", true},
		{"pkcs12", "", true},
		{" pem", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := export.ParseFormat(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %q, %v, want %q and error %t", got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				return
			}
			for _, name := range []string{"pkcs12-compatible", "pkcs12-modern", "pem"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("got error %q, want it to list %s", err, name)
				}
			}
		})
	}
}

// TestPKCS12OpensInOpenSSL opens each PKCS#12 file with the real openssl
// and checks that it gives back the very certificate and key.
func TestPKCS12OpensInOpenSSL(t *testing.T) {
	p := newRSAPair(t)
	tests := []struct {
		name       string
		format     export.Format
		passphrase string
		flags      []string
	}{
		{"compatible with -legacy", export.PKCS12Compatible, "correct horse battery", []string{"-legacy"}},
		// 3DES is in OpenSSL 3's default provider; only RC2 needs -legacy.
		{"compatible without -legacy", export.PKCS12Compatible, "correct horse battery", nil},
		{"modern without -legacy", export.PKCS12Modern, "correct horse battery", nil},
		{"compatible, non-ASCII passphrase", export.PKCS12Compatible, "Grüße aus Köln, 東京", []string{"-legacy"}},
		{"modern, non-ASCII passphrase", export.PKCS12Modern, "Grüße aus Köln, 東京", nil},
		{"compatible, longest passphrase", export.PKCS12Compatible, strings.Repeat("東ä;", 341) + "z", nil},
		{"modern, longest passphrase", export.PKCS12Modern, strings.Repeat("東ä;", 341) + "z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := encode(t, tt.format, p, tt.passphrase)
			if f.ContentType != "application/x-pkcs12" || f.Name != "push-5E2A7C19D3B4F601.p12" {
				t.Errorf("got %s %s, want application/x-pkcs12 push-5E2A7C19D3B4F601.p12", f.ContentType, f.Name)
			}
			path := writeFile(t, f)
			args := append([]string{"pkcs12", "-in", path, "-passin", "pass:" + tt.passphrase, "-nodes"}, tt.flags...)
			out, err := openssl(t, args...)
			if err != nil {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args[3:], " "), err, out)
			}
			var certs, keys int
			for _, b := range pemBlocks([]byte(out)) {
				switch b.Type {
				case "CERTIFICATE":
					certs++
					if !bytes.Equal(b.Bytes, p.cert.Raw) {
						t.Error("got a certificate from openssl that is not the original")
					}
				case "PRIVATE KEY":
					keys++
					k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
					if err != nil {
						t.Fatalf("openssl's key: %v", err)
					}
					checkSameKey(t, k, p.key)
				}
			}
			if certs != 1 || keys != 1 {
				t.Errorf("got %d certificates and %d keys from openssl, want 1 and 1:\n%s", certs, keys, out)
			}

			out, err = openssl(t, append([]string{"pkcs12", "-in", path, "-passin", "pass:" + tt.passphrase + "x", "-nodes"}, tt.flags...)...)
			if err == nil || strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("openssl with a wrong passphrase: got success, want a failure:\n%s", out)
			}
		})
	}
}

// TestPKCS12Algorithms reads the algorithms each file uses from openssl
// -info: the compatible one is 3DES with a SHA-1 MAC throughout, the
// modern one AES-256 with a SHA-256 MAC throughout.
func TestPKCS12Algorithms(t *testing.T) {
	p := newRSAPair(t)
	tests := []struct {
		format  export.Format
		want    []string
		wantNot []string
	}{
		{export.PKCS12Compatible,
			[]string{"MAC: sha1,", "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"},
			[]string{"RC2", "PBES2"}},
		{export.PKCS12Modern,
			[]string{"MAC: sha256,", "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC", "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC", "PRF hmacWithSHA256"},
			[]string{"sha1", "TripleDES", "RC2", "AES-128", "AES-192"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			path := writeFile(t, encode(t, tt.format, p, "correct horse battery"))
			out, err := openssl(t, "pkcs12", "-in", path, "-passin", "pass:correct horse battery", "-info", "-noout", "-legacy")
			if err != nil {
				t.Fatalf("openssl pkcs12 -info: %v\n%s", err, out)
			}
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("got openssl -info without %q, want it:\n%s", s, out)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(out, s) {
					t.Errorf("got openssl -info with %q, want none:\n%s", s, out)
				}
			}
		})
	}
}

// TestPKCS12DecodesInGo reads each file back with go-pkcs12, with the
// right passphrase and a wrong one.
func TestPKCS12DecodesInGo(t *testing.T) {
	p := newRSAPair(t)
	for _, f := range []export.Format{export.PKCS12Compatible, export.PKCS12Modern} {
		t.Run(string(f), func(t *testing.T) {
			file := encode(t, f, p, "correct horse battery")
			key, cert, err := pkcs12.Decode(file.Data, "correct horse battery")
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !cert.Equal(p.cert) {
				t.Error("got a certificate that is not the original")
			}
			checkSameKey(t, key, p.key)
			if _, _, err := pkcs12.Decode(file.Data, "correct horse batterY"); !errors.Is(err, pkcs12.ErrIncorrectPassword) {
				t.Errorf("decode with a wrong passphrase: got %v, want %v", err, pkcs12.ErrIncorrectPassword)
			}
		})
	}
}

func TestPEM(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pair    pair
		keyType string
		parse   func([]byte) (any, error)
	}{
		{"RSA key as PKCS#1", newRSAPair(t), "RSA PRIVATE KEY", func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }},
		{"ECDSA key as PKCS#8", newPair(t, ecKey, big.NewInt(0x5E2A7C19D3B4F601)), "PRIVATE KEY", x509.ParsePKCS8PrivateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := encode(t, export.PEM, tt.pair, "")
			if f.ContentType != "application/x-pem-file" || f.Name != "push-5E2A7C19D3B4F601.pem" {
				t.Errorf("got %s %s, want application/x-pem-file push-5E2A7C19D3B4F601.pem", f.ContentType, f.Name)
			}
			blocks := pemBlocks(f.Data)
			if len(blocks) != 2 || blocks[0].Type != "CERTIFICATE" || blocks[1].Type != tt.keyType {
				t.Fatalf("got %d blocks %v, want CERTIFICATE then %s", len(blocks), blockTypes(blocks), tt.keyType)
			}
			for _, b := range blocks {
				if len(b.Headers) != 0 {
					t.Errorf("got %s headers %v, want none (unencrypted)", b.Type, b.Headers)
				}
			}
			cert, err := x509.ParseCertificate(blocks[0].Bytes)
			if err != nil || !cert.Equal(tt.pair.cert) {
				t.Errorf("got certificate %v, want the original", err)
			}
			key, err := tt.parse(blocks[1].Bytes)
			if err != nil {
				t.Fatalf("parse %s: %v", tt.keyType, err)
			}
			checkSameKey(t, key, tt.pair.key)
		})
	}
}

// TestMismatchedPairRefused gives every format a certificate and a key
// that are not a pair.
func TestMismatchedPairRefused(t *testing.T) {
	p := newRSAPair(t)
	other := newRSAPair(t)
	for _, o := range export.Formats() {
		t.Run(string(o.Format), func(t *testing.T) {
			pass := "correct horse battery"
			if o.Format == export.PEM {
				pass = ""
			}
			f, err := export.Encode(o.Format, p.certPEM, other.keyDER, pass)
			if !errors.Is(err, export.ErrKeyMismatch) || f.Data != nil || f.Name != "" {
				t.Errorf("got %v and %d bytes, want %v and nothing", err, len(f.Data), export.ErrKeyMismatch)
			}
		})
	}
}

// TestPassphraseRules checks each passphrase rule with both PKCS#12
// formats, and PEM's refusal of any passphrase.
func TestPassphraseRules(t *testing.T) {
	p := newRSAPair(t)
	pkcs12Formats := []export.Format{export.PKCS12Compatible, export.PKCS12Modern}
	tests := []struct {
		name       string
		formats    []export.Format
		passphrase string
		wantErr    string // "" when accepted
	}{
		{"empty", pkcs12Formats, "", "enter a passphrase of at least 8 characters"},
		{"7 characters", pkcs12Formats, "sevench", "the passphrase must be at least 8 characters"},
		{"8 characters", pkcs12Formats, "eightchr", ""},
		{"7 characters in 14 bytes", pkcs12Formats, "äöüäöüä", "the passphrase must be at least 8 characters"},
		{"8 characters beyond ASCII", pkcs12Formats, "äöüäöüäö", ""},
		{"1024 characters", pkcs12Formats, strings.Repeat("p", 1024), ""},
		{"1025 characters", pkcs12Formats, strings.Repeat("p", 1025), "the passphrase must be at most 1024 characters"},
		{"emoji", pkcs12Formats, "passphrase🔑", "cannot contain emoji"},
		{"line break", pkcs12Formats, "passphrase\n", "cannot contain control characters"},
		{"NUL", pkcs12Formats, "pass\x00phrase", "cannot contain control characters"},
		{"not UTF-8", pkcs12Formats, "passphrase\xff", "not valid text (UTF-8)"},
		{"PEM without one", []export.Format{export.PEM}, "", ""},
		{"PEM with one", []export.Format{export.PEM}, "correct horse battery", "a PEM file is not encrypted, so it takes no passphrase"},
	}
	for _, tt := range tests {
		for _, f := range tt.formats {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				file, err := export.Encode(f, p.certPEM, p.keyDER, tt.passphrase)
				if tt.wantErr == "" {
					if err != nil || len(file.Data) == 0 {
						t.Errorf("got %v and %d bytes, want a file", err, len(file.Data))
					}
					return
				}
				var pe *export.PassphraseError
				if !errors.As(err, &pe) || !strings.Contains(pe.Message, tt.wantErr) {
					t.Fatalf("got %v, want a *PassphraseError saying %q", err, tt.wantErr)
				}
				if tt.passphrase != "" && strings.Contains(err.Error(), tt.passphrase) {
					t.Errorf("got error %q, want it without the passphrase", err)
				}
				if file.Data != nil {
					t.Errorf("got %d bytes, want none", len(file.Data))
				}
			})
		}
	}
}

// TestBadInputErrorsHoldNoSecrets feeds Encode a broken certificate or key
// and checks the error names the problem without quoting the key.
func TestBadInputErrorsHoldNoSecrets(t *testing.T) {
	p := newRSAPair(t)
	rsaKey := p.key.(*rsa.PrivateKey)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p.keyDER}))
	tests := []struct {
		name    string
		certPEM string
		keyDER  []byte
		wantErr string
	}{
		{"key is PKCS#1", p.certPEM, pkcs1, "not PKCS#8"},
		{"key is truncated", p.certPEM, p.keyDER[:len(p.keyDER)/2], "not PKCS#8"},
		{"certificate is a key", keyPEM, p.keyDER, "PRIVATE KEY block, want CERTIFICATE"},
		{"certificate then key", p.certPEM + keyPEM, p.keyDER, "more than one block"},
		{"certificate is not PEM", "MIIB", p.keyDER, "not PEM"},
	}
	secrets := []string{rsaKey.D.Text(16), rsaKey.D.String(), strings.Split(keyPEM, "\n")[5], "correct horse battery"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := export.Encode(export.PKCS12Modern, tt.certPEM, tt.keyDER, "correct horse battery")
			var pe *export.PassphraseError
			if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error saying %q that is no *PassphraseError", err, tt.wantErr)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s[:16]) {
					t.Errorf("got error %q, want it without key material or the passphrase", err)
				}
			}
		})
	}
}

// TestFileNames checks the names for several serials are push-<HEX> and
// go into a Content-Disposition header without quoting.
func TestFileNames(t *testing.T) {
	key := newRSAKey(t)
	twentyOctets := new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 20))
	safe := regexp.MustCompile(`^push-[0-9A-F]{1,40}\.(p12|pem)$`)
	tests := []struct {
		serial *big.Int
		want   string
	}{
		{big.NewInt(1), "push-1"},
		{big.NewInt(0x1a2b3c), "push-1A2B3C"},
		{twentyOctets, "push-" + strings.Repeat("7F", 20)},
	}
	for _, tt := range tests {
		p := newPair(t, key, tt.serial)
		for _, o := range export.Formats() {
			t.Run(tt.want+"/"+string(o.Format), func(t *testing.T) {
				pass, ext := "correct horse battery", ".p12"
				if o.Format == export.PEM {
					pass, ext = "", ".pem"
				}
				name := encode(t, o.Format, p, pass).Name
				if name != tt.want+ext || !safe.MatchString(name) {
					t.Errorf("got %q, want %q matching %s", name, tt.want+ext, safe)
				}
				if h := mime.FormatMediaType("attachment", map[string]string{"filename": name}); h != "attachment; filename="+name {
					t.Errorf("got header %q, want the name unquoted", h)
				}
			})
		}
	}
}
