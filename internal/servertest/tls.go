package servertest

// Certificates for the tests of HTTPS and WSS, from a CA made by the test.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/server"
)

// CA is a certificate authority made for one test.
type CA struct {
	t    *testing.T
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	File string         // its certificate, PEM: what --cacert takes
	Pool *x509.CertPool // the same, for Go clients
}

// NewCA makes a CA whose certificate is in a file of its own.
func NewCA(t *testing.T) *CA {
	t.Helper()
	ca := &CA{t: t, Key: newKey(t), File: filepath.Join(t.TempDir(), "ca.pem"), Pool: x509.NewCertPool()}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.Key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	ca.Pool.AddCert(ca.Cert)
	replaceFile(t, ca.File, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Issue writes a certificate for 127.0.0.1 and localhost with serial,
// signed by ca, and its key into dir as cert.pem and key.pem, each
// replacing the file before it by rename, as renewal tools do.
func (ca *CA) Issue(dir string, serial int64) (certFile, keyFile string) {
	ca.t.Helper()
	key := newKey(ca.t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(ca.t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	replaceFile(ca.t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return certFile, keyFile
}

// replaceFile writes b into a new file renamed over path.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// Client is an HTTP client that trusts ca alone.
func (ca *CA) Client() *http.Client {
	c := &http.Client{Timeout: IOTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	ca.t.Cleanup(c.CloseIdleConnections)
	return c
}

// StartTLS starts the server with a certificate of serial 1 from ca,
// in dir; ta.HTTP trusts ca.
func StartTLS(t *testing.T, ca *CA, dir string) *Server {
	t.Helper()
	certFile, keyFile := ca.Issue(dir, 1)
	ta := Start(t, server.Config{TLSCert: certFile, TLSKey: keyFile})
	ta.HTTP = ca.Client()
	return ta
}
