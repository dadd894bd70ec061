package graphcrypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

type testCert struct {
	cert *x509.Certificate
	priv *rsa.PrivateKey
}

// Key generation is slow (seconds for 4096 bits), so each size is generated once per test binary.
var (
	certMu sync.Mutex
	certs  = map[string]testCert{}
)

func certFor(t testing.TB, name string, bits int) testCert {
	t.Helper()
	certMu.Lock()
	defer certMu.Unlock()
	if c, ok := certs[name]; ok {
		return c
	}
	cert, priv, err := GenerateTestCertificate(bits)
	if err != nil {
		t.Fatalf("GenerateTestCertificate(%d): %v", bits, err)
	}
	certs[name] = testCert{cert, priv}
	return certs[name]
}

func ring(t testing.TB, current Key, previous ...Key) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(current, previous...)
	if err != nil {
		t.Fatalf("NewKeyRing: %v", err)
	}
	return r
}

func keyOf(id string, c testCert) Key { return Key{ID: id, Certificate: c.cert, PrivateKey: c.priv} }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

func sdkVector(t testing.TB) (EncryptedContent, *x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	var ec EncryptedContent
	if err := json.Unmarshal(readTestdata(t, "17-sdk-testvector-encryptedContent.json"), &ec); err != nil {
		t.Fatalf("decode vector: %v", err)
	}
	cert, priv, err := ParseCertificate(readTestdata(t, "18-sdk-testvector-certificate.pfx.b64"), "rich")
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return ec, cert, priv
}

