package graphcrypto

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// Key is one notification encryption certificate and its private key. ID is the encryptionCertificateId given
// to Graph when subscribing with this certificate; Graph echoes it on every item it encrypted with it.
type Key struct {
	ID          string
	Certificate *x509.Certificate
	PrivateKey  *rsa.PrivateKey
}

// KeyRing holds the current key (used for new subscriptions) and previous keys (still named by subscriptions
// made before a rotation). It is immutable and safe for concurrent use; to rotate, build a new ring and swap it.
type KeyRing struct {
	current Key
	byID    map[string]Key
	ids     []string
}

// NewKeyRing builds a ring from the current key and any previous ones. IDs must be non-empty and distinct, and
// each private key must belong to its certificate.
func NewKeyRing(current Key, previous ...Key) (*KeyRing, error) {
	r := &KeyRing{current: current, byID: make(map[string]Key, 1+len(previous))}
	for _, k := range append([]Key{current}, previous...) {
		if k.ID == "" {
			return nil, errors.New("build key ring: empty certificate id")
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("build key ring: duplicate certificate id %q", k.ID)
		}
		if k.Certificate == nil || k.PrivateKey == nil {
			return nil, fmt.Errorf("build key ring: certificate id %q lacks a certificate or private key", k.ID)
		}
		if !k.PrivateKey.PublicKey.Equal(k.Certificate.PublicKey) {
			return nil, fmt.Errorf("build key ring: certificate id %q: private key does not match certificate", k.ID)
		}
		r.byID[k.ID] = k
		r.ids = append(r.ids, k.ID)
	}
	return r, nil
}

// Current is the key new subscriptions should name (encryptionCertificate and encryptionCertificateId).
func (r *KeyRing) Current() Key {
	return r.current
}

// IDs lists the certificate ids held, current first.
func (r *KeyRing) IDs() []string {
	return append([]string(nil), r.ids...)
}

// Decrypt picks the key named by ec.EncryptionCertificateID and decrypts ec. When Graph sent a thumbprint it must
// match the certificate held under that id, so an id reused across a rotation fails clearly instead of as an
// unwrap error.
func (r *KeyRing) Decrypt(ec EncryptedContent) ([]byte, error) {
	k, ok := r.byID[ec.EncryptionCertificateID]
	if !ok {
		return nil, fmt.Errorf("decrypt content: %w: certificate id %q not in key ring", ErrUnknownCertificate,
			ec.EncryptionCertificateID)
	}
	if ec.EncryptionCertificateThumbprint != "" && !strings.EqualFold(ec.EncryptionCertificateThumbprint, Thumbprint(k.Certificate)) {
		return nil, fmt.Errorf("decrypt content: %w: certificate id %q has thumbprint %s, item names %q",
			ErrUnknownCertificate, k.ID, Thumbprint(k.Certificate), ec.EncryptionCertificateThumbprint)
	}
	plain, err := Decrypt(k.PrivateKey, ec)
	if err != nil {
		return nil, fmt.Errorf("certificate id %q: %w", k.ID, err)
	}
	return plain, nil
}
