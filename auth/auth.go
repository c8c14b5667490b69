// Package auth issues and verifies Switchboard's access tokens: JWTs
// signed with HS256 and a secret the server keeps, and, when configured,
// JWTs that someone else issues (an identity provider, the user's own
// backend) signed with RSA, ECDSA or Ed25519 keys given in PEM files or
// fetched as a JWK Set.
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
// Tokens signed with a public key's private half come from elsewhere, so
// for them the three permission claims may go by other names
// (ClaimNames), and the issuer and audience are checked when configured.
// HS256 tokens are the server's own (its admin token, `switchboard token
// create`) and always use the names above.
//
// Patterns are channel names in which "*" matches one dot-separated
// segment and a trailing ">" matches one or more segments.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

	names *ClaimNames // see UnmarshalJSON
}

// ClaimNames name the permission claims of tokens that someone else
// issues: "https://example.com/publish", say, for an identity provider
// that wants namespaced claims.
type ClaimNames struct {
	Publish, Subscribe, Admin string
}

// NoClaim as a claim's name reads that permission from no claim: for an
// identity provider whose tokens should never make an admin, say.
const NoClaim = "-"

// DefaultClaimNames are the names of Switchboard's own tokens.
var DefaultClaimNames = ClaimNames{Publish: "publish", Subscribe: "subscribe", Admin: "admin"}

func (n ClaimNames) withDefaults() ClaimNames {
	d := DefaultClaimNames
	if n.Publish != "" {
		d.Publish = n.Publish
	}
	if n.Subscribe != "" {
		d.Subscribe = n.Subscribe
	}
	if n.Admin != "" {
		d.Admin = n.Admin
	}
	return d
}

// check refuses names that would shadow a registered claim or each other.
func (n ClaimNames) check() error {
	seen := map[string]bool{}
	for _, name := range []string{n.Publish, n.Subscribe, n.Admin} {
		if slices.Contains([]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}, name) {
			return fmt.Errorf("permission claim name %q is a registered JWT claim", name)
		}
		if seen[name] && name != NoClaim {
			return fmt.Errorf("permission claim name %q is given twice", name)
		}
		seen[name] = true
	}
	return nil
}

// MinSecretLen is the shortest secret accepted: HS256 wants at least as
// many bytes as the hash.
const MinSecretLen = 32

// DefaultLeeway is the clock skew allowed for exp, nbf and iat when
// Options.Leeway is left zero.
const DefaultLeeway = 5 * time.Second

// Options configure an Authority beyond its secret.
type Options struct {
	// PublicKeys verify tokens signed by their private halves, chosen by
	// the token's kid; a token without one is tried with each key that
	// has none.
	PublicKeys []PublicKey
	// JWKS is the key set of an identity provider, looked up by kid.
	JWKS JWKS
	// Issuer and Audience, when set, must be the iss of tokens verified
	// by a public key, and one of their aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed for exp, nbf and iat; negative
	// allows none, zero is DefaultLeeway.
	Leeway time.Duration
	// Claims name the permission claims of tokens verified by a public
	// key; empty fields keep DefaultClaimNames.
	Claims ClaimNames
	// Revocations, when set, refuse the tokens of revoked users.
	Revocations *Revocations
	// Logger says when a JWK Set cannot be fetched; nil says nothing.
	Logger *slog.Logger
}

// Authority signs tokens with one secret, and verifies those and, when
// so configured, tokens signed by public keys.
type Authority struct {
	secret  []byte
	own     *jwt.Parser // HS256 with the secret
	foreign *jwt.Parser // the public keys' algorithms; nil without keys
	keys    keySet
	remote  *remoteKeys // nil without a JWKS URL
	names   ClaimNames  // for foreign tokens
	issuer  string      // for foreign tokens; "" for any
	leeway  time.Duration
	revoked *Revocations
	now     func() time.Time
}

// New returns an Authority for secret alone, which must be at least
// MinSecretLen bytes long.
func New(secret []byte) (*Authority, error) {
	return Open(context.Background(), secret, Options{})
}

// Open returns an Authority for secret and opts. With a JWKS URL it
// fetches the set before it returns, within ctx, and fails if it cannot.
func Open(ctx context.Context, secret []byte, opts Options) (*Authority, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("token secret is %d bytes; it must be at least %d", len(secret), MinSecretLen)
	}
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	a := &Authority{
		secret:  secret,
		own:     jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuedAt(), jwt.WithLeeway(leeway)),
		names:   opts.Claims.withDefaults(),
		issuer:  opts.Issuer,
		leeway:  leeway,
		revoked: opts.Revocations,
		now:     time.Now,
	}
	if err := a.names.check(); err != nil {
		return nil, err
	}
	var err error
	if a.keys, err = newKeySet(opts.PublicKeys); err != nil {
		return nil, err
	}
	if opts.JWKS.URL != "" {
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if a.remote, err = fetchKeys(ctx, opts.JWKS, log); err != nil {
			return nil, err
		}
	}
	if len(opts.PublicKeys) > 0 || a.remote != nil {
		popts := []jwt.ParserOption{jwt.WithValidMethods(foreignAlgorithms), jwt.WithIssuedAt(), jwt.WithLeeway(leeway)}
		if opts.Issuer != "" {
			popts = append(popts, jwt.WithIssuer(opts.Issuer))
		}
		if opts.Audience != "" {
			popts = append(popts, jwt.WithAudience(opts.Audience))
		}
		a.foreign = jwt.NewParser(popts...)
	}
	return a, nil
}