func TestSDKTestVector(t *testing.T) {
	t.Parallel()
	ec, cert, priv := sdkVector(t)
	if got, want := Thumbprint(cert), ec.EncryptionCertificateThumbprint; got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
	if got, want := priv.N.BitLen(), 4096; got != want {
		t.Errorf("key size = %d, want %d", got, want)
	}
	r := ring(t, Key{ID: "custom-id-for-testing", Certificate: cert, PrivateKey: priv})
	got, err := r.Decrypt(ec)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if want := readTestdata(t, "19-sdk-testvector-expected-plaintext.json"); !bytes.Equal(got, want) {
		t.Errorf("plaintext differs:\n got %s\nwant %s", got, want)
	}
	// The assertions of the upstream SDK test, independent of the derived file 19.
	var msg struct {
		Etag string `json:"etag"`
		Body struct {
			ContentType string `json:"contentType"`
			Content     string `json:"content"`
		} `json:"body"`
	}
	if err := json.Unmarshal(got, &msg); err != nil {
		t.Fatalf("plaintext is not JSON: %v", err)
	}
	if msg.Etag != "1625126194597" || msg.Body.Content != "Hello World" || msg.Body.ContentType != "text" {
		t.Errorf("message = %+v, want etag 1625126194597, text body Hello World", msg)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, bits := range []int{2048, 4096} {
		t.Run(fmt.Sprintf("rsa%d", bits), func(t *testing.T) {
			t.Parallel()
			c := certFor(t, fmt.Sprintf("rsa%d", bits), bits)
			r := ring(t, keyOf("cert-"+fmt.Sprint(bits), c))
			for _, size := range []int{0, 1, 15, 16, 17, 1297, 64 << 10} {
				plain := make([]byte, size)
				if _, err := rand.Read(plain); err != nil {
					t.Fatal(err)
				}
				ec, err := EncryptLikeGraph(c.cert, "cert-"+fmt.Sprint(bits), plain)
				if err != nil {
					t.Fatalf("EncryptLikeGraph: %v", err)
				}
				if got, want := ec.EncryptionCertificateThumbprint, Thumbprint(c.cert); got != want {
					t.Errorf("thumbprint = %s, want %s", got, want)
				}
				got, err := r.Decrypt(ec)
				if err != nil {
					t.Fatalf("Decrypt %d bytes: %v", size, err)
				}
				if !bytes.Equal(got, plain) {
					t.Errorf("Decrypt %d bytes: plaintext differs", size)
				}
			}
		})
	}
}

func TestEncryptUsesFreshKeys(t *testing.T) {
	t.Parallel()
	c := certFor(t, "rsa2048", 2048)
	a, err := EncryptLikeGraph(c.cert, "id", []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncryptLikeGraph(c.cert, "id", []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Data == b.Data || a.DataKey == b.DataKey || a.DataSignature == b.DataSignature {
		t.Error("two encryptions of the same plaintext share data, key or signature")
	}
}

// flip decodes a base64 field, flips one bit of byte i (negative counts from the end) and re-encodes it.
func flip(t testing.TB, field string, i int) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(field)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestTamperingFails(t *testing.T) {
	t.Parallel()
	vector, _, priv := sdkVector(t)
	c2048 := certFor(t, "rsa2048", 2048)
	own, err := EncryptLikeGraph(c2048.cert, "own", []byte(`{"availability":"Busy","activity":"InACall"}`))
	if err != nil {
		t.Fatal(err)
	}
	sources := []struct {
		name string
		ec   EncryptedContent
		priv *rsa.PrivateKey
	}{{"sdk vector", vector, priv}, {"self-generated", own, c2048.priv}}
	tests := []struct {
		name   string
		modify func(t testing.TB, ec *EncryptedContent)
		want   error
	}{
		{"data first byte", func(t testing.TB, ec *EncryptedContent) { ec.Data = flip(t, ec.Data, 0) }, ErrSignature},
		{"data last byte", func(t testing.TB, ec *EncryptedContent) { ec.Data = flip(t, ec.Data, -1) }, ErrSignature},
		{"data truncated by a block", func(t testing.TB, ec *EncryptedContent) {
			b, _ := base64.StdEncoding.DecodeString(ec.Data)
			ec.Data = base64.StdEncoding.EncodeToString(b[:len(b)-16])
		}, ErrSignature},
		{"signature first byte", func(t testing.TB, ec *EncryptedContent) { ec.DataSignature = flip(t, ec.DataSignature, 0) }, ErrSignature},
		{"signature last byte", func(t testing.TB, ec *EncryptedContent) { ec.DataSignature = flip(t, ec.DataSignature, -1) }, ErrSignature},
		{"signature empty", func(t testing.TB, ec *EncryptedContent) { ec.DataSignature = "" }, ErrSignature},
		{"dataKey first byte", func(t testing.TB, ec *EncryptedContent) { ec.DataKey = flip(t, ec.DataKey, 0) }, ErrKeyUnwrap},
		{"dataKey last byte", func(t testing.TB, ec *EncryptedContent) { ec.DataKey = flip(t, ec.DataKey, -1) }, ErrKeyUnwrap},
		{"dataKey not base64", func(t testing.TB, ec *EncryptedContent) { ec.DataKey = "%%" + ec.DataKey }, ErrMalformed},
		{"data not base64", func(t testing.TB, ec *EncryptedContent) { ec.Data = ec.Data[1:] }, ErrMalformed},
	}
	for _, src := range sources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ec := src.ec
				tt.modify(t, &ec)
				got, err := Decrypt(src.priv, ec)
				if !errors.Is(err, tt.want) {
					t.Errorf("Decrypt error = %v, want %v", err, tt.want)
				}
				if got != nil {
					t.Errorf("Decrypt returned %d bytes of plaintext with an error", len(got))
				}
			})
		}
	}
}

func TestBadPaddingAndShapes(t *testing.T) {
	t.Parallel()
	c := certFor(t, "rsa2048", 2048)
	key := bytes.Repeat([]byte{7}, keySize)
	block := func(last ...byte) []byte {
		b := bytes.Repeat([]byte{'a'}, 16)
		return append(b[:16-len(last)], last...)
	}
	tests := []struct {
		name   string
		key    []byte
		padded []byte
		want   error
	}{
		{"padding byte zero", key, block(0), ErrMalformed},
		{"padding byte 17", key, block(17), ErrMalformed},
		{"padding longer than data", key, bytes.Repeat([]byte{32}, 16), ErrMalformed},
		{"inconsistent padding bytes", key, block(3, 2, 3), ErrMalformed},
		{"no padding at all", key, block('b'), ErrMalformed},
		{"data not whole blocks", key, []byte("0123456789abcde"), ErrMalformed},
		{"empty data", key, nil, ErrMalformed},
		{"16-byte data key", key[:16], block(1), ErrMalformed},
		{"valid single padding byte", key, block(1), nil},
		{"valid full padding block", key, append(block(1), bytes.Repeat([]byte{16}, 16)...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ec, err := encryptUnchecked(&c.priv.PublicKey, tt.key, tt.padded)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decrypt(c.priv, ec)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decrypt error = %v, want %v", err, tt.want)
			}
		})
	}
}

