package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// MinRSABits is the smallest RSA modulus accepted, as NIST allows.
const MinRSABits = 2048

// PublicKey is a key that verifies tokens signed by someone else: an RSA,
// ECDSA (P-256 or P-384) or Ed25519 public key, with the kid that tokens
// signed by it name, if any.
type PublicKey struct {
	ID  string
	Key crypto.PublicKey
}

// algorithms returns the JWS algorithms k verifies: each key kind its
// own, and no other (RFC 8725 §3.1).
func algorithms(k crypto.PublicKey) []string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	}
	return nil
}

// checkKey refuses a key of no kind we verify with, or too weak a one.
func checkKey(k crypto.PublicKey) error {
	if algorithms(k) == nil {
		return fmt.Errorf("a %T is not a key for tokens: use RSA, ECDSA P-256 or P-384, or Ed25519", k)
	}
	if r, ok := k.(*rsa.PublicKey); ok && r.N.BitLen() < MinRSABits {
		return fmt.Errorf("an RSA key of %d bits is too weak: use at least %d", r.N.BitLen(), MinRSABits)
	}
	return nil
}

// ReadPublicKeys reads the public keys in the PEM file at path: blocks of
// type PUBLIC KEY (PKIX), RSA PUBLIC KEY (PKCS #1) or CERTIFICATE, whose
// key is taken. A block's "kid" header, when it has one, is its key id.
func ReadPublicKeys(path string) ([]PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token public keys: %w", err)
	}
	var keys []PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		k, err := parsePublicBlock(block)
		if err != nil {
			return nil, fmt.Errorf("token public keys %s, PEM block %d: %w", path, n, err)
		}
		keys = append(keys, PublicKey{ID: block.Headers["kid"], Key: k})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token public keys %s: no PEM block in the file", path)
	}
	return keys, nil
}

func parsePublicBlock(block *pem.Block) (crypto.PublicKey, error) {
	var k crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("a %q block holds no public key (a private key belongs with whoever signs)", block.Type)
	}
	if err != nil {
		return nil, err
	}
	return k, checkKey(k)
}

// keySet is the public keys given at start, by kid and, for those
// without, in the order given.
type keySet struct {
	byID    map[string]crypto.PublicKey
	unnamed []crypto.PublicKey
}

func newKeySet(keys []PublicKey) (keySet, error) {
	ks := keySet{byID: map[string]crypto.PublicKey{}}
	for _, k := range keys {
		if err := checkKey(k.Key); err != nil {
			return keySet{}, err
		}
		switch _, dup := ks.byID[k.ID]; {
		case k.ID == "":
			ks.unnamed = append(ks.unnamed, k.Key)
		case dup:
			return keySet{}, fmt.Errorf("two token public keys have the kid %q", k.ID)
		default:
			ks.byID[k.ID] = k.Key
		}
	}
	return ks, nil
}

// fits reports whether k verifies tokens of alg.
func fits(k crypto.PublicKey, alg string) bool { return slices.Contains(algorithms(k), alg) }

// Signer signs test tokens with a private key: what an identity provider
// does, for `switchboard token create --private-key`.
type Signer struct {
	ID     string // the kid put in each token's header, if not empty
	key    crypto.Signer
	method jwt.SigningMethod
}

// ReadSigner reads the private key in the PEM file at path (PKCS #8, or
// PKCS #1 for RSA, or SEC 1 for EC) for signing with alg, which may be
// empty for the key kind's first: RS256, ES256 for P-256, ES384 for
// P-384, EdDSA.
func ReadSigner(path, alg, kid string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("private key %s: no PEM block in the file", path)
	}
	var k any
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("private key %s: a %q block holds no private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key %s: a %T cannot sign", path, k)
	}
	algs := algorithms(signer.Public())
	if err := checkKey(signer.Public()); err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	if alg == "" {
		alg = algs[0]
	}
	if !slices.Contains(algs, alg) {
		return nil, fmt.Errorf("private key %s signs %v, not %s", path, algs, alg)
	}
	return &Signer{ID: kid, key: signer, method: jwt.GetSigningMethod(alg)}, nil
}