// foreignAlgorithms are those that public keys verify; which key verifies
// which is algorithms' to say.
var foreignAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}

// Issue returns a signed token for user with perms, valid for ttl; a ttl
// of zero makes a token that never expires.
func (a *Authority) Issue(user string, perms service.Permissions, ttl time.Duration) (string, error) {
	return issue(jwt.SigningMethodHS256, "", a.secret, a.now(), user, perms, ttl)
}

// Issue returns a token for user with perms, valid for ttl (zero: for
// ever), signed with the signer's private key.
func (s *Signer) Issue(user string, perms service.Permissions, ttl time.Duration) (string, error) {
	return issue(s.method, s.ID, s.key, time.Now(), user, perms, ttl)
}

func issue(method jwt.SigningMethod, kid string, key any, now time.Time, user string, perms service.Permissions, ttl time.Duration) (string, error) {
	if user == "" {
		return "", errors.New("a token needs a subject (the user)")
	}
	if ttl < 0 {
		return "", fmt.Errorf("token lifetime %v is negative", ttl)
	}
	if slices.Contains(perms.Publish, "") || slices.Contains(perms.Subscribe, "") {
		return "", errors.New("a token's channel patterns must not be empty") // Verify would refuse it
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now)},
		Publish:          perms.Publish,
		Subscribe:        perms.Subscribe,
		Admin:            perms.Admin,
	}
	if ttl > 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	t := jwt.NewWithClaims(method, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
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
	alg, err := a.checkHeader(token)
	if err != nil {
		return service.Caller{}, err
	}
	if strings.EqualFold(alg, "none") {
		return service.Caller{}, unauthorized("token is unsigned (alg none)")
	}
	parser, c := a.own, Claims{}
	keyFunc := func(*jwt.Token) (any, error) { return a.secret, nil }
	if alg != "HS256" && a.foreign != nil {
		parser, c.names, keyFunc = a.foreign, &a.names, a.publicKey
	}
	_, err = parser.ParseWithClaims(token, &c, keyFunc)
	var se *service.Error
	switch {
	case errors.As(err, &se): // from Claims.UnmarshalJSON or publicKey, and more precise
		return service.Caller{}, se
	case errors.Is(err, jwt.ErrTokenExpired):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token expired")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token signature invalid")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token issuer is not the one this server trusts")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token audience does not include this server")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.Issuer == "" && a.issuer != "":
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token has no issuer (iss), which this server requires")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token has no audience (aud), which this server requires")
	case err != nil:
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token invalid: %v", err)
	case c.Subject == "":
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token has no subject")
	}
	var issued time.Time
	if c.IssuedAt != nil {
		issued = c.IssuedAt.Time
	}
	// An issuer's clock may run up to the leeway ahead of ours: a token
	// stamped that little after the revocation may be from before it.
	if a.revoked != nil && a.revoked.Refuses(c.Subject, issued.Add(-a.leeway)) {
		return service.Caller{}, service.Errorf(service.EUNAUTHORIZED, "token revoked: its user was cut off after it was issued; get a new one")
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

// publicKey is golang-jwt's keyfunc for tokens signed by a public key:
// the key the token's kid names, which must be one for the token's alg;
// without a kid, every given key without one that fits the alg.
func (a *Authority) publicKey(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kidValue, named := t.Header["kid"]
	if !named {
		var ks jwt.VerificationKeySet
		for _, k := range a.keys.unnamed {
			if fits(k, alg) {
				ks.Keys = append(ks.Keys, k)
			}
		}
		if len(ks.Keys) == 0 {
			return nil, service.Errorf(service.EUNAUTHORIZED, "token has no kid, and no key without one verifies %s", alg)
		}
		return ks, nil
	}
	kid, ok := kidValue.(string)
	if !ok {
		return nil, unauthorized(`token header member "kid" must be a string`)
	}
	if k, ok := a.keys.byID[kid]; ok {
		if !fits(k, alg) {
			return nil, service.Errorf(service.EUNAUTHORIZED, "token key %q does not verify %s", kid, alg)
		}
		return k, nil
	}
	if a.remote != nil {
		if k, ok := a.remote.lookup(context.Background(), kid); ok {
			if !fits(k.key, alg) || (k.alg != "" && k.alg != alg) {
				return nil, service.Errorf(service.EUNAUTHORIZED, "token key %q does not verify %s", kid, alg)
			}
			return k.key, nil
		}
	}
	return nil, service.Errorf(service.EUNAUTHORIZED, "token names a key (kid %q) this server does not know", kid)
}
