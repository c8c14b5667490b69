package auth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/service"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func newAuthority(t testing.TB) *auth.Authority {
	t.Helper()
	a, err := auth.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// payload decodes the claims of tok without checking anything.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantRefused checks that Verify refuses tok with an EUNAUTHORIZED
// service error whose message mentions want.
func wantRefused(t *testing.T, a *auth.Authority, tok, want string) {
	t.Helper()
	caller, err := a.Verify(tok)
	if err == nil {
		t.Fatalf("Verify accepted the token, proving %+v", caller)
	}
	var se *service.Error
	if !errors.As(err, &se) || se.Code != service.EUNAUTHORIZED {
		t.Errorf("error %v (%T), want a service error with code %s", err, err, service.EUNAUTHORIZED)
	}
	if !strings.Contains(service.ErrorMessage(err), want) {
		t.Errorf("message %q does not mention %q", service.ErrorMessage(err), want)
	}
	if caller.User != "" || caller.Permissions.Admin {
		t.Errorf("a refused token still yields caller %+v", caller)
	}
}

// sign signs claims with method and key, bypassing the Authority.
func sign(t *testing.T, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "mallory", "admin": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func TestRoundTrip(t *testing.T) {
	a := newAuthority(t)
	perms := service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>", "news.*"}, Admin: true}
	tok, err := a.Issue("alice", perms, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.Split(tok, ".")[0]; !strings.Contains(mustDecode(t, h), `"HS256"`) {
		t.Errorf("token header %s does not name HS256", mustDecode(t, h))
	}
	caller, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if caller.User != "alice" || caller.Anonymous {
		t.Errorf("caller %+v, want alice", caller)
	}
	if !slices.Equal(caller.Permissions.Publish, perms.Publish) ||
		!slices.Equal(caller.Permissions.Subscribe, perms.Subscribe) || !caller.Permissions.Admin {
		t.Errorf("permissions %+v, want %+v", caller.Permissions, perms)
	}
	claims := payload(t, tok)
	exp, _ := claims["exp"].(float64)
	iat, _ := claims["iat"].(float64)
	if exp == 0 || iat == 0 {
		t.Fatalf("claims %v lack exp or iat", claims)
	}
	if time.Duration(exp-iat)*time.Second != time.Hour {
		t.Errorf("exp - iat = %vs, want the ttl, 1h", exp-iat)
	}
	if caller.ExpiresAt.Unix() != int64(exp) {
		t.Errorf("ExpiresAt %v, want the exp claim %v", caller.ExpiresAt, time.Unix(int64(exp), 0))
	}

	// A token without permissions proves none.
	tok, err = a.Issue("bob", service.Permissions{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	caller, err = a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if caller.User != "bob" || len(caller.Permissions.Publish)+len(caller.Permissions.Subscribe) != 0 || caller.Permissions.Admin {
		t.Errorf("caller %+v, want bob with no permissions", caller)
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNoExpiry(t *testing.T) {
	a := newAuthority(t)
	tok, err := a.Issue("alice", service.Permissions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := payload(t, tok)["exp"]; ok {
		t.Errorf("a ttl of 0 gave a token with exp: %v", payload(t, tok))
	}
	caller, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !caller.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt %v, want zero (never)", caller.ExpiresAt)
	}
}

func TestIssueRefuses(t *testing.T) {
	a := newAuthority(t)
	if _, err := a.Issue("", service.Permissions{}, time.Hour); err == nil {
		t.Error("Issue made a token without a subject")
	}
	if _, err := a.Issue("alice", service.Permissions{}, -time.Second); err == nil {
		t.Error("Issue made a token with a negative lifetime")
	}
	for _, perms := range []service.Permissions{{Publish: []string{""}}, {Subscribe: []string{"news.*", ""}}} {
		if tok, err := a.Issue("alice", perms, time.Hour); err == nil {
			t.Errorf("Issue made a token with an empty pattern, %+v: %s", perms, tok)
		}
	}
}

func TestSecretLength(t *testing.T) {
	for _, n := range []int{0, 1, auth.MinSecretLen - 1} {
		if _, err := auth.New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte secret", n)
		}
	}
	if _, err := auth.New([]byte(strings.Repeat("k", auth.MinSecretLen))); err != nil {
		t.Errorf("New refused a %d-byte secret: %v", auth.MinSecretLen, err)
	}
	if auth.MinSecretLen < 32 {
		t.Errorf("MinSecretLen %d is shorter than HS256's hash", auth.MinSecretLen)
	}
}

func TestExpired(t *testing.T) {
	a := newAuthority(t)
	now := time.Now()
	tok := sign(t, jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix(),
	}, secret)
	wantRefused(t, a, tok, "expired")
}

// TestOnlyHS256 checks that tokens signed any other way are refused, even
// when they would verify with the secret as key (HS384, HS512), and above
// all when unsigned (alg none).
func TestOnlyHS256(t *testing.T) {
	a := newAuthority(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"none":  sign(t, jwt.SigningMethodNone, validClaims(), jwt.UnsafeAllowNoneSignatureType),
		"HS384": sign(t, jwt.SigningMethodHS384, validClaims(), secret),
		"HS512": sign(t, jwt.SigningMethodHS512, validClaims(), secret),
		"RS256": sign(t, jwt.SigningMethodRS256, validClaims(), rsaKey),
	}
	for alg, tok := range cases {
		t.Run(alg, func(t *testing.T) {
			wantRefused(t, a, tok, "token")
		})
	}
	// The same claims signed HS256 with the secret are accepted, so the
	// refusals above are about the algorithm.
	if _, err := a.Verify(sign(t, jwt.SigningMethodHS256, validClaims(), secret)); err != nil {
		t.Errorf("HS256 control token refused: %v", err)
	}
}

func TestTampered(t *testing.T) {
	a := newAuthority(t)
	tok, err := a.Issue("alice", service.Permissions{Subscribe: []string{"news.*"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	claims := payload(t, tok)
	claims["admin"] = true
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	wantRefused(t, a, strings.Join(parts, "."), "signature")

	// Another subject, same signature.
	claims = payload(t, tok)
	claims["sub"] = "root"
	b, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	wantRefused(t, a, strings.Join(parts, "."), "signature")
}

func TestWrongSecret(t *testing.T) {
	other, err := auth.New([]byte(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := other.Issue("alice", service.Permissions{Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, newAuthority(t), tok, "signature")
}

func TestMissingSubject(t *testing.T) {
	a := newAuthority(t)
	claims := validClaims()
	delete(claims, "sub")
	wantRefused(t, a, sign(t, jwt.SigningMethodHS256, claims, secret), "subject")
	claims["sub"] = ""
	wantRefused(t, a, sign(t, jwt.SigningMethodHS256, claims, secret), "subject")
}

func TestMalformed(t *testing.T) {
	a := newAuthority(t)
	for _, tok := range []string{"", "abc", "a.b.c", "a.b", strings.Repeat(".", 2)} {
		caller, err := a.Verify(tok)
		if err == nil {
			t.Errorf("Verify(%q) accepted, proving %+v", tok, caller)
		}
	}
}

// signJSON returns a token made of header and payload exactly as given,
// signed HS256 with key, so that tests can say what jwt libraries would
// never encode: duplicate members, odd cases, wrong types.
func signJSON(header, payload, key []byte) string {
	enc := base64.RawURLEncoding
	text := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(text))
	return text + "." + enc.EncodeToString(mac.Sum(nil))
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

// signed returns payload signed with the test secret under a plain header.
func signed(payload string) string {
	return signJSON([]byte(hs256), []byte(payload), secret)
}

// TestClaimNamesAreCaseSensitive checks that claims whose names differ
// from ours only in case are unknown claims, ignored, not ours.
func TestClaimNamesAreCaseSensitive(t *testing.T) {
	a := newAuthority(t)
	for _, p := range []string{
		`{"sub":"mallory","Admin":true}`,
		`{"sub":"mallory","ADMIN":true}`,
		`{"sub":"mallory","aDmIn":true,"Publish":[">"],"SUBSCRIBE":[">"]}`,
		`{"sub":"mallory","Sub":"root","SUB":"root"}`,
	} {
		caller, err := a.Verify(signed(p))
		if err != nil {
			t.Errorf("%s: refused: %v", p, err)
			continue
		}
		perms := caller.Permissions
		if caller.User != "mallory" || perms.Admin || perms.Publish != nil || perms.Subscribe != nil {
			t.Errorf("%s: caller %+v, want mallory with no permissions", p, caller)
		}
	}
}

func TestDuplicateClaims(t *testing.T) {
	a := newAuthority(t)
	for _, tc := range []struct{ payload, claim string }{
		{`{"sub":"mallory","admin":false,"admin":true}`, "admin"},
		{`{"sub":"mallory","admin":true,"admin":false}`, "admin"},
		{`{"sub":"mallory","admin":false,"\u0061dmin":true}`, "admin"}, // the same name, escaped
		{`{"sub":"alice","sub":"root"}`, "sub"},
		{`{"sub":"mallory","publish":[],"publish":[">"]}`, "publish"},
		{`{"sub":"mallory","exp":1,"exp":99999999999}`, "exp"},
		{`{"sub":"mallory","x":1,"x":1}`, "x"}, // even claims we ignore
	} {
		t.Run(tc.payload, func(t *testing.T) {
			wantRefused(t, a, signed(tc.payload), fmt.Sprintf("token has a duplicate claim %q", tc.claim))
		})
	}
}

// TestNestedDuplicatesIgnored checks that duplicates inside a claim we do
// not read are no reason to refuse: only top-level members carry meaning.
func TestNestedDuplicatesIgnored(t *testing.T) {
	a := newAuthority(t)
	caller, err := a.Verify(signed(`{"sub":"alice","ext":{"admin":false,"admin":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if caller.User != "alice" || caller.Permissions.Admin {
		t.Errorf("caller %+v, want alice, not admin", caller)
	}
}

func TestWrongClaimTypes(t *testing.T) {
	a := newAuthority(t)
	for _, tc := range []struct{ payload, want string }{
		{`{"sub":123}`, `claim "sub" must be a string`},
		{`{"sub":null}`, `claim "sub" must be a string`},
		{`{"sub":"mallory","admin":"true"}`, `claim "admin" must be a boolean`},
		{`{"sub":"mallory","admin":1}`, `claim "admin" must be a boolean`},
		{`{"sub":"mallory","admin":null}`, `claim "admin" must be a boolean`},
		{`{"sub":"mallory","publish":"chat.>"}`, `claim "publish" must be an array of strings`},
		{`{"sub":"mallory","publish":[1]}`, `claim "publish" must be an array of strings`},
		{`{"sub":"mallory","publish":["chat.>",null]}`, `claim "publish" must be an array of strings`},
		{`{"sub":"mallory","publish":null}`, `claim "publish" must be an array of strings`},
		{`{"sub":"mallory","subscribe":{"chat.>":true}}`, `claim "subscribe" must be an array of strings`},
		{`{"sub":"mallory","publish":[""]}`, `claim "publish" holds an empty pattern`},
		{`{"sub":"mallory","subscribe":["news.*",""]}`, `claim "subscribe" holds an empty pattern`},
		{`{"sub":"mallory","exp":"tomorrow"}`, `claim "exp" must be a number`},
		{`{"sub":"mallory","exp":null}`, `claim "exp" must be a number`},
		{`{"sub":"mallory","exp":1e400}`, `claim "exp" is out of range`},
		{`{"sub":"mallory","nbf":-1e19}`, `claim "nbf" is out of range`},
		{`{"sub":"mallory","iat":true}`, `claim "iat" must be a number`},
		{`{"sub":"mallory","iss":1}`, `claim "iss" must be a string`},
		{`{"sub":"mallory","jti":[]}`, `claim "jti" must be a string`},
		{`{"sub":"mallory","aud":1}`, `claim "aud" must be a string or an array of strings`},
		{`{"sub":"mallory","aud":["a",2]}`, `claim "aud" must be a string or an array of strings`},
		{`[{"sub":"mallory"}]`, `token claims must be a JSON object`},
		{`"mallory"`, `token claims must be a JSON object`},
	} {
		t.Run(tc.payload, func(t *testing.T) {
			wantRefused(t, a, signed(tc.payload), tc.want)
		})
	}
}

// TestAllClaims checks a token using every claim we read, in the types
// the RFC allows, with unknown claims around them: a control for the
// refusals above.
func TestAllClaims(t *testing.T) {
	a := newAuthority(t)
	now := time.Now().Unix()
	for _, aud := range []string{`"switchboard"`, `["switchboard","other"]`} {
		p := fmt.Sprintf(`{"iss":"me","sub":"alice","aud":%s,"exp":%d.5,"nbf":%d,"iat":%d,"jti":"1",`+
			`"publish":["chat.>"],"subscribe":[],"admin":false,"other":[null,{"admin":true}]}`, aud, now+60, now-1, now-1)
		caller, err := a.Verify(signed(p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		perms := caller.Permissions
		if caller.User != "alice" || perms.Admin || !slices.Equal(perms.Publish, []string{"chat.>"}) || len(perms.Subscribe) != 0 {
			t.Errorf("%s: caller %+v", p, caller)
		}
		if caller.ExpiresAt.Unix() != now+60 {
			t.Errorf("%s: ExpiresAt %v, want %v", p, caller.ExpiresAt, time.Unix(now+60, 0))
		}
	}
}

func TestHeaderRefused(t *testing.T) {
	a := newAuthority(t)
	p := []byte(`{"sub":"mallory","admin":true}`)
	for _, tc := range []struct{ header, want string }{
		{`{"alg":"HS256","alg":"HS256"}`, `token header has a duplicate member "alg"`},
		{`{"alg":"none","alg":"HS256"}`, `token header has a duplicate member "alg"`},
		{`{"alg":"HS256","typ":"JWT","typ":"JWS"}`, `token header has a duplicate member "typ"`},
		{`{"alg":"HS256","crit":["foo"],"foo":1}`, `token header names critical extensions ["foo"] this server does not understand`},
		{`{"alg":"HS256","crit":["b64"],"b64":true}`, `critical extensions ["b64"]`},
		{`{"alg":"HS256","crit":[]}`, `token header member "crit" must be a non-empty array of strings`},
		{`{"alg":"HS256","crit":"foo"}`, `token header member "crit" must be a non-empty array of strings`},
		{`{"alg":"HS256","crit":null}`, `token header member "crit" must be a non-empty array of strings`},
	} {
		t.Run(tc.header, func(t *testing.T) {
			wantRefused(t, a, signJSON([]byte(tc.header), p, secret), tc.want)
		})
	}
	// Header names are case-sensitive too: "Crit" is not crit.
	if _, err := a.Verify(signJSON([]byte(`{"alg":"HS256","Crit":["foo"]}`), p, secret)); err != nil {
		t.Errorf("a header with Crit was refused: %v", err)
	}
}
