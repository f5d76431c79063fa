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
	vendor *pushcert.Vendor
	roots  *x509.CertPool
}

// loadSigning reads the vendor signing files and the trust bundle, so that
// a bad file stops startup before anything listens.
func loadSigning(cfg *config, now func() time.Time) (*signing, error) {
	vendor, err := loadVendor(cfg, now)
	if err != nil {
		return nil, err
	}
	roots, err := loadTrustBundle(cfg.TrustBundleFile)
	if err != nil {
		return nil, err
	}
	return &signing{vendor: vendor, roots: roots}, nil
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

func loadTrustBundle(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("trust bundle %s holds no PEM certificates", path)
	}
	return pool, nil
}
