package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// signing is what the service trusts and signs with, read from files.
type signing struct {
	vendor        *pushcert.Vendor
	roots         *x509.CertPool // the trust bundle's self-signed authorities
	intermediates *x509.CertPool // the trust bundle's other authorities
}

// loadSigning reads the vendor signing files and the trust bundle, so that
// a bad file stops startup before anything listens.
func loadSigning(cfg *config, now func() time.Time) (*signing, error) {
	vendor, err := loadVendor(cfg, now)
	if err != nil {
		return nil, err
	}
	roots, intermediates, err := loadTrustBundle(cfg.TrustBundleFile)
	if err != nil {
		return nil, err
	}
	return &signing{vendor: vendor, roots: roots, intermediates: intermediates}, nil
}

func loadVendor(cfg *config, now func() time.Time) (*pushcert.Vendor, error) {
	if cfg.VendorCertFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.VendorCertFile)
	if err != nil {
		return nil, fmt.Errorf("vendor certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.VendorKeyFile)
	if err != nil {
		return nil, fmt.Errorf("vendor key: %w", err)
	}
	var chainPEM []byte
	if cfg.VendorChainFile != "" {
		if chainPEM, err = os.ReadFile(cfg.VendorChainFile); err != nil {
			return nil, fmt.Errorf("vendor chain: %w", err)
		}
	}
	v, err := pushcert.NewVendor(certPEM, keyPEM, chainPEM, now())
	if err != nil {
		return nil, fmt.Errorf("vendor signing (PUSHCERT_VENDOR_CERT, PUSHCERT_VENDOR_KEY): %w", err)
	}
	return v, nil
}

// loadTrustBundle reads the authorities the operator trusts besides
// Apple's: self-signed ones become roots, the others intermediates (a new
// Apple intermediate, say, which chains to Apple's embedded root).
func loadTrustBundle(path string) (roots, intermediates *x509.CertPool, err error) {
	if path == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("trust bundle (PUSHCERT_TRUST_BUNDLE): %w", err)
	}
	r, i, err := pushcert.SplitTrustBundle(b)
	if err != nil {
		return nil, nil, fmt.Errorf("trust bundle %s (PUSHCERT_TRUST_BUNDLE): %w", path, err)
	}
	return pool(r), pool(i), nil
}

// pool holds certs; nil when there are none.
func pool(certs []*x509.Certificate) *x509.CertPool {
	if len(certs) == 0 {
		return nil
	}
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
