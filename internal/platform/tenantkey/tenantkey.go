// Package tenantkey gives every tenant its own random 256-bit data key, held in the secrets store
// (Key Vault), and seals personal fields with it: AES-256-GCM with associated data binding the table,
// the tenant and the row key, so a ciphertext copied to another row or tenant does not open. Destroying
// the key makes all of the tenant's sealed data unreadable at once, including copies in geo-replicas and
// backups (crypto-shredding).
package tenantkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
)

var (
	// ErrNoKey: the tenant has no data key — never created, or destroyed.
	ErrNoKey = tables.ErrNoKey
	// ErrKeyExists: CreateTenantKey found a key already.
	ErrKeyExists = errors.New("tenant data key exists")
	// ErrOpen: the sealed value does not open under this tenant's key for this table and row — it was
	// moved, altered, or sealed under another key.
	ErrOpen = errors.New("sealed value does not open")
)

// version prefixes every sealed value, so the format can change without guessing.
const version byte = 1

// Options tune the key ring.
type Options struct {
	// CacheTTL bounds how long a key stays in memory (default 5 min). After DestroyTenantKey, other
	// instances can still open the tenant's data for at most this long.
	CacheTTL   time.Duration
	MaxTenants int              // keys held in memory (default 10,000)
	Now        func() time.Time // tests
}

// Keyring seals and opens per-tenant data. It implements tables.Sealer.
type Keyring struct {
	secrets secrets.Store
	cache   *ttlcache.Cache[core.TenantID, cipher.AEAD]
}

var _ tables.Sealer = (*Keyring)(nil)

// New returns a key ring over s.
func New(s secrets.Store, o Options) *Keyring {
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.MaxTenants <= 0 {
		o.MaxTenants = 10_000
	}
	return &Keyring{secrets: s, cache: ttlcache.New[core.TenantID, cipher.AEAD](o.CacheTTL, o.MaxTenants, o.Now)}
}

// CreateTenantKey makes the tenant's data key; ErrKeyExists if it has one. Call it once, at onboarding,
// under the tenant registry's concurrency control: Key Vault has no create-if-absent, so two racing
// creators would leave data sealed under a key that was overwritten. Seal never creates keys.
func (k *Keyring) CreateTenantKey(ctx context.Context, tenant core.TenantID) error {
	if _, err := k.aead(ctx, tenant); err == nil {
		return ErrKeyExists
	} else if !errors.Is(err, ErrNoKey) {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create tenant key: %w", err)
	}
	if err := k.secrets.Set(ctx, secrets.TenantDataKeyName(tenant), base64.StdEncoding.EncodeToString(key)); err != nil {
		return fmt.Errorf("create tenant key: %w", err)
	}
	k.cache.Delete(tenant)
	return nil
}

// EnsureTenantKey creates the key if the tenant has none (make run, tests, idempotent onboarding).
func (k *Keyring) EnsureTenantKey(ctx context.Context, tenant core.TenantID) error {
	if err := k.CreateTenantKey(ctx, tenant); err != nil && !errors.Is(err, ErrKeyExists) {
		return err
	}
	return nil
}

// DestroyTenantKey deletes (and, where the vault allows, purges) the tenant's key and forgets it here.
// Everything sealed under it becomes unreadable.
func (k *Keyring) DestroyTenantKey(ctx context.Context, tenant core.TenantID) error {
	k.cache.Delete(tenant)
	if err := k.secrets.Delete(ctx, secrets.TenantDataKeyName(tenant)); err != nil {
		return fmt.Errorf("destroy tenant key: %w", err)
	}
	k.cache.Delete(tenant)
	return nil
}

func (k *Keyring) aead(ctx context.Context, tenant core.TenantID) (cipher.AEAD, error) {
	if a, ok := k.cache.Get(tenant); ok {
		return a, nil
	}
	if canon, err := core.ParseTenantID(string(tenant)); err != nil || canon != tenant {
		return nil, errors.New("tenant key: tenant id is not canonical (use core.ParseTenantID)")
	}
	v, err := k.secrets.Get(ctx, secrets.TenantDataKeyName(tenant))
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("load tenant key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, errors.New("load tenant key: stored key is not 32 bytes of base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("load tenant key: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("load tenant key: %w", err)
	}
	k.cache.Set(tenant, a)
	return a, nil
}

// associatedData binds a sealed value to where it is stored; each part is length-prefixed so no two
// different (table, tenant, row) triples give the same bytes.
func associatedData(tenant core.TenantID, table, rowKey string) []byte {
	ad := make([]byte, 0, 16+len(table)+len(tenant)+len(rowKey))
	ad = append(ad, "connecthub-seal-v1"...)
	for _, s := range []string{table, string(tenant), rowKey} {
		ad = binary.AppendUvarint(ad, uint64(len(s)))
		ad = append(ad, s...)
	}
	return ad
}

// Seal encrypts plaintext for (tenant, table, rowKey): version || nonce || ciphertext+tag (29 bytes
// more than the plaintext).
func (k *Keyring) Seal(ctx context.Context, tenant core.TenantID, table, rowKey string, plaintext []byte) ([]byte, error) {
	a, err := k.aead(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return a.Seal(out, out[1:], plaintext, associatedData(tenant, table, rowKey)), nil
}

// Open decrypts what Seal made for the same (tenant, table, rowKey).
func (k *Keyring) Open(ctx context.Context, tenant core.TenantID, table, rowKey string, sealed []byte) ([]byte, error) {
	a, err := k.aead(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if len(sealed) < 1+a.NonceSize()+a.Overhead() || sealed[0] != version {
		return nil, fmt.Errorf("open: %w", ErrOpen)
	}
	n := 1 + a.NonceSize()
	pt, err := a.Open(nil, sealed[1:n], sealed[n:], associatedData(tenant, table, rowKey))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrOpen)
	}
	return pt, nil
}
