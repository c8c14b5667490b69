package auth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/service"
)

// FuzzVerify signs fuzzed header and payload JSON with the test secret,
// so that the fuzzer explores tokens that pass the signature, and checks
// Verify against a strict reading of the same JSON done independently of
// the package: nothing a strict reading refuses is accepted, whatever is
// accepted proves exactly the caller the strict reading finds, and a
// well-formed token without time claims is accepted. With forged set the
// token is signed with another key and must be refused.
func FuzzVerify(f *testing.F) {
	a := newAuthority(f)
	for _, tok := range issuedSeeds(f, a) {
		parts := strings.Split(tok, ".")
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		p, _ := base64.RawURLEncoding.DecodeString(parts[1])
		f.Add(h, p, false)
		f.Add(h, p, true) // tampered: signed with another key
	}
	for _, h := range fuzzHeaders {
		for _, p := range fuzzPayloads {
			f.Add([]byte(h), []byte(p), false)
		}
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, forged bool) {
		checkVerify(t, a, header, payload, forged)
	})
}

// FuzzVerifyClaims is FuzzVerify with the payload kept an object, whose
// members beside sub are raw fuzzed JSON, so that the fuzzer explores
// claims rather than JSON syntax: duplicates, case and escapes in names,
// types of values.
func FuzzVerifyClaims(f *testing.F) {
	a := newAuthority(f)
	for _, s := range [][4]string{
		{`"admin"`, `true`, `"publish"`, `[">"]`},
		{`"Admin"`, `true`, `"ADMIN"`, `true`},
		{`"admin"`, `false`, `"admin"`, `true`},
		{`"admin"`, `false`, `"\u0061dmin"`, `true`},
		{`"sub"`, `"root"`, `"x"`, `1`},
		{`"Sub"`, `"root"`, `"subscribe"`, `["news.*"]`},
		{`"publish"`, `[""]`, `"subscribe"`, `["a",null]`},
		{`"exp"`, `1e400`, `"nbf"`, `1`},
		{`"exp"`, `99999999999`, `"iat"`, `-1e19`},
		{`"aud"`, `["a"]`, `"iss"`, `null`},
		{`"x"`, `{"admin":true,"admin":true}`, `"jti"`, `"1"`},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string) {
		p := `{"sub":"alice",` + name1 + `:` + value1 + `,` + name2 + `:` + value2 + `}`
		checkVerify(t, a, []byte(hs256), []byte(p), false)
	})
}

var otherKey = []byte("another secret, not the one the authority has")

// checkVerify checks what a.Verify makes of header and payload, signed
// with the test secret or, if forged, another key.
func checkVerify(t *testing.T, a *auth.Authority, header, payload []byte, forged bool) {
	key := secret
	if forged {
		key = otherKey
	}
	caller, err := a.Verify(signJSON(header, payload, key))
	v, want := strictRead(header, payload)
	if err != nil {
		var se *service.Error
		if !errors.As(err, &se) || se.Code != service.EUNAUTHORIZED {
			t.Fatalf("error %v (%T) is not an EUNAUTHORIZED service error", err, err)
		}
		if caller.User != "" || caller.Permissions.Admin {
			t.Fatalf("refused with %v, yet proves %+v", err, caller)
		}
		if v == accept && !forged {
			t.Fatalf("refused a well-formed token: %v", err)
		}
		return
	}
	switch {
	case forged:
		t.Fatalf("accepted a token signed with another key, proving %+v", caller)
	case v == refuse:
		t.Fatalf("accepted a token a strict reading refuses, proving %+v", caller)
	}
	got, wantP := caller.Permissions, want.Permissions
	if caller.User != want.User || got.Admin != wantP.Admin ||
		!slices.Equal(got.Publish, wantP.Publish) || !slices.Equal(got.Subscribe, wantP.Subscribe) {
		t.Fatalf("caller %+v, a strict reading says %+v", caller, want)
	}
	if !caller.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("ExpiresAt %v, exp says %v", caller.ExpiresAt, want.ExpiresAt)
	}
}

