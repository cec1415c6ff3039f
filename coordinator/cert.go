package coordinator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files of the certificate made for a run with --tls. The certificate is
// public (a worker started by hand can trust it with --tls-ca); the key stays
// readable by its owner only.
const (
	CertFile = "queue-cert.pem"
	keyFile  = "queue-key.pem"
)

// certValidity covers a long run and its resumes; nothing outside the run
// trusts the certificate.
const certValidity = 90 * 24 * time.Hour

// runCertificate loads the run's certificate from its state directory, or
// makes one. A resumed run keeps the one it had, so workers' pins still hold.
// names (host names and addresses) go into the certificate for the sake of
// workers that check it by name rather than by pin.
func runCertificate(runDir string, names []string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(runDir, CertFile), filepath.Join(runDir, keyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, private(keyPath)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return cert, fmt.Errorf("load run certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert, fmt.Errorf("make run certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return cert, fmt.Errorf("make run certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "scrape run queue"},
		NotBefore:             now.Add(-time.Hour), // clocks of a small cluster drift
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that the file serves as its own --tls-ca
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert, fmt.Errorf("make run certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return cert, fmt.Errorf("make run certificate: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return cert, fmt.Errorf("write run certificate: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return cert, fmt.Errorf("write run certificate: %w", err)
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// certNames are the names a worker may dial this machine by.
func certNames(advertise string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if advertise != "" {
		names = append(names, advertise)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				names = append(names, ipn.IP.String())
			}
		}
	}
	return names
}
