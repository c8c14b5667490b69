package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLS is a Server's TLS listener: a self-signed certificate for
// 127.0.0.1, which clients must be told to trust.
type TLS struct {
	Port   int
	CAFile string // PEM of the certificate, to trust
}

// withTLS makes the server also listen for TLS, with a certificate made
// for it, and the plain port stays for the test's own commands.
func (s *Server) withTLS(t testing.TB) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(s.Dir, "cert.pem"), filepath.Join(s.Dir, "key.pem")
	write := func(path, kind string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	s.TLS = &TLS{Port: FreePort(t), CAFile: certFile}
	s.args = append(s.args, "--tls-port", strconv.Itoa(s.TLS.Port), "--tls-cert-file", certFile,
		"--tls-key-file", keyFile, "--tls-auth-clients", "no")
}

// TLSURL is the rediss:// URL of database 0 on the TLS port, with the
// password if the server has one.
func (s *Server) TLSURL() string {
	auth := ""
	if s.password != "" {
		auth = ":" + s.password + "@"
	}
	return "rediss://" + auth + "127.0.0.1:" + strconv.Itoa(s.TLS.Port) + "/0"
}