// issuedSeeds returns tokens Issue makes, for the fuzzer to start from.
func issuedSeeds(tb testing.TB, a *auth.Authority) []string {
	var toks []string
	for _, perms := range []service.Permissions{
		{},
		{Admin: true},
		{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>", "news.*"}},
	} {
		for _, ttl := range []time.Duration{0, time.Hour} {
			tok, err := a.Issue("alice", perms, ttl)
			if err != nil {
				tb.Fatal(err)
			}
			toks = append(toks, tok)
		}
	}
	return toks
}

var fuzzHeaders = []string{
	`{"alg":"HS256","typ":"JWT"}`,
	`{"alg":"HS256"}`,
	`{"alg":"HS256","alg":"HS256"}`,
	`{"alg":"none","alg":"HS256"}`,
	`{"alg":"HS\u0032\u0035\u0036"}`,
	`{"alg":"HS256","crit":["foo"],"foo":1}`,
	`{"alg":"HS256","crit":[]}`,
	`{"alg":"HS256","Crit":["foo"]}`,
	`{"alg":"HS512"}`,
	`{"alg":"none"}`,
	`[]`,
	`null`,
}

var fuzzPayloads = []string{
	`{"sub":"alice"}`,
	`{"sub":"alice","admin":true,"publish":["chat.>"],"subscribe":["news.*"]}`,
	`{"sub":"mallory","Admin":true}`,
	`{"sub":"mallory","ADMIN":true,"Publish":[">"]}`,
	`{"sub":"mallory","admin":false,"admin":true}`,
	`{"sub":"mallory","admin":false,"\u0061dmin":true}`,
	`{"sub":"alice","sub":"root"}`,
	`{"sub":"alice","Sub":"root"}`,
	`{"sub":"mallory","admin":"true"}`,
	`{"sub":"mallory","admin":null}`,
	`{"sub":"mallory","publish":["chat.>",null]}`,
	`{"sub":"mallory","publish":[""]}`,
	`{"sub":"mallory","subscribe":"chat.>"}`,
	`{"sub":123}`,
	`{"sub":""}`,
	`{"sub":"alice","exp":1}`,
	`{"sub":"alice","exp":99999999999.5,"iat":1,"nbf":1}`,
	`{"sub":"alice","nbf":1e300}`,
	`{"sub":"alice","exp":"tomorrow"}`,
	`{"sub":"alice","iss":"me","aud":["a","b"],"jti":"1"}`,
	`{"sub":"alice","aud":"a","x":{"admin":true,"admin":true}}`,
	`{"sub":"alice","aud":1}`,
	` { "sub" : "alice" , "admin" : true } `,
	`[{"sub":"alice"}]`,
	`"alice"`,
	`null`,
	`{}`,
}

// A verdict is what a strict reading of a token says Verify must do.
type verdict int

const (
	refuse         verdict = iota
	acceptIfTimely         // well-formed, but exp, nbf or iat may refuse it
	accept
)

// strictRead reads a token's header and payload as the package doc says,
// and returns what Verify must do and, unless refuse, the caller it must
// prove. It does not share the package's decoding: it finds duplicates by
// counting members against a map of them.
func strictRead(header, payload []byte) (verdict, service.Caller) {
	h, ok := strictObject(header)
	if !ok || h["crit"] != nil || decodeAs[string](h["alg"]) != "HS256" {
		return refuse, service.Caller{}
	}
	claims, ok := strictObject(payload)
	if !ok {
		return refuse, service.Caller{}
	}
	var c service.Caller
	v := accept
	for name, raw := range claims {
		switch name {
		case "exp", "nbf", "iat":
			v = acceptIfTimely
		case "sub", "iss", "jti", "aud", "publish", "subscribe", "admin":
		default:
			continue // unknown, ignored however odd
		}
		var x any
		if json.Unmarshal(raw, &x) != nil || !strictClaim(&c, name, x) {
			return refuse, service.Caller{}
		}
	}
	if c.User == "" {
		return refuse, service.Caller{}
	}
	return v, c
}

// strictClaim sets what claim name says in c and reports whether x, as
// json.Unmarshal decodes into any, is of the claim's type.
func strictClaim(c *service.Caller, name string, x any) (ok bool) {
	switch name {
	case "sub":
		c.User, ok = x.(string)
		return ok && c.User != ""
	case "iss", "jti":
		_, ok = x.(string)
	case "aud":
		_, ok = x.(string)
		if !ok {
			_, ok = strictPatterns(x, true)
		}
	case "exp", "nbf", "iat":
		var secs float64
		if secs, ok = x.(float64); ok && name == "exp" {
			c.ExpiresAt = time.Unix(int64(math.Trunc(secs)), 0)
		}
	case "publish":
		c.Permissions.Publish, ok = strictPatterns(x, false)
	case "subscribe":
		c.Permissions.Subscribe, ok = strictPatterns(x, false)
	case "admin":
		c.Permissions.Admin, ok = x.(bool)
	}
	return ok
}

// strictObject decodes a JSON object into its members, or returns false
// if b is not one or has two members of the same name.
func strictObject(b []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // the opening brace
	n := 0
	for ; dec.More(); n++ {
		dec.Token()
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			panic(fmt.Sprintf("decoding %q, valid JSON: %v", b, err))
		}
	}
	return m, n == len(m)
}

// strictPatterns returns x as strings, or false if it is not an array of
// strings, non-empty unless emptyOK.
func strictPatterns(x any, emptyOK bool) ([]string, bool) {
	a, ok := x.([]any)
	if !ok {
		return nil, false
	}
	s := []string{}
	for _, e := range a {
		p, ok := e.(string)
		if !ok || p == "" && !emptyOK {
			return nil, false
		}
		s = append(s, p)
	}
	return s, true
}

func decodeAs[T any](raw json.RawMessage) T {
	var v T
	json.Unmarshal(raw, &v)
	return v
}
