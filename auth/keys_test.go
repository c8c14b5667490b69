package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/service"
)

// keyPair is a private key of one kind, and the algorithms it signs.
type keyPair struct {
	name string
	key  crypto.Signer
	algs []string
}

func keyPairs(t *testing.T) []keyPair {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return []keyPair{
		{"rsa", r, []string{"RS256", "RS384", "RS512"}},
		{"p256", p256, []string{"ES256"}},
		{"p384", p384, []string{"ES384"}},
		{"ed25519", ed, []string{"EdDSA"}},
	}
}

// signKid signs claims with alg and key, with kid in the header if not "".
func signKid(t *testing.T, alg, kid string, claims jwt.Claims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openAuthority(t *testing.T, opts auth.Options) *auth.Authority {
	t.Helper()
	a, err := auth.Open(context.Background(), secret, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCaller(t *testing.T, a *auth.Authority, tok, user string) service.Caller {
	t.Helper()
	c, err := a.Verify(tok)
	if err != nil {
		t.Fatalf("Verify refused the token: %v", err)
	}
	if c.User != user {
		t.Fatalf("Verify proved %q, want %q", c.User, user)
	}
	return c
}

// TestEveryKeyKind: each kind of key verifies exactly its own algorithms,
// by kid and without one; no key verifies another kind's tokens, and
// HS256 is checked against the secret only, never a public key's bytes.
func TestEveryKeyKind(t *testing.T) {
	pairs := keyPairs(t)
	var named, unnamed []auth.PublicKey
	for _, p := range pairs {
		named = append(named, auth.PublicKey{ID: p.name, Key: p.key.Public()})
		unnamed = append(unnamed, auth.PublicKey{Key: p.key.Public()})
	}
	byKid := openAuthority(t, auth.Options{PublicKeys: named})
	noKid := openAuthority(t, auth.Options{PublicKeys: unnamed})
	every := []string{"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}
	for _, p := range pairs {
		for _, alg := range every {
			if !slices.Contains(p.algs, alg) {
				// Signing with a key of another kind fails in golang-jwt,
				// so a mismatch is a token naming this key's kid whose alg
				// is another's, signed by that other kind's key.
				for _, q := range pairs {
					if slices.Contains(q.algs, alg) {
						tok := signKid(t, alg, p.name, validClaims(), q.key)
						wantRefused(t, byKid, tok, "does not verify "+alg)
					}
				}
				continue
			}
			t.Run(p.name+"/"+alg, func(t *testing.T) {
				c := wantCaller(t, byKid, signKid(t, alg, p.name, validClaims(), p.key), "mallory")
				if !c.Permissions.Admin {
					t.Error("the admin claim was lost")
				}
				wantCaller(t, noKid, signKid(t, alg, "", validClaims(), p.key), "mallory")
			})
		}
	}

	// A kid naming another key than the signer's: the signature fails.
	rsaOther, _ := rsa.GenerateKey(rand.Reader, 2048)
	wantRefused(t, byKid, signKid(t, "RS256", "rsa", validClaims(), rsaOther), "signature")
	wantRefused(t, byKid, signKid(t, "RS256", "nobody", validClaims(), pairs[0].key), "does not know")
	wantRefused(t, byKid, signKid(t, "RS256", "", validClaims(), pairs[0].key), "no kid")

	// HS256 signed with a public key's bytes, as a confused verifier
	// would take it.
	der, _ := x509.MarshalPKIXPublicKey(pairs[0].key.Public())
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, k := range [][]byte{der, pemBytes} {
		wantRefused(t, byKid, signKid(t, "HS256", "rsa", validClaims(), k), "signature")
	}
	wantRefused(t, byKid, sign(t, jwt.SigningMethodNone, validClaims(), jwt.UnsafeAllowNoneSignatureType), "unsigned")
	// The secret's own tokens still pass beside the keys.
	wantCaller(t, byKid, sign(t, jwt.SigningMethodHS256, validClaims(), secret), "mallory")
}

// TestIssuerAudienceLeeway: iss and aud are checked when configured, for
// tokens of public keys; exp has the configured leeway and no more.
func TestIssuerAudienceLeeway(t *testing.T) {
	p := keyPairs(t)[1]
	a := openAuthority(t, auth.Options{PublicKeys: []auth.PublicKey{{ID: "k", Key: p.key.Public()}},
		Issuer: "https://id.example.com/", Audience: "switchboard", Leeway: 10 * time.Second})
	now := time.Now()
	claims := func(iss string, aud any, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "iss": iss, "aud": aud, "iat": now.Unix(), "exp": exp.Unix()}
	}
	good := claims("https://id.example.com/", []string{"other", "switchboard"}, now.Add(time.Hour))
	wantCaller(t, a, signKid(t, "ES256", "k", good, p.key), "alice")
	wantRefused(t, a, signKid(t, "ES256", "k", claims("https://evil.example.com/", "switchboard", now.Add(time.Hour)), p.key), "issuer")
	wantRefused(t, a, signKid(t, "ES256", "k", claims("https://id.example.com/", "elsewhere", now.Add(time.Hour)), p.key), "audience")
	wantRefused(t, a, signKid(t, "ES256", "k", jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}, p.key), "issuer")
	wantCaller(t, a, signKid(t, "ES256", "k", claims("https://id.example.com/", "switchboard", now.Add(-5*time.Second)), p.key), "alice")
	wantRefused(t, a, signKid(t, "ES256", "k", claims("https://id.example.com/", "switchboard", now.Add(-20*time.Second)), p.key), "expired")
	// The server's own HS256 tokens need neither.
	own, err := a.Issue("root", service.Permissions{Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantCaller(t, a, own, "root")
}

// TestRenamedClaims: a public key's tokens carry their permissions under
// the configured names, checked as strictly, and the default names mean
// nothing in them; HS256 tokens keep the default names.
func TestRenamedClaims(t *testing.T) {
	p := keyPairs(t)[3]
	names := auth.ClaimNames{Publish: "https://rt.example.com/publish", Subscribe: "https://rt.example.com/subscribe", Admin: "https://rt.example.com/admin"}
	a := openAuthority(t, auth.Options{PublicKeys: []auth.PublicKey{{Key: p.key.Public()}}, Claims: names})
	c := wantCaller(t, a, signKid(t, "EdDSA", "", jwt.MapClaims{"sub": "alice", "admin": true,
		names.Publish: []string{"chat.>"}, names.Subscribe: []string{"news.*"}}, p.key), "alice")
	if c.Permissions.Admin || !slices.Equal(c.Permissions.Publish, []string{"chat.>"}) || !slices.Equal(c.Permissions.Subscribe, []string{"news.*"}) {
		t.Errorf("permissions %+v, want publish chat.>, subscribe news.*, no admin", c.Permissions)
	}
	wantRefused(t, a, signKid(t, "EdDSA", "", jwt.MapClaims{"sub": "alice", names.Admin: "yes"}, p.key), `claim "https://rt.example.com/admin" must be a boolean`)
	wantRefused(t, a, signKid(t, "EdDSA", "", jwt.MapClaims{"sub": "alice", names.Publish: "chat.>"}, p.key), `claim "https://rt.example.com/publish" must be an array of strings`)
	own := wantCaller(t, a, sign(t, jwt.SigningMethodHS256, validClaims(), secret), "mallory")
	if !own.Permissions.Admin {
		t.Error("an HS256 token's admin claim was not read under its own name")
	}
	// "-": no claim makes an admin, not even one named "-".
	noAdmin := openAuthority(t, auth.Options{PublicKeys: []auth.PublicKey{{Key: p.key.Public()}}, Claims: auth.ClaimNames{Admin: auth.NoClaim}})
	c = wantCaller(t, noAdmin, signKid(t, "EdDSA", "", jwt.MapClaims{"sub": "alice", "admin": true, "-": true}, p.key), "alice")
	if c.Permissions.Admin {
		t.Error("with the admin claim off, a token made an admin")
	}
	if _, err := auth.Open(context.Background(), secret, auth.Options{Claims: auth.ClaimNames{Admin: "exp"}}); err == nil {
		t.Error("a permission claim named exp was accepted")
	}
}

// TestReadPublicKeys reads every block kind, with kid headers, and refuses
// private keys and weak RSA keys.
func TestReadPublicKeys(t *testing.T) {
	dir := t.TempDir()
	pairs := keyPairs(t)
	var buf []byte
	for i, p := range pairs {
		der, err := x509.MarshalPKIXPublicKey(p.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		b := &pem.Block{Type: "PUBLIC KEY", Bytes: der}
		if i%2 == 0 {
			b.Headers = map[string]string{"kid": p.name}
		}
		buf = append(buf, pem.EncodeToMemory(b)...)
	}
	buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pairs[0].key.Public().(*rsa.PublicKey))})...)
	path := filepath.Join(dir, "keys.pem")
	os.WriteFile(path, buf, 0o600)
	keys, err := auth.ReadPublicKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if want := []string{"rsa", "", "p384", "", ""}; !slices.Equal(ids, want) {
		t.Errorf("kids %q, want %q", ids, want)
	}

	priv, _ := x509.MarshalPKCS8PrivateKey(pairs[1].key)
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600)
	if _, err := auth.ReadPublicKeys(path); err == nil || !strings.Contains(err.Error(), "no public key") {
		t.Errorf("a private key file: %v", err)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	if _, err := auth.ReadPublicKeys(path); err == nil || !strings.Contains(err.Error(), "too weak") {
		t.Errorf("a 1024-bit RSA key: %v", err)
	}
}

// jwksServer serves a JWK Set that the test may change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: j.keys})
	}))
	t.Cleanup(j.Close)
	return j
}

