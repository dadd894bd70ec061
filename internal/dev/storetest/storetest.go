// Package storetest gives tests a store on fresh, uniquely prefixed tables in Azurite (the real Table
// Storage emulator, started by `make test` through cmd/withazurite), with a per-tenant key ring on an
// in-memory secret store, and drops the tables when the test ends. Parallel tests and packages never
// see each other's rows.
//
//	env := storetest.NewEnv(t, storetest.Options{})
//	tenant := env.NewTenant(t) // a random tenant id with a data key
//	_, err := env.Store.Users.Insert(ctx, tenant, registry.User{ID: "u1", DisplayName: "Ada"})
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

// Environment variables set by cmd/withazurite.
const (
	EnvTables    = "CONNECTHUB_TEST_TABLES"           // connection string of the plain-HTTP instance
	EnvOAuthURL  = "CONNECTHUB_TEST_TABLES_OAUTH_URL" // account URL of the HTTPS + OAuth instance (-tls)
	EnvOAuthCA   = "CONNECTHUB_TEST_TABLES_CA"        // its self-signed certificate: a PEM file path or PEM text
	howToRunHint = "run the tests through Azurite: make test, or go run ./cmd/withazurite -tls -- go test ./..."
)

// ConnectionString returns the Azurite connection string, failing the test (never skipping it) when the
// tests were not started beside Azurite.
func ConnectionString(t testing.TB) string {
	t.Helper()
	v := os.Getenv(EnvTables)
	if v == "" {
		t.Fatalf("%s is not set: storage tests need Azurite; %s", EnvTables, howToRunHint)
	}
	return v
}

// OAuthInstance returns the HTTPS+OAuth Azurite account URL and an HTTP client trusting its certificate,
// failing the test when withazurite was started without -tls.
func OAuthInstance(t testing.TB) (accountURL string, client *http.Client) {
	t.Helper()
	accountURL, ca := os.Getenv(EnvOAuthURL), os.Getenv(EnvOAuthCA)
	if accountURL == "" || ca == "" {
		t.Fatalf("%s/%s are not set: token-credential tests need the HTTPS+OAuth Azurite; %s", EnvOAuthURL, EnvOAuthCA, howToRunHint)
	}
	pemBytes := []byte(ca)
	if !strings.HasPrefix(strings.TrimSpace(ca), "-----BEGIN") {
		b, err := os.ReadFile(ca)
		if err != nil {
			t.Fatalf("read %s: %v", EnvOAuthCA, err)
		}
		pemBytes = b
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no PEM certificate", EnvOAuthCA)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return accountURL, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// UniquePrefix returns a fresh table-name prefix ("t" and 10 hex digits).
func UniquePrefix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Options adjust the store a test gets.
type Options struct {
	ClientOptions *aztables.ClientOptions // e.g. a request-counting policy
	Now           func() time.Time
	KeyCacheTTL   time.Duration
}

// Env is a store on fresh tables plus the key ring and secret store behind its sealing.
type Env struct {
	// DB is the table engine: modules that own their tables open them on it.
	DB      *tables.DB
	Store   *registry.Registry
	Keys    *tenantkey.Keyring
	Secrets *secrets.Memory
	Prefix  string
}

// New returns a store on fresh tables (see NewEnv).
func New(t testing.TB) *registry.Registry { return NewEnv(t, Options{}).Store }

// NewEnv creates every table under a unique prefix and drops them when the test ends.
func NewEnv(t testing.TB, o Options) *Env {
	t.Helper()
	conn := ConnectionString(t)
	mem := secrets.NewMemory()
	keys := tenantkey.New(mem, tenantkey.Options{CacheTTL: o.KeyCacheTTL, Now: o.Now})
	prefix := UniquePrefix()
	db, err := tables.OpenConnectionString(conn, tables.Options{
		TablePrefix: prefix, Sealer: keys, ClientOptions: o.ClientOptions, Now: o.Now,
	})
	if err != nil {
		t.Fatalf("open tables: %v", err)
	}
	Prepare(t, db)
	return &Env{DB: db, Store: registry.Open(db), Keys: keys, Secrets: mem, Prefix: prefix}
}

// Prepare creates every table the packages linked into the test declare (tables.Declared) and
// registers their removal at the end of the test. db must have been opened with a table prefix.
func Prepare(t testing.TB, db *tables.DB) {
	t.Helper()
	names := tables.Declared().Names()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.CreateTables(ctx, names); err != nil {
		t.Fatalf("create tables: %v (is Azurite running? %s)", err, howToRunHint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := db.DropTables(ctx, names); err != nil {
			t.Errorf("drop test tables: %v", err)
		}
	})
}

// NewTenantID returns a random, valid tenant id.
func NewTenantID(t testing.TB) core.TenantID {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	id, err := core.ParseTenantID(fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// NewTenant returns a random tenant id whose data key exists, ready for sealed writes.
func (e *Env) NewTenant(t testing.TB) core.TenantID {
	t.Helper()
	id := NewTenantID(t)
	if err := e.Keys.CreateTenantKey(context.Background(), id); err != nil {
		t.Fatalf("create tenant key: %v", err)
	}
	return id
}
