package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate and key whose serial is serial.
// The reloader never verifies, so no CA is needed.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// replace writes b to path the way renewal tools do: into a new file,
// renamed over the old one.
func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reloader is a certificate on files in a temporary directory, looked at
// on every handshake, with its warnings counted.
type reloader struct {
	t                 *testing.T
	c                 *certificate
	certFile, keyFile string
	logs              *bytes.Buffer
}

// newReloader writes a pair of serial 1 and loads it.
func newReloader(t *testing.T, every time.Duration) *reloader {
	t.Helper()
	dir := t.TempDir()
	r := &reloader{t: t, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	r.write(1)
	return r.load(every)
}

// load loads the pair in r's files.
func (r *reloader) load(every time.Duration) *reloader {
	r.t.Helper()
	r.logs = &bytes.Buffer{}
	c, err := loadCertificate(r.certFile, r.keyFile, every, slog.New(slog.NewTextHandler(r.logs, nil)))
	if err != nil {
		r.t.Fatal(err)
	}
	r.c = c
	return r
}

// write replaces both files with a pair of that serial.
func (r *reloader) write(serial int64) {
	cert, key := selfSigned(r.t, serial)
	replace(r.t, r.keyFile, key)
	replace(r.t, r.certFile, cert)
}

// wantServed checks, after n handshakes, the serial served and the
// number of warnings logged so far.
func (r *reloader) wantServed(n int, serial int64, warnings int) {
	r.t.Helper()
	for range n {
		got, err := r.c.get(&tls.ClientHelloInfo{})
		if err != nil || got == nil {
			r.t.Fatalf("GetCertificate: %v, %v", got, err)
		}
		if s := got.Leaf.SerialNumber.Int64(); s != serial {
			r.t.Fatalf("serving serial %d, want %d", s, serial)
		}
	}
	if w := strings.Count(r.logs.String(), "level=WARN"); w != warnings {
		r.t.Fatalf("%d warnings logged, want %d:\n%s", w, warnings, r.logs)
	}
}

func TestCertificateReloadsReplacedFiles(t *testing.T) {
	r := newReloader(t, 0)
	r.wantServed(1, 1, 0)
	r.write(2)
	r.wantServed(1, 2, 0)
	if !strings.Contains(r.logs.String(), "TLS certificate reloaded") {
		t.Errorf("the reload was not logged:\n%s", r.logs)
	}
}

func TestCertificateRewrittenInPlace(t *testing.T) {
	r := newReloader(t, 0)
	cert, key := selfSigned(t, 2)
	for _, f := range []struct {
		path string
		b    []byte
	}{{r.keyFile, key}, {r.certFile, cert}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.wantServed(1, 2, 0)
}

// A renewal seen half done (a new certificate with the old key) keeps the
// old pair in use, with one warning however many handshakes see it, and
// takes the new pair once the key follows.
func TestCertificateHalfWrittenKeepsTheOldOne(t *testing.T) {
	r := newReloader(t, 0)
	cert, key := selfSigned(t, 2)
	replace(t, r.certFile, cert)
	r.wantServed(5, 1, 1)
	replace(t, r.keyFile, key)
	r.wantServed(1, 2, 1)
}

func TestCertificateGarbageOrMissingKeepsTheOldOne(t *testing.T) {
	r := newReloader(t, 0)
	replace(t, r.certFile, []byte("not a certificate\n"))
	r.wantServed(5, 1, 1)
	if !strings.Contains(r.logs.String(), r.certFile) {
		t.Errorf("the warning does not name %s:\n%s", r.certFile, r.logs)
	}
	if err := os.Remove(r.keyFile); err != nil {
		t.Fatal(err)
	}
	r.wantServed(5, 1, 2)
	r.write(3)
	r.wantServed(1, 3, 2)
}

// Certbot's live/ directory holds symlinks into archive/, and a renewal
// points them at new files.
func TestCertificateFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	archived := func(name string, serial int64) string { return fmt.Sprintf("%s%d.pem", name, serial) }
	for _, serial := range []int64{1, 2} {
		cert, key := selfSigned(t, serial)
		for name, b := range map[string][]byte{"cert": cert, "key": key} {
			if err := os.WriteFile(filepath.Join(dir, archived(name, serial)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(name string, serial int64) {
		tmp := filepath.Join(dir, name+".link")
		if err := os.Symlink(archived(name, serial), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	link("cert", 1)
	link("key", 1)
	r := (&reloader{t: t, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}).load(0)
	r.wantServed(1, 1, 0)
	link("key", 2)
	link("cert", 2)
	r.wantServed(1, 2, 0)
}

// The files are looked at no more often than every says.
func TestCertificateChecksAtMostEvery(t *testing.T) {
	r := newReloader(t, time.Hour)
	r.wantServed(1, 1, 0) // the first handshake looks
	r.write(2)
	r.wantServed(3, 1, 0)
}

func TestCertificateFirstLoadMustSucceed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := TLSConfig(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("missing certificate: error %v does not name %s", err, certFile)
	}
	cert, _ := selfSigned(t, 1)
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("missing key: error %v does not name %s", err, keyFile)
	}
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TLSConfig(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("garbage key: error %v does not name %s", err, keyFile)
	}
}

func TestTLSConfigOffersHTTP1AndTLS12Up(t *testing.T) {
	r := newReloader(t, 0)
	cfg, err := TLSConfig(r.certFile, r.keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Errorf("MinVersion %x, NextProtos %q; want TLS 1.2 and http/1.1 alone", cfg.MinVersion, cfg.NextProtos)
	}
}
