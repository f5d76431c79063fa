package pushcert

// This file holds the issuer rule: an uploaded certificate must chain to
// Apple's certificate authorities, shipped in the binary, or to those the
// operator added.

import (
	"bytes"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// appleCAFiles are Apple's public root and intermediate authorities as
// Apple publishes them at https://www.apple.com/certificateauthority/. A
// test checks each against its published SHA-256 fingerprint.
//
//go:embed appleca/*.pem
var appleCAFiles embed.FS

// appleCAs parses the embedded authorities once: roots are the self-signed
// ones, the others intermediates.
var appleCAs = sync.OnceValues(func() (roots, intermediates []*x509.Certificate) {
	var all []byte
	err := fs.WalkDir(appleCAFiles, "appleca", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := appleCAFiles.ReadFile(path)
		all = append(append(all, b...), '\n')
		return err
	})
	if err == nil {
		roots, intermediates, err = SplitTrustBundle(all)
	}
	if err != nil {
		panic(fmt.Sprintf("embedded Apple authorities: %v", err)) // the build is broken
	}
	return roots, intermediates
})

// SplitTrustBundle reads the PEM certificates of a trust bundle and sorts
// them: self-signed ones are roots, the others intermediates, which are
// trusted only where they chain to a root. Blocks other than certificates
// are an error, and so is a bundle without any certificate.
func SplitTrustBundle(data []byte) (roots, intermediates []*x509.Certificate, err error) {
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("block %d is a %s, not a CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		if selfSigned(c) {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	if len(roots)+len(intermediates) == 0 {
		return nil, nil, errors.New("it holds no PEM certificate")
	}
	return roots, intermediates, nil
}

// selfSigned reports whether c names itself as issuer (with its own key
// identifier, when it names one). The signature is not checked: a root's
// is never relied on, and Apple's oldest root is signed with SHA-1, which
// crypto/x509 refuses to check.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		(len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId))
}

// trust is what an upload's chain is verified against.
type trust struct {
	anyIssuer     bool
	roots         *x509.CertPool
	intermediates *x509.CertPool
}

// newTrust joins Apple's embedded authorities with the operator's.
func newTrust(cfg Config) trust {
	t := trust{anyIssuer: cfg.AllowAnyIssuer, roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
	if cfg.TrustRoots != nil {
		t.roots = cfg.TrustRoots.Clone()
	}
	if cfg.TrustIntermediates != nil {
		t.intermediates = cfg.TrustIntermediates.Clone()
	}
	roots, intermediates := appleCAs()
	for _, c := range roots {
		t.roots.AddCert(c)
	}
	for _, c := range intermediates {
		t.intermediates.AddCert(c)
	}
	return t
}

// verify checks that c chains to a trusted root at now, through known
// intermediates and the extra certificates uploaded with it. Only a chain
// counts: an issuer's name, however much it looks like Apple's, does not.
func (t trust) verify(c *x509.Certificate, extra []*x509.Certificate, now time.Time) error {
	if t.anyIssuer {
		return nil
	}
	intermediates := t.intermediates
	if len(extra) > 0 {
		// A bundle's certificates only help build a chain: one that is
		// self-signed still has to be a trusted root to end it.
		intermediates = intermediates.Clone()
		for _, e := range extra {
			intermediates.AddCert(e)
		}
	}
	_, err := c.Verify(x509.VerifyOptions{
		Roots:         t.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		// Apple's push certificates carry the client-auth usage (they
		// authenticate to APNs); its authorities carry no usage list.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

// untrustedIssuer is the refusal of a certificate that does not chain to a
// trusted authority.
func untrustedIssuer(c *x509.Certificate, d Certificate) *ValidationError {
	issuer := d.Issuer
	if issuer == "" {
		issuer = clip(c.Issuer.String())
	}
	return &ValidationError{Field: "certificate", Code: CodeUntrustedIssuer,
		Message: fmt.Sprintf("this certificate was not issued by Apple: its issuer %q does not chain to Apple's certificate authorities or to one this server's operator added; upload the certificate Apple issued at Apple's Push Certificates Portal (identity.apple.com), and if Apple now issues from a new intermediate authority, the operator adds it to PUSHCERT_TRUST_BUNDLE", clip(issuer))}
}