// encryptUnchecked builds correctly signed content around any key and any "padded" data, including data that is
// not a whole number of blocks (the whole blocks are encrypted, the rest appended as is).
func encryptUnchecked(pub *rsa.PublicKey, key, padded []byte) (EncryptedContent, error) {
	aesKey := key
	if len(aesKey) != keySize {
		aesKey = bytes.Repeat([]byte{1}, keySize) // any cipher: Decrypt must refuse the key length first
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return EncryptedContent{}, err
	}
	whole := len(padded) - len(padded)%aes.BlockSize
	data := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, aesKey[:aes.BlockSize]).CryptBlocks(data[:whole], padded[:whole])
	copy(data[whole:], padded[whole:])

	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil)
	if err != nil {
		return EncryptedContent{}, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	return EncryptedContent{
		Data:                    base64.StdEncoding.EncodeToString(data),
		DataKey:                 base64.StdEncoding.EncodeToString(wrapped),
		DataSignature:           base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		EncryptionCertificateID: "id",
	}, nil
}

func TestKeyRingRotation(t *testing.T) {
	t.Parallel()
	oldC, newC := certFor(t, "rsa2048", 2048), certFor(t, "rsa2048-b", 2048)
	r := ring(t, keyOf("graph-notify/v2", newC), keyOf("graph-notify/v1", oldC))
	if got := r.Current().ID; got != "graph-notify/v2" {
		t.Errorf("Current().ID = %q, want graph-notify/v2", got)
	}
	if got, want := strings.Join(r.IDs(), ","), "graph-notify/v2,graph-notify/v1"; got != want {
		t.Errorf("IDs() = %s, want %s", got, want)
	}
	encrypt := func(c testCert, id string, noThumbprint bool) EncryptedContent {
		ec, err := EncryptLikeGraph(c.cert, id, []byte("payload of "+id))
		if err != nil {
			t.Fatal(err)
		}
		if noThumbprint {
			ec.EncryptionCertificateThumbprint = ""
		}
		return ec
	}
	tests := []struct {
		name string
		ec   EncryptedContent
		want string
		err  error
	}{
		{"old subscription uses the previous key", encrypt(oldC, "graph-notify/v1", false), "payload of graph-notify/v1", nil},
		{"new subscription uses the current key", encrypt(newC, "graph-notify/v2", false), "payload of graph-notify/v2", nil},
		{"without thumbprint the id alone chooses", encrypt(oldC, "graph-notify/v1", true), "payload of graph-notify/v1", nil},
		{"unknown id", encrypt(oldC, "graph-notify/v0", false), "", ErrUnknownCertificate},
		{"empty id", encrypt(oldC, "", false), "", ErrUnknownCertificate},
		{"id of another certificate, thumbprint says so", encrypt(newC, "graph-notify/v1", false), "", ErrUnknownCertificate},
		{"id of another certificate, no thumbprint", encrypt(newC, "graph-notify/v1", true), "", ErrKeyUnwrap},
		{"thumbprint compared ignoring case", func() EncryptedContent {
			ec := encrypt(oldC, "graph-notify/v1", false)
			ec.EncryptionCertificateThumbprint = strings.ToLower(ec.EncryptionCertificateThumbprint)
			return ec
		}(), "payload of graph-notify/v1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Decrypt(tt.ec)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Decrypt error = %v, want %v", err, tt.err)
			}
			if string(got) != tt.want {
				t.Errorf("Decrypt = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewKeyRingRejects(t *testing.T) {
	t.Parallel()
	a, b := certFor(t, "rsa2048", 2048), certFor(t, "rsa2048-b", 2048)
	tests := []struct {
		name     string
		current  Key
		previous []Key
	}{
		{"empty id", keyOf("", a), nil},
		{"duplicate id", keyOf("x", a), []Key{keyOf("x", b)}},
		{"missing certificate", Key{ID: "x", PrivateKey: a.priv}, nil},
		{"missing private key", Key{ID: "x", Certificate: a.cert}, nil},
		{"key of another certificate", Key{ID: "x", Certificate: a.cert, PrivateKey: b.priv}, nil},
		{"bad previous key", keyOf("x", a), []Key{{ID: "y", Certificate: b.cert, PrivateKey: a.priv}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewKeyRing(tt.current, tt.previous...); err == nil {
				t.Error("NewKeyRing succeeded, want an error")
			}
		})
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func otherCAcert(t testing.TB) *x509.Certificate {
	t.Helper()
	c := certFor(t, "rsa2048-b", 2048)
	return c.cert
}

func TestParseCertificate(t *testing.T) {
	t.Parallel()
	c := certFor(t, "rsa2048", 2048)
	vectorB64 := readTestdata(t, "18-sdk-testvector-certificate.pfx.b64")
	vectorDER, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(vectorB64)))
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(c.priv))
	pkcs8der, err := x509.MarshalPKCS8PrivateKey(c.priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pemOf("PRIVATE KEY", pkcs8der)
	certPEM := pemOf("CERTIFICATE", c.cert.Raw)
	encode := func(enc *pkcs12.Encoder, password string, ca ...*x509.Certificate) []byte {
		b, err := enc.Encode(c.priv, c.cert, ca, password)
		if err != nil {
			t.Fatalf("pkcs12 encode: %v", err)
		}
		return b
	}
	wrap76 := func(s string) []byte { // base64 with line breaks, as some tools write it
		var b strings.Builder
		for len(s) > 76 {
			b.WriteString(s[:76] + "\r\n")
			s = s[76:]
		}
		b.WriteString(s + "\n")
		return []byte(b.String())
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := selfSigned(t, ecKey, &ecKey.PublicKey)
	tests := []struct {
		name     string
		data     []byte
		password string
		want     *x509.Certificate // nil with wantErr false: the SDK test vector's certificate
		wantErr  bool
	}{
		{"sdk vector base64 (RC2-40 certs, 3DES key)", vectorB64, "rich", nil, false},
		{"sdk vector raw DER", vectorDER, "rich", nil, false},
		{"sdk vector base64 wrapped at 76", wrap76(string(bytes.TrimSpace(vectorB64))), "rich", nil, false},
		{"modern PKCS#12 with password", encode(pkcs12.Modern2023, "pw"), "pw", c.cert, false},
		{"legacy RC2 PKCS#12", encode(pkcs12.LegacyRC2, "pw"), "pw", c.cert, false},
		{"legacy 3DES PKCS#12", encode(pkcs12.LegacyDES, "pw"), "pw", c.cert, false},
		{"Key Vault style: base64, empty password",
			[]byte(base64.StdEncoding.EncodeToString(encode(pkcs12.Modern2023, ""))), "", c.cert, false},
		{"PKCS#12 with a chain", encode(pkcs12.Modern2023, "", otherCAcert(t)), "", c.cert, false},
		{"PEM certificate then PKCS#1 key", append(append([]byte{}, certPEM...), pkcs1...), "", c.cert, false},
		{"PEM PKCS#8 key then certificate", append(append([]byte{}, pkcs8...), certPEM...), "", c.cert, false},
		{"PEM with chain certificate first", bytes.Join([][]byte{pemOf("CERTIFICATE", otherCAcert(t).Raw), pkcs8, certPEM}, nil),
			"", c.cert, false},
		{"PEM with openssl bag attributes", bytes.Join([][]byte{
			[]byte("Bag Attributes\n    localKeyID: 01 00 00 00\nsubject=CN = x\n"), certPEM,
			[]byte("Bag Attributes\n    localKeyID: 01 00 00 00\nKey Attributes: <No Attributes>\n"), pkcs8}, nil), "", c.cert, false},
		// Failures.
		{"wrong PKCS#12 password", encode(pkcs12.Modern2023, "pw"), "other", nil, true},
		{"sdk vector wrong password", vectorB64, "wrong", nil, true},
		{"PEM certificate only", certPEM, "", nil, true},
		{"PEM key only", pkcs8, "", nil, true},
		{"PEM key of another certificate", append(pemOf("CERTIFICATE", otherCAcert(t).Raw), pkcs8...), "", nil, true},
		{"PEM two keys", bytes.Join([][]byte{certPEM, pkcs8, pkcs1}, nil), "", nil, true},
		{"PEM ECDSA key", append(pemOf("CERTIFICATE", ecCert.Raw), pemOf("PRIVATE KEY", ecDER)...), "", nil, true},
		{"PEM encrypted PKCS#8", append(append([]byte{}, certPEM...), pemOf("ENCRYPTED PRIVATE KEY", []byte{1})...), "", nil, true},
		{"PEM legacy encrypted", append(append([]byte{}, certPEM...), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}})...), "", nil, true},
		{"PEM corrupt certificate", append(pemOf("CERTIFICATE", []byte{1, 2, 3}), pkcs8...), "", nil, true},
		{"empty", nil, "", nil, true},
		{"garbage text", []byte("not a certificate"), "", nil, true},
		{"base64 of garbage", []byte(base64.StdEncoding.EncodeToString([]byte("garbage"))), "", nil, true},
		{"truncated DER", vectorDER[:len(vectorDER)/2], "rich", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert, priv, err := ParseCertificate(tt.data, tt.password)
			if tt.wantErr {
				if err == nil {
					t.Fatal("ParseCertificate succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCertificate: %v", err)
			}
			if !priv.PublicKey.Equal(cert.PublicKey) {
				t.Error("private key does not match certificate")
			}
			if tt.want != nil && !cert.Equal(tt.want) {
				t.Errorf("certificate subject %s, want %s", cert.Subject, tt.want.Subject)
			}
			if tt.want == nil && Thumbprint(cert) != "4B95353E086AD37196606ACF834A14532F03E6DB" {
				t.Errorf("vector thumbprint = %s", Thumbprint(cert))
			}
		})
	}
}

