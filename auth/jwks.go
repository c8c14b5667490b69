package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// JWKS configures the key set fetched from an identity provider's
// jwks_uri.
type JWKS struct {
	// URL is where the JWK Set is served; empty for none.
	URL string
	// MinRefresh is the least time between two fetches: a token naming a
	// kid that the set lacks fetches it again, at most this often, so
	// that a flood of made-up kids costs the provider nothing.
	MinRefresh time.Duration
	// MaxAge is how old the set may get before a verification fetches it
	// again in the background, so that keys the provider dropped stop
	// verifying.
	MaxAge time.Duration
	// Timeout bounds each fetch, the reading of the body included.
	Timeout time.Duration
	// Client fetches the set; nil is a client of its own.
	Client *http.Client
}

// DefaultJWKS holds the defaults for JWKS fields left zero.
var DefaultJWKS = JWKS{MinRefresh: time.Minute, MaxAge: 15 * time.Minute, Timeout: 5 * time.Second}

func (j JWKS) withDefaults() JWKS {
	d := DefaultJWKS
	d.URL, d.Client = j.URL, j.Client
	if j.MinRefresh > 0 {
		d.MinRefresh = j.MinRefresh
	}
	if j.MaxAge > 0 {
		d.MaxAge = j.MaxAge
	}
	if j.Timeout > 0 {
		d.Timeout = j.Timeout
	}
	if d.Client == nil {
		d.Client = &http.Client{CheckRedirect: noDowngrade}
	}
	return d
}

// noDowngrade follows a few redirects, none from https to http: the set
// must come as safely as it was asked for.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirected from https to " + req.URL.Scheme)
	}
	return nil
}

// maxJWKSBody bounds the JWK Set read: real ones hold a few keys.
const maxJWKSBody = 1 << 20

// remoteKeys is a JWK Set fetched from a URL and cached. The set is
// swapped whole, so that verifications read it without a lock; fetches
// take turns.
type remoteKeys struct {
	cfg JWKS
	log *slog.Logger

	keys atomic.Pointer[map[string]jwk]
	// background is set while a background fetch runs: at most one does.
	background atomic.Bool

	mu sync.Mutex // held by the fetch in progress
	// When the set was last fetched, or failed to be, and when the set
	// in keys was fetched, in Unix nanoseconds: read without mu, which a
	// fetch holds for as long as it takes.
	fetched, got atomic.Int64
}

// jwk is one verification key of the set.
type jwk struct {
	key crypto.PublicKey
	alg string // the one algorithm the set allows it, or "" for its kind's
}

// fetchKeys fetches the set at cfg.URL once, and fails if it cannot:
// a server that could verify none of its users' tokens should not start.
func fetchKeys(ctx context.Context, cfg JWKS, log *slog.Logger) (*remoteKeys, error) {
	r := &remoteKeys{cfg: cfg.withDefaults(), log: log}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fetch(ctx); err != nil {
		return nil, fmt.Errorf("token JWKS could not be fetched from %s: %w", r.where(), err)
	}
	return r, nil
}

// lookup returns the key kid names, fetching the set again if it lacks
// kid and the last fetch is MinRefresh old.
func (r *remoteKeys) lookup(ctx context.Context, kid string) (jwk, bool) {
	if k, ok := (*r.keys.Load())[kid]; ok {
		r.refreshIfOld()
		return k, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := (*r.keys.Load())[kid]; ok { // fetched while we waited
		return k, true
	}
	if since(&r.fetched) < r.cfg.MinRefresh {
		return jwk{}, false
	}
	if err := r.fetch(ctx); err != nil {
		r.log.Warn("token JWKS fetch failed; keeping the keys fetched before", "url", r.where(), "err", err)
	}
	k, ok := (*r.keys.Load())[kid]
	return k, ok
}

// refreshIfOld fetches the set in the background once it is MaxAge old.
// The fetch is bounded by Timeout, so the goroutine ends.
func (r *remoteKeys) refreshIfOld() {
	old := since(&r.got) >= r.cfg.MaxAge && since(&r.fetched) >= r.cfg.MinRefresh
	if !old || !r.background.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.background.Store(false)
		r.mu.Lock()
		defer r.mu.Unlock()
		if since(&r.fetched) < r.cfg.MinRefresh {
			return // an unknown kid fetched it meanwhile
		}
		if err := r.fetch(context.Background()); err != nil {
			r.log.Warn("token JWKS refresh failed; keeping the keys fetched before", "url", r.where(), "err", err)
		}
	}()
}

// fetch gets the set and, if it is well-formed, replaces the cached one.
// r.mu must be held. Its errors never hold the body: a set may hold
// private keys by mistake.
func (r *remoteKeys) fetch(ctx context.Context) error {
	start := time.Now().UnixNano()
	r.fetched.Store(start)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	switch {
	case err != nil:
		return fmt.Errorf("read the body: %w", err)
	case len(body) > maxJWKSBody:
		return fmt.Errorf("the body is over %d bytes", maxJWKSBody)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		r.log.Warn("token JWKS keys skipped: they cannot verify tokens here", "url", r.where(), "keys", skipped)
	}
	r.keys.Store(&keys)
	r.got.Store(start)
	return nil
}

// since returns the time since the Unix nanoseconds in t.
func since(t *atomic.Int64) time.Duration { return time.Since(time.Unix(0, t.Load())) }

// where names the set's URL for logs and errors, without its query or
// user, which may hold credentials.
func (r *remoteKeys) where() string {
	u, err := url.Parse(r.cfg.URL)
	if err != nil {
		return "the configured URL"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// parseJWKS reads the verification keys of a JWK Set, by kid, and says
// why it skipped the others: keys for encryption, without a kid (a set is
// looked up by kid), of kinds or algorithms we do not verify with
// (symmetric ones among them: a token is never checked against a secret
// that someone else publishes), malformed, or sharing a kid. Skipping,
// not failing, keeps one odd key from hiding the rest, or a provider's
// new keys.
func parseJWKS(body []byte) (keys map[string]jwk, skipped []string, err error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, errors.New("the body is not a JWK Set")
	}
	keys = map[string]jwk{}
	dup := map[string]bool{}
	for i, m := range set.Keys {
		why := unusable(m)
		if why == "" && dup[m.KID] {
			why = "shares its kid"
		}
		var k jwkset.JWK
		if why == "" {
			if k, err = jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{}); err != nil {
				why = "malformed"
			}
		}
		if why == "" {
			switch alg := string(m.ALG); {
			case checkKey(k.Key()) != nil:
				why = "not a key kind or size tokens are verified with"
			case alg != "" && !fits(k.Key(), alg):
				why = "for " + alg + ", which is not verified here"
			}
		}
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("%d (kid %q): %s", i, m.KID, why))
			if dup[m.KID] {
				delete(keys, m.KID) // neither of two keys of one kid
			}
			continue
		}
		dup[m.KID] = true
		keys[m.KID] = jwk{key: k.Key(), alg: string(m.ALG)}
	}
	return keys, skipped, nil
}

// unusable says why the JWK m is not one to verify tokens with, or "".
func unusable(m jwkset.JWKMarshal) string {
	switch {
	case m.KID == "":
		return "no kid"
	case m.USE == jwkset.UseEnc:
		return "for encryption"
	case m.KTY == jwkset.KtyOct:
		return "symmetric"
	case m.D != "":
		return "a private key, which has no place in a published set"
	}
	return ""
}
