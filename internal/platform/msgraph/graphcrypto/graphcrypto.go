// Package graphcrypto decrypts the resource data of Microsoft Graph rich notifications and loads the certificates
// it needs. It also encrypts exactly as Graph does, for fakes in tests.
//
// Graph's scheme: a fresh random 32-byte key per notification; data = AES-256-CBC with PKCS7 padding and
// IV = key[0:16]; dataSignature = HMAC-SHA256(key, data); dataKey = RSA-OAEP (SHA-1, MGF1-SHA-1) of the key
// under the public key of the certificate given at subscription time. All three travel base64-encoded.
package graphcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph wraps the key with RSA-OAEP-SHA1; SHA-1 is not used for signatures here.
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
)

// EncryptedContent is the encryptedContent object of a notification.
type EncryptedContent = notification.EncryptedContent

var (
	// ErrSignature means the HMAC over data does not match dataSignature: the content was altered or forged.
	ErrSignature = errors.New("data signature mismatch")
	// ErrUnknownCertificate means no key in the ring has the item's encryptionCertificateId (or its thumbprint
	// does not match the certificate held under that id).
	ErrUnknownCertificate = errors.New("unknown encryption certificate")
	// ErrKeyUnwrap means RSA-OAEP could not unwrap dataKey with the chosen private key.
	ErrKeyUnwrap = errors.New("unwrap data key")
	// ErrMalformed means a field is not valid base64, the key is not 32 bytes, or the plaintext padding is wrong.
	ErrMalformed = errors.New("malformed encrypted content")
)

const keySize = 32

// Decrypt decrypts one item's encrypted content with priv. The signature is checked before any decryption of
// data, so a padding error cannot be used as an oracle.
func Decrypt(priv *rsa.PrivateKey, ec EncryptedContent) ([]byte, error) {
	wrapped, err := base64.StdEncoding.DecodeString(ec.DataKey)
	if err != nil {
		return nil, fmt.Errorf("decode dataKey: %w: %w", ErrMalformed, err)
	}
	data, err := base64.StdEncoding.DecodeString(ec.Data)
	if err != nil {
		return nil, fmt.Errorf("decode data: %w: %w", ErrMalformed, err)
	}
	signature, err := base64.StdEncoding.DecodeString(ec.DataSignature)
	if err != nil {
		return nil, fmt.Errorf("decode dataSignature: %w: %w", ErrMalformed, err)
	}
	key, err := rsa.DecryptOAEP(sha1.New(), nil, priv, wrapped, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt content: %w: %w", ErrKeyUnwrap, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("decrypt content: %w: data key is %d bytes, want %d", ErrMalformed, len(key), keySize)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	if !hmac.Equal(mac.Sum(nil), signature) {
		return nil, fmt.Errorf("decrypt content: %w", ErrSignature)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("decrypt content: %w: data is %d bytes, not whole AES blocks", ErrMalformed, len(data))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt content: %w", err)
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, key[:aes.BlockSize]).CryptBlocks(plain, data)
	return unpad(plain)
}

func unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, fmt.Errorf("decrypt content: %w: bad padding", ErrMalformed)
	}
	if !bytes.Equal(b[len(b)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, fmt.Errorf("decrypt content: %w: bad padding", ErrMalformed)
	}
	return b[:len(b)-n], nil
}

func pad(b []byte) []byte {
	n := aes.BlockSize - len(b)%aes.BlockSize
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	return append(out, bytes.Repeat([]byte{byte(n)}, n)...)
}

// EncryptLikeGraph encrypts plaintext for cert exactly as Graph does for a rich notification. Fakes of Graph in
// tests use it; production code only decrypts.
func EncryptLikeGraph(cert *x509.Certificate, certID string, plaintext []byte) (EncryptedContent, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return EncryptedContent{}, fmt.Errorf("encrypt content: certificate key is %T, want RSA", cert.PublicKey)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return EncryptedContent{}, fmt.Errorf("encrypt content: %w", err)
	}
	return encryptWithKey(pub, key, Thumbprint(cert), certID, pad(plaintext))
}

// encryptWithKey encrypts an already padded plaintext; tests use it to build content with bad padding.
func encryptWithKey(pub *rsa.PublicKey, key []byte, thumbprint, certID string, padded []byte) (EncryptedContent, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return EncryptedContent{}, fmt.Errorf("encrypt content: %w", err)
	}
	data := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(data, padded)
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil)
	if err != nil {
		return EncryptedContent{}, fmt.Errorf("encrypt content: wrap key: %w", err)
	}
	return EncryptedContent{
		Data:                            base64.StdEncoding.EncodeToString(data),
		DataKey:                         base64.StdEncoding.EncodeToString(wrapped),
		DataSignature:                   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		EncryptionCertificateID:         certID,
		EncryptionCertificateThumbprint: thumbprint,
	}, nil
}

// Thumbprint is the certificate's SHA-1 thumbprint as Graph reports it in encryptionCertificateThumbprint
// (upper-case hex).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // the thumbprint is defined as SHA-1.
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