func selfSigned(t testing.TB, signer any, pub any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestEncryptLikeGraphRejectsNonRSA(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncryptLikeGraph(selfSigned(t, ecKey, &ecKey.PublicKey), "id", []byte("x")); err == nil {
		t.Error("EncryptLikeGraph with an ECDSA certificate succeeded")
	}
}

func TestGenerateTestCertificateSizes(t *testing.T) {
	t.Parallel()
	for _, bits := range []int{1024, 2047, 4097, 8192} {
		if _, _, err := GenerateTestCertificate(bits); err == nil {
			t.Errorf("GenerateTestCertificate(%d) succeeded, want an error", bits)
		}
	}
	c := certFor(t, "rsa2048", 2048)
	if got := c.priv.N.BitLen(); got != 2048 {
		t.Errorf("key size = %d, want 2048", got)
	}
	if err := c.cert.CheckSignature(c.cert.SignatureAlgorithm, c.cert.RawTBSCertificate, c.cert.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
}

type mapStore map[string]string

var errNotFound = errors.New("secret not found")

func (m mapStore) Get(_ context.Context, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", errNotFound
	}
	return v, nil
}

var _ SecretGetter = mapStore(nil)

func TestLoadFromSecrets(t *testing.T) {
	t.Parallel()
	a, b := certFor(t, "rsa2048", 2048), certFor(t, "rsa2048-b", 2048)
	pfx, err := pkcs12.Modern2023.Encode(a.priv, a.cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(b.priv)
	if err != nil {
		t.Fatal(err)
	}
	store := mapStore{
		"notify-pkcs12": base64.StdEncoding.EncodeToString(pfx),
		"notify-pem":    string(append(pemOf("PRIVATE KEY", pkcs8), pemOf("CERTIFICATE", b.cert.Raw)...)),
		"broken":        "not a certificate",
	}
	r, err := LoadFromSecrets(context.Background(), store, "notify-pem", "notify-pkcs12")
	if err != nil {
		t.Fatalf("LoadFromSecrets: %v", err)
	}
	if got := r.Current(); got.ID != "notify-pem" || !got.Certificate.Equal(b.cert) {
		t.Errorf("Current() = %s %s, want notify-pem with the PEM certificate", got.ID, got.Certificate.Subject)
	}
	for id, c := range map[string]testCert{"notify-pem": b, "notify-pkcs12": a} {
		ec, err := EncryptLikeGraph(c.cert, id, []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Decrypt(ec); err != nil || string(got) != id {
			t.Errorf("Decrypt for %s = %q, %v", id, got, err)
		}
	}

	failures := []struct {
		name  string
		names []string
		is    error
	}{
		{"no names", nil, nil},
		{"missing secret", []string{"notify-pem", "absent"}, errNotFound},
		{"unparseable secret", []string{"broken"}, nil},
		{"same name twice", []string{"notify-pem", "notify-pem"}, nil},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadFromSecrets(context.Background(), store, tt.names...)
			if err == nil {
				t.Fatal("LoadFromSecrets succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), store["notify-pkcs12"][:20]) {
				t.Errorf("error leaks secret material: %v", err)
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	plain := readTestdata(b, "19-sdk-testvector-expected-plaintext.json")
	for _, bits := range []int{2048, 4096} {
		c := certFor(b, fmt.Sprintf("rsa%d", bits), bits)
		r := ring(b, keyOf("id", c))
		ec, err := EncryptLikeGraph(c.cert, "id", plain)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("rsa=%d", bits), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Decrypt(ec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A self-signed certificate stored as EncodePEM writes it is read back by ParseCertificate (what the app
// does with the app client and notification certificates), with the subject, key size and validity asked for.
func TestNewSelfSignedRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      SelfSigned
		wantCN  string
		wantLen int
		wantErr bool
	}{
		{"defaults", SelfSigned{}, "connecthub-local", 2048, false},
		{"chosen", SelfSigned{Subject: pkix.Name{CommonName: "contoso-app", Organization: []string{"Contoso"}}, Bits: 3072, Validity: 30 * 24 * time.Hour}, "contoso-app", 3072, false},
		{"too small", SelfSigned{Bits: 1024}, "", 0, true},
		{"too large", SelfSigned{Bits: 8192}, "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert, key, err := NewSelfSigned(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatal("NewSelfSigned succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			text, err := EncodePEM(key, cert)
			if err != nil {
				t.Fatal(err)
			}
			got, gotKey, err := ParseCertificate([]byte(text), "")
			if err != nil {
				t.Fatalf("ParseCertificate(EncodePEM(...)): %v", err)
			}
			if !got.Equal(cert) || !gotKey.Equal(key) {
				t.Error("read back a different certificate or key")
			}
			if got.Subject.CommonName != tc.wantCN || key.N.BitLen() != tc.wantLen {
				t.Errorf("CN %q, %d bits; want %q, %d", got.Subject.CommonName, key.N.BitLen(), tc.wantCN, tc.wantLen)
			}
			want := tc.in.Validity
			if want == 0 {
				want = 365 * 24 * time.Hour
			}
			if d := time.Until(got.NotAfter); d > want || d < want-time.Minute {
				t.Errorf("not after in %v, want %v", d, want)
			}
			if got.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Error("no digital signature usage: Entra ID could not use it as a client credential")
			}
		})
	}
}

// A binary PFX whose last byte reads as white space (a legacy encoder's random MAC salt ends the file)
// parses like any other: trimming is for text input only.
func TestParseCertificateBinaryEndingInWhitespace(t *testing.T) {
	t.Parallel()
	c := certFor(t, "rsa2048", 2048)
	for i := 0; ; i++ {
		b, err := pkcs12.LegacyRC2.Encode(c.priv, c.cert, nil, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.ContainsAny(b[len(b)-1:], " \t\n\r\v\f") {
			if i == 5000 {
				t.Fatal("no encoding ending in white space after 5000 tries")
			}
			continue
		}
		if cert, _, err := ParseCertificate(b, "pw"); err != nil || !cert.Equal(c.cert) {
			t.Fatalf("a PFX ending in %#x: %v", b[len(b)-1], err)
		}
		return
	}
}
