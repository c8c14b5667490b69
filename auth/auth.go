// Package auth issues and verifies Switchboard's access tokens: JWTs
// signed with HS256 and a secret the server keeps.
//
// The claims are:
//
//	sub        the user (required), a non-empty string
//	exp        expiry, seconds since the epoch (optional: no exp, no expiry)
//	iat        when the token was issued, likewise (optional; not in the future)
//	nbf        when the token becomes valid, likewise (optional)
//	publish    channel patterns the user may publish to: an array of strings
//	subscribe  channel patterns the user may subscribe to: an array of strings
//	admin      true for a user who may do everything: a boolean
//
// Claim names are case-sensitive: "Admin" is not admin. Claims of other
// names are ignored, but iss, aud and jti must have the types RFC 7519
// gives them. A token is refused if it names a claim twice, gives one of
// the claims above the wrong type (null included) or an empty pattern, or
// if its header names a member twice or has a crit member: we understand
// no extensions.
//
// Patterns are channel names in which "*" matches one dot-separated
// segment and a trailing ">" matches one or more segments.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/service"
)

// Claims are the JWT claims of a Switchboard token. They decode only as
// the package doc says, through UnmarshalJSON; they encode as their
// struct tags say.
type Claims struct {
	jwt.RegisteredClaims
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Admin     bool     `json:"admin,omitempty"`
}

// MinSecretLen is the shortest secret accepted: HS256 wants at least as
// many bytes as the hash.
const MinSecretLen = 32

// Authority signs and verifies tokens with one secret.
type Authority struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// New returns an Authority for secret, which must be at least
// MinSecretLen bytes long.
func New(secret []byte) (*Authority, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("token secret is %d bytes; it must be at least %d", len(secret), MinSecretLen)
	}
	return &Authority{
		secret: secret,
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuedAt()),
		now:    time.Now,
	}, nil
}

// Issue returns a signed token for user with perms, valid for ttl; a ttl
// of zero makes a token that never expires.
func (a *Authority) Issue(user string, perms service.Permissions, ttl time.Duration) (string, error) {
	if user == "" {
		return "", errors.New("a token needs a subject (the user)")
	}
	if ttl < 0 {
		return "", fmt.Errorf("token lifetime %v is negative", ttl)
	}
	if slices.Contains(perms.Publish, "") || slices.Contains(perms.Subscribe, "") {
		return "", errors.New("a token's channel patterns must not be empty") // Verify would refuse it
	}
	now := a.now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now)},
		Publish:          perms.Publish,
		Subscribe:        perms.Subscribe,
		Admin:            perms.Admin,
	}
	if ttl > 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify checks token and returns the caller it proves. Its errors are
// *service.Error with code EUNAUTHORIZED and a message fit for the client.
// A token whose header or claims are ill-formed is refused as such before
// its signature is checked, as golang-jwt decodes before it verifies.
func (a *Authority) Verify(token string) (service.Caller, error) {
	if err := a.checkHeader(token); err != nil {
		return service.Caller{}, err
	}
	var c Claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	var se *service.Error
	switch {
	case errors.As(err, &se): // from Claims.UnmarshalJSON, and more precise
		return service.Caller{}, se
	case errors.Is(err, jwt.ErrTokenExpired):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token expired")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token signature invalid")
	case err != nil:
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token invalid: %v", err)
	case c.Subject == "":
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token has no subject")
	}
	caller := service.Caller{
		User:        c.Subject,
		Permissions: service.Permissions{Publish: c.Publish, Subscribe: c.Subscribe, Admin: c.Admin},
	}
	if c.ExpiresAt != nil {
		caller.ExpiresAt = c.ExpiresAt.Time
	}
	return caller, nil
}
