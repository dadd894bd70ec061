package graphcrypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// SecretGetter reads one secret's value by name. Key Vault keeps a certificate's private key and chain in the
// certificate's backing secret, as base64 PKCS#12 or PEM text depending on the certificate's content type.
type SecretGetter interface {
	Get(ctx context.Context, name string) (string, error)
}

// LoadFromSecrets reads the named certificates from store and builds a key ring: the first name is the current
// certificate, the rest are previous ones still named by older subscriptions. Each key's ID is the name it was
// read under, so subscriptions must use that name as encryptionCertificateId. Names that carry a version
// (e.g. "graph-notifications/3f2a…", if the store accepts them) give each rotation a distinct id.
func LoadFromSecrets(ctx context.Context, store SecretGetter, names ...string) (*KeyRing, error) {
	if len(names) == 0 {
		return nil, errors.New("load certificates: no secret names")
	}
	keys := make([]Key, 0, len(names))
	for _, name := range names {
		value, err := store.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("load certificate %q: %w", name, err)
		}
		// Key Vault's backing secret of a PKCS#12 certificate has an empty password.
		cert, priv, err := ParseCertificate([]byte(value), "")
		if err != nil {
			return nil, fmt.Errorf("load certificate %q: %w", name, err)
		}
		keys = append(keys, Key{ID: name, Certificate: cert, PrivateKey: priv})
	}
	ring, err := NewKeyRing(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("load certificates: %w", err)
	}
	return ring, nil
}

// ParseCertificate reads a certificate with its RSA private key from PEM text (certificate and private key
// blocks in one file, PKCS#1 or unencrypted PKCS#8, any order, chain certificates allowed; password ignored)
// or from PKCS#12, raw DER or base64 (including the legacy RC2/3DES encryption of older Windows exports).
// The returned certificate is the one whose public key matches the private key.
func ParseCertificate(data []byte, password string) (*x509.Certificate, *rsa.PrivateKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, errors.New("parse certificate: empty input")
	}
	if bytes.Contains(trimmed, []byte("-----BEGIN ")) {
		return parsePEM(trimmed)
	}
	// Binary PKCS#12 is used as given: trimming is for text, and a PFX whose MAC salt happens to end in
	// a byte like 0x0a or 0x20 would otherwise lose it (legacy encoders omit the iteration count, so
	// the random salt is the last field).
	der := data
	if isBase64Text(trimmed) {
		decoded, err := base64.StdEncoding.DecodeString(string(removeSpace(trimmed)))
		if err != nil {
			return nil, nil, fmt.Errorf("parse certificate: decode base64: %w", err)
		}
		der = decoded
	}
	key, leaf, chain, err := pkcs12.DecodeChain(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: pkcs12: %w", err)
	}
	return pickPair(append([]*x509.Certificate{leaf}, chain...), key)
}

func parsePEM(data []byte) (*x509.Certificate, *rsa.PrivateKey, error) {
	var (
		certs []*x509.Certificate
		key   any
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var err error
		switch block.Type {
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				certs = append(certs, cert)
			}
		case "RSA PRIVATE KEY", "PRIVATE KEY":
			if key != nil {
				return nil, nil, errors.New("parse certificate: more than one private key")
			}
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, nil, errors.New("parse certificate: encrypted PEM private keys are not supported")
			}
			if block.Type == "RSA PRIVATE KEY" {
				key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
			} else {
				key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			}
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("parse certificate: encrypted PKCS#8 keys are not supported; use PKCS#12")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("parse certificate: PEM %s block: %w", block.Type, err)
		}
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("parse certificate: no CERTIFICATE block")
	}
	if key == nil {
		return nil, nil, errors.New("parse certificate: no private key block")
	}
	return pickPair(certs, key)
}

func pickPair(certs []*x509.Certificate, key any) (*x509.Certificate, *rsa.PrivateKey, error) {
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("parse certificate: private key is %T, want RSA", key)
	}
	for _, c := range certs {
		if priv.PublicKey.Equal(c.PublicKey) {
			return c, priv, nil
		}
	}
	return nil, nil, errors.New("parse certificate: no certificate matches the private key")
}

func isBase64Text(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
		case c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return false
		}
	}
	return true
}

func removeSpace(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return out
}

// GenerateTestCertificate makes a self-signed certificate with an RSA key of bits (2048 to 4096, the sizes Graph
// accepts) for tests and local runs.
func GenerateTestCertificate(bits int) (*x509.Certificate, *rsa.PrivateKey, error) {
	return NewSelfSigned(SelfSigned{Subject: pkix.Name{CommonName: "connecthub-graph-notifications-test"}, Bits: bits})
}

// SelfSigned describes a self-signed certificate for local use. Zero values pick the defaults.
type SelfSigned struct {
	Subject  pkix.Name     // default CN=connecthub-local
	Bits     int           // RSA key size, 2048 (default) to 4096: what Graph and Entra ID accept
	Validity time.Duration // default 365 days
}

// NewSelfSigned makes a self-signed RSA certificate usable both as an app's client credential (digital
// signature) and as Graph's notification encryption certificate (key encipherment).
func NewSelfSigned(o SelfSigned) (*x509.Certificate, *rsa.PrivateKey, error) {
	if o.Bits == 0 {
		o.Bits = 2048
	}
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if len(o.Subject.Names) == 0 && len(o.Subject.ExtraNames) == 0 && o.Subject.String() == "" {
		o.Subject = pkix.Name{CommonName: "connecthub-local"}
	}
	if o.Bits < 2048 || o.Bits > 4096 {
		return nil, nil, fmt.Errorf("generate certificate: %d-bit key, Graph accepts 2048 to 4096", o.Bits)
	}
	if o.Validity < 0 {
		return nil, nil, errors.New("generate certificate: validity must be positive")
	}
	priv, err := rsa.GenerateKey(rand.Reader, o.Bits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      o.Subject,
		// An hour back, so a clock slightly behind ours (Entra ID's, a test's) already sees it valid.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate: %w", err)
	}
	return cert, priv, nil
}

// EncodePEM is the form certificates are stored in here: the certificate (then any chain) and the
// unencrypted PKCS#8 private key, as PEM text that ParseCertificate reads back.
func EncodePEM(key *rsa.PrivateKey, certs ...*x509.Certificate) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("encode certificate: %w", err)
	}
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return b.String(), nil
}