// set replaces the served keys with the public halves of keys, by kid.
func (j *jwksServer) set(t *testing.T, keys map[string]crypto.Signer) {
	t.Helper()
	var ms []jwkset.JWKMarshal
	for kid, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, jwk.Marshal())
	}
	j.mu.Lock()
	j.keys = ms
	j.mu.Unlock()
}

// TestJWKSRotation: keys added to the set verify once a token names them,
// the set is fetched again for an unknown kid at most once per
// MinRefresh however many tokens name one, and a dropped key stops
// verifying once the set is MaxAge old.
func TestJWKSRotation(t *testing.T) {
	pairs := keyPairs(t)
	j := newJWKSServer(t)
	j.set(t, map[string]crypto.Signer{"one": pairs[0].key})
	a := openAuthority(t, auth.Options{JWKS: auth.JWKS{URL: j.URL, MinRefresh: 300 * time.Millisecond, MaxAge: 600 * time.Millisecond}})
	wantCaller(t, a, signKid(t, "RS256", "one", validClaims(), pairs[0].key), "mallory")

	j.set(t, map[string]crypto.Signer{"one": pairs[0].key, "two": pairs[1].key})
	time.Sleep(350 * time.Millisecond)
	wantCaller(t, a, signKid(t, "ES256", "two", validClaims(), pairs[1].key), "mallory")

	before := j.fetches.Load()
	for range 50 {
		wantRefused(t, a, signKid(t, "RS256", "made-up", validClaims(), pairs[0].key), "does not know")
	}
	if n := j.fetches.Load() - before; n > 1 {
		t.Errorf("50 tokens of an unknown kid fetched the set %d times within MinRefresh, want at most 1", n)
	}

	j.set(t, map[string]crypto.Signer{"two": pairs[1].key}) // "one" is dropped
	time.Sleep(700 * time.Millisecond)
	tok := signKid(t, "RS256", "one", validClaims(), pairs[0].key)
	a.Verify(tok) // still cached: this starts the background fetch
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := a.Verify(tok); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key dropped from the set still verifies")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJWKSUnreachableAtStart: a server that could verify none of its
// users' tokens says so and does not start.
func TestJWKSUnreachableAtStart(t *testing.T) {
	j := newJWKSServer(t)
	url := j.URL
	j.Close()
	_, err := auth.Open(context.Background(), secret, auth.Options{JWKS: auth.JWKS{URL: url, Timeout: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "could not be fetched") {
		t.Errorf("Open with an unreachable JWKS: %v", err)
	}
}

// TestRevocations: a revoked user's tokens issued up to the revocation's
// second are refused until it ends; later ones are taken; the list
// survives a reopen; lifting it takes old tokens back.
func TestRevocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations.json")
	r, err := auth.OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	a := openAuthority(t, auth.Options{Revocations: r, Leeway: -1})
	old, _ := a.Issue("mallory", service.Permissions{}, time.Hour)
	bob, _ := a.Issue("bob", service.Permissions{}, time.Hour)
	if err := r.Revoke("mallory", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, a, old, "revoked")
	wantRefused(t, a, sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory"}, secret), "revoked") // no iat: old
	wantCaller(t, a, bob, "bob")
	time.Sleep(1100 * time.Millisecond) // iat counts seconds: the next token's must be later
	later, _ := a.Issue("mallory", service.Permissions{}, time.Hour)
	wantCaller(t, a, later, "mallory")

	r2, err := auth.OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, openAuthority(t, auth.Options{Revocations: r2}), old, "revoked")
	// With the default leeway, a token stamped a second after the
	// revocation may come from an issuer whose clock runs ahead: refused.
	wantRefused(t, openAuthority(t, auth.Options{Revocations: r2}), later, "revoked")
	if err := r2.Revoke("mallory", time.Now()); err != nil {
		t.Fatal(err)
	}
	wantCaller(t, openAuthority(t, auth.Options{Revocations: r2, Leeway: -1}), old, "mallory")
}

// TestJWKSSkipsWhatCannotVerify: a set's keys that cannot verify tokens
// here (symmetric, private, for encryption, of another algorithm, two of
// one kid) are skipped, not trusted and not fatal: the rest verify. A set
// served with an error status, or too big, is refused at start.
func TestJWKSSkipsWhatCannotVerify(t *testing.T) {
	pairs := keyPairs(t)
	good, _ := jwkset.NewJWKFromKey(pairs[1].key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "good"}})
	rsaJWK, _ := jwkset.NewJWKFromKey(pairs[0].key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "rsa"}})
	ps := rsaJWK.Marshal()
	ps.KID, ps.ALG = "pss", "PS256"
	enc := rsaJWK.Marshal()
	enc.KID, enc.USE = "enc", jwkset.UseEnc
	dup1, dup2 := rsaJWK.Marshal(), good.Marshal()
	dup1.KID, dup2.KID = "twice", "twice"
	priv, _ := jwkset.NewJWKFromKey(pairs[2].key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "private"}, Marshal: jwkset.JWKMarshalOptions{Private: true}})
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{
		{KTY: jwkset.KtyOct, KID: "secret", K: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
		priv.Marshal(), ps, enc, dup1, dup2, good.Marshal(),
	}}
	body, _ := json.Marshal(set)
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
		w.Write(body)
	}))
	t.Cleanup(srv.Close)

	a := openAuthority(t, auth.Options{JWKS: auth.JWKS{URL: srv.URL}})
	wantCaller(t, a, signKid(t, "ES256", "good", validClaims(), pairs[1].key), "mallory")
	hmacKey := []byte("secret-secret-secret-secret-secret")
	wantRefused(t, a, signKid(t, "HS256", "secret", validClaims(), hmacKey), "signature")
	for kid, signer := range map[string]keyPair{"private": pairs[2], "pss": pairs[0], "enc": pairs[0], "twice": pairs[0]} {
		wantRefused(t, a, signKid(t, signer.algs[0], kid, validClaims(), signer.key), "does not know")
	}

	status.Store(http.StatusServiceUnavailable)
	if _, err := auth.Open(context.Background(), secret, auth.Options{JWKS: auth.JWKS{URL: srv.URL}}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a set served with 503: %v", err)
	}
	status.Store(http.StatusOK)
	body = append([]byte(`{"keys":[],"padding":"`), strings.Repeat("x", 2<<20)...)
	body = append(body, `"}`...)
	if _, err := auth.Open(context.Background(), secret, auth.Options{JWKS: auth.JWKS{URL: srv.URL}}); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("a set of 2 MiB: %v", err)
	}
}
