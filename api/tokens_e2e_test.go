package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// providerSet is an identity provider's JWK Set on loopback, which the
// test rotates.
type providerSet struct {
	srv  *httptest.Server
	mu   sync.Mutex
	body []byte
}

func newProviderSet(t *testing.T, keys map[string]crypto.Signer) *providerSet {
	p := &providerSet{}
	p.rotate(t, keys)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(p.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *providerSet) rotate(t *testing.T, keys map[string]crypto.Signer) {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, _ := json.Marshal(set)
	p.mu.Lock()
	p.body = b
	p.mu.Unlock()
}

// providerToken is a token as an identity provider makes them.
func providerToken(t *testing.T, alg, kid string, key crypto.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokensFromAJWKS: a server started with an identity provider's JWK
// Set takes its users' tokens, with the configured issuer, audience and
// claim names, over WebSocket and HTTP; takes a key added to the set
// while it runs; and keeps its own HS256 tokens. No token and nothing of
// the set reaches its log.
func TestTokensFromAJWKS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set := newProviderSet(t, map[string]crypto.Signer{"2026-11": rsaKey})
	ta := servertest.Start(t, server.Config{Tokens: server.Tokens{
		JWKSURL: set.srv.URL, JWKSMinRefresh: 100 * time.Millisecond,
		Issuer: "https://id.example.com/", Audience: "rt",
		Claims: auth.ClaimNames{Subscribe: "https://rt.example.com/subscribe"},
	}})
	claims := func(sub string) jwt.MapClaims {
		return jwt.MapClaims{"sub": sub, "iss": "https://id.example.com/", "aud": "rt",
			"exp": time.Now().Add(time.Hour).Unix(), "https://rt.example.com/subscribe": []string{"news.>"}}
	}
	tok := providerToken(t, "RS256", "2026-11", rsaKey, claims("alice"))
	w := ta.HubClient(tok).Whoami()
	if w.User != "alice" || len(w.Permissions.Subscribe) != 1 || w.Permissions.Subscribe[0] != "news.>" {
		t.Errorf("whoami %+v, want alice allowed news.>", w)
	}
	body, _ := servertest.Request("sessionWhoami", nil)
	if res := ta.Post(servertest.Bearer(tok), body); res.Status != http.StatusOK {
		t.Errorf("POST /rpc with the provider's token: %d %s", res.Status, res.Body)
	}

	// The provider rotates to a new key; the server has never seen it.
	set.rotate(t, map[string]crypto.Signer{"2026-11": rsaKey, "2026-12": ecKey})
	time.Sleep(150 * time.Millisecond) // past JWKSMinRefresh since the start's fetch
	next := providerToken(t, "ES256", "2026-12", ecKey, claims("bob"))
	if got := ta.HubClient(next).Whoami().User; got != "bob" {
		t.Errorf("a token of the new key proved %q", got)
	}

	// Refused: a wrong issuer; the RSA key's kid on an ES256 token.
	for name, bad := range map[string]string{
		"wrong issuer":   providerToken(t, "RS256", "2026-11", rsaKey, jwt.MapClaims{"sub": "eve", "iss": "https://evil.example.com/", "aud": "rt"}),
		"mismatched kid": providerToken(t, "ES256", "2026-11", ecKey, claims("eve")),
	} {
		ws, resp, err := servertest.DialRaw(t, ta.WSURL(), servertest.Bearer(bad))
		servertest.WantRefusedUpgrade(t, name, ws, resp, err, http.StatusUnauthorized, "unauthorized")
	}
	// The server's own token, beside them.
	if got := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour)).Whoami().User; got != "root" {
		t.Errorf("the server's own token proved %q", got)
	}

	logs := ta.Logs.String()
	set.mu.Lock()
	var published jwkset.JWKSMarshal
	json.Unmarshal(set.body, &published)
	set.mu.Unlock()
	var modulus string
	for _, k := range published.Keys {
		modulus += k.N
	}
	for what, secret := range map[string]string{"a token": tok, "the new token": next, "the RSA modulus": modulus} {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[:40]) {
			t.Errorf("the log holds %s", what)
		}
	}
}

// TestTokenPublicKeyFile: a PEM file's key, chosen by its kid header,
// verifies; a JWKS that cannot be fetched at start stops the start with
// a message that says so.
func TestTokenPublicKeyFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	path := filepath.Join(t.TempDir(), "issuer.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": "k1"}, Bytes: der}), 0o600)
	ta := servertest.Start(t, server.Config{Tokens: server.Tokens{PublicKeyFiles: []string{path}}})
	tok := providerToken(t, "ES384", "k1", key, jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(time.Hour).Unix()})
	if got := ta.HubClient(tok).Whoami().User; got != "carol" {
		t.Errorf("the PEM key's token proved %q", got)
	}
	// What a forger would try, each refused at the upgrade.
	pemBytes, _ := os.ReadFile(path)
	hsWithKey := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "carol", "admin": true})
	hsWithKey.Header["kid"] = "k1"
	forgedHS, _ := hsWithKey.SignedString(pemBytes)
	unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "carol", "admin": true}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, bad := range map[string]string{
		"HS256 signed with the public key's PEM": forgedHS,
		"alg none":                               unsigned,
		"expired beyond the leeway":              providerToken(t, "ES384", "k1", key, jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(-time.Minute).Unix()}),
		"an unknown kid":                         providerToken(t, "ES384", "k2", key, jwt.MapClaims{"sub": "carol"}),
	} {
		ws, resp, err := servertest.DialRaw(t, ta.WSURL(), servertest.Bearer(bad))
		servertest.WantRefusedUpgrade(t, name, ws, resp, err, http.StatusUnauthorized, "unauthorized")
	}
	// A clock 2 s behind the issuer's is within the leeway.
	early := providerToken(t, "ES384", "k1", key, jwt.MapClaims{"sub": "carol", "nbf": time.Now().Add(2 * time.Second).Unix(), "iat": time.Now().Add(2 * time.Second).Unix()})
	if got := ta.HubClient(early).Whoami().User; got != "carol" {
		t.Errorf("a token valid 2 s from now, within the leeway, proved %q", got)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err := server.New(server.Config{DataDir: t.TempDir(), Tokens: server.Tokens{JWKSURL: dead.URL, JWKSTimeout: time.Second}},
		slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "JWKS could not be fetched") {
		t.Errorf("server.New with an unreachable JWKS: %v", err)
	}
	// Whoever can change the set in flight signs admin tokens: no plain
	// HTTP beyond this machine.
	_, err = server.New(server.Config{DataDir: t.TempDir(), Tokens: server.Tokens{JWKSURL: "http://id.example.com/jwks.json"}},
		slog.New(slog.DiscardHandler))
	var cfgErr *server.ConfigError
	if !errors.As(err, &cfgErr) || !strings.Contains(err.Error(), "https") {
		t.Errorf("server.New with a plain-HTTP JWKS elsewhere: %v, want a ConfigError asking for https", err)
	}
}
