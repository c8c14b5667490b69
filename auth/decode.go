package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/service"
)

// UnmarshalJSON decodes a claim set exactly, where encoding/json's struct
// decoding is lenient in ways a token must not be: member names are
// case-sensitive ("Admin" is an unknown claim, ignored), a duplicate
// member refuses the token rather than the last one winning, and a known
// claim of the wrong type, null included, refuses it rather than being
// left unset. Its errors are *service.Error with code EUNAUTHORIZED.
//
// golang-jwt calls it through json.Unmarshal, which has already checked
// that data is one valid JSON value.
//
// The permission claims are read under the names in c.names, set before
// decoding; DefaultClaimNames when it is nil.
func (c *Claims) UnmarshalJSON(data []byte) error {
	names := c.names
	*c = Claims{names: names}
	if names == nil {
		names = &DefaultClaimNames
	}
	return eachMember(data, claimSet, func(name string, v any) error { return c.setClaim(names, name, v) })
}

// setClaim sets the claim name to v, a value decoded with UseNumber.
func (c *Claims) setClaim(names *ClaimNames, name string, v any) (err error) {
	if name != NoClaim { // a claim named "-" is no permission claim
		switch name {
		case names.Publish:
			c.Publish, err = patternsClaim(name, v)
			return err
		case names.Subscribe:
			c.Subscribe, err = patternsClaim(name, v)
			return err
		case names.Admin:
			c.Admin, err = boolClaim(name, v)
			return err
		}
	}
	switch name {
	case "iss":
		c.Issuer, err = stringClaim(name, v)
	case "sub":
		c.Subject, err = stringClaim(name, v)
	case "aud":
		c.Audience, err = audienceClaim(v)
	case "exp":
		c.ExpiresAt, err = dateClaim(name, v)
	case "nbf":
		c.NotBefore, err = dateClaim(name, v)
	case "iat":
		c.IssuedAt, err = dateClaim(name, v)
	case "jti":
		c.ID, err = stringClaim(name, v)
	}
	return err
}

// An object names a JSON object of the token in eachMember's errors.
type object struct {
	notObject string // the message if it is not an object
	duplicate string // the format of the message for a duplicate, given its name
}

var (
	claimSet = object{"token claims must be a JSON object", "token has a duplicate claim %q"}
	header   = object{"token header must be a JSON object", "token header has a duplicate member %q"}
)

// checkHeader refuses a token whose JOSE header has a duplicate member,
// of which golang-jwt would take the last, or a crit member: RFC 7515
// §4.1.11 says to refuse extensions we do not understand, and we
// understand none. A token too malformed to read is left to golang-jwt.
//
// It returns the header's alg, or "" when it has none that is a string.
func (a *Authority) checkHeader(token string) (alg string, err error) {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", nil
	}
	b, err := a.own.DecodeSegment(seg) // as golang-jwt will decode it
	if err != nil || !json.Valid(b) {
		return "", nil
	}
	return alg, eachMember(b, header, func(name string, v any) error {
		if name == "alg" {
			alg, _ = v.(string)
		}
		if name != "crit" {
			return nil
		}
		exts, ok := stringSlice(v)
		if !ok || len(exts) == 0 {
			return unauthorized(`token header member "crit" must be a non-empty array of strings`)
		}
		return service.Errorf(service.EUNAUTHORIZED, "token header names critical extensions %q this server does not understand", exts)
	})
}

// eachMember calls member with the name and value of each top-level
// member of the JSON object data, in order, and refuses duplicate names.
// Names are compared after unescaping, as JSON defines them: "\u0061dmin"
// duplicates "admin". Values are decoded with UseNumber.
func eachMember(data []byte, o object, member func(name string, v any) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return unauthorized(o.notObject)
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return unauthorized("token malformed")
		}
		if seen[name] {
			return service.Errorf(service.EUNAUTHORIZED, o.duplicate, name)
		}
		seen[name] = true
		var v any
		if err := dec.Decode(&v); err != nil {
			return unauthorized("token malformed")
		}
		if err := member(name, v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return unauthorized("token malformed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return unauthorized(o.notObject)
	}
	return nil
}

func unauthorized(msg string) error {
	return service.Errorf(service.EUNAUTHORIZED, "%s", msg)
}

func mustBe(name, what string) error {
	return service.Errorf(service.EUNAUTHORIZED, "claim %q must be %s", name, what)
}

func stringClaim(name string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", mustBe(name, "a string")
	}
	return s, nil
}

func boolClaim(name string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, mustBe(name, "a boolean")
	}
	return b, nil
}

// stringSlice returns v as a slice of strings, or false if it is anything
// else, such as an array holding a null.
func stringSlice(v any) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		return nil, false
	}
	s := make([]string, len(a))
	for i, e := range a {
		if s[i], ok = e.(string); !ok {
			return nil, false
		}
	}
	return s, true
}

// patternsClaim reads a publish or subscribe claim. It refuses an empty
// pattern, which matches no channel: whoever made the token meant it to
// grant something (a split of an empty list, say), and a token that
// grants less than its maker thinks is better refused than accepted.
func patternsClaim(name string, v any) ([]string, error) {
	s, ok := stringSlice(v)
	if !ok {
		return nil, mustBe(name, "an array of strings")
	}
	for _, p := range s {
		if p == "" {
			return nil, service.Errorf(service.EUNAUTHORIZED, "claim %q holds an empty pattern", name)
		}
	}
	return s, nil
}

// audienceClaim reads aud, which RFC 7519 §4.1.3 lets be one string or an
// array of them. We do not check it; we only refuse what it may not be.
func audienceClaim(v any) (jwt.ClaimStrings, error) {
	if s, ok := v.(string); ok {
		return jwt.ClaimStrings{s}, nil
	}
	s, ok := stringSlice(v)
	if !ok {
		return nil, mustBe("aud", "a string or an array of strings")
	}
	return s, nil
}

// dateClaim reads exp, nbf or iat: seconds since the epoch, as a JSON
// number. It refuses numbers beyond int64 seconds, which golang-jwt's
// conversion would wrap round: a far-future nbf would become a past one.
func dateClaim(name string, v any) (*jwt.NumericDate, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, mustBe(name, "a number")
	}
	f, err := n.Float64()
	if err != nil || f < -(1<<63) || f >= 1<<63 {
		return nil, service.Errorf(service.EUNAUTHORIZED, "claim %q is out of range", name)
	}
	d := new(jwt.NumericDate)
	if err := d.UnmarshalJSON([]byte(n)); err != nil { // golang-jwt's rounding, exactly
		return nil, mustBe(name, "a number")
	}
	return d, nil
}
