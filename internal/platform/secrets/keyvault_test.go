package secrets

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/secrets/kvtest"
)

func newTestVault(t *testing.T, fv *kvtest.Vault, cred *kvtest.Credential) *KeyVault {
	t.Helper()
	kv, err := NewKeyVault(fv.URL(), cred, &KeyVaultOptions{
		Client:       fv.ClientOptions(),
		PollInterval: time.Millisecond,
		PollTimeout:  5 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestKeyVaultChallengeAndCRUD(t *testing.T) {
	t.Parallel()
	fv := kvtest.New(t)
	cred := &kvtest.Credential{}
	kv := newTestVault(t, fv, cred)
	ctx := context.Background()

	if _, err := kv.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
	}
	if got := fv.Requests(); len(got) < 2 || !strings.HasPrefix(got[0], "401 ") {
		t.Fatalf("first request = %v, want a 401 challenge before the authorised call", got)
	}
	first := cred.Requests()[0]
	if first.TenantID != kvtest.Tenant || len(first.Scopes) != 1 || first.Scopes[0] != "https://vault.azure.net/.default" {
		t.Errorf("token request = tenant %q scopes %v; want the challenge's tenant and vault scope", first.TenantID, first.Scopes)
	}

	if err := kv.Set(ctx, "alpha", "one"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := kv.Get(ctx, "alpha")
	if err != nil || got != "one" {
		t.Fatalf("Get after Set = %q, %v; want one", got, err)
	}
	if n := fv.Count("GET /secrets/alpha/"); n != 0 {
		t.Errorf("Get after Set reached the vault %d times; want 0 (served from cache)", n)
	}
	// A second client has no cache: it must read the vault once, then serve from memory.
	kv2 := newTestVault(t, fv, cred)
	for range 3 {
		if v, err := kv2.Get(ctx, "alpha"); err != nil || v != "one" {
			t.Fatalf("kv2.Get = %q, %v", v, err)
		}
	}
	if n := fv.Count("GET /secrets/alpha/"); n != 1 {
		t.Errorf("three Gets made %d vault reads; want 1", n)
	}

	if err := kv.Delete(ctx, "alpha"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := kv.Get(ctx, "alpha"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	if fv.Deleted("alpha") {
		t.Error("secret left soft-deleted; want purged")
	}
	// The soft delete was polled until visible and the first purge hit 409 and was retried.
	if n := fv.Count("GET /deletedsecrets/alpha"); n < 3 {
		t.Errorf("GetDeletedSecret polled %d times; want >= 3 (two hidden polls, then visible)", n)
	}
	if n := fv.Count("DELETE /deletedsecrets/alpha"); n != 2 {
		t.Errorf("purge attempts = %d; want 2 (409 then 204)", n)
	}

	// Re-creating the name right after a purge gets 409 until the purge finishes; Set rides it out.
	if err := kv.Set(ctx, "alpha", "two"); err != nil {
		t.Fatalf("Set after purge: %v", err)
	}
	if v, err := kv.Get(ctx, "alpha"); err != nil || v != "two" {
		t.Errorf("Get = %q, %v; want two", v, err)
	}
	// Deleting a missing secret is fine.
	if err := kv.Delete(ctx, "never-there"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func TestKeyVaultSetPurgesSoftDeletedName(t *testing.T) {
	t.Parallel()
	fv := kvtest.New(t)
	fv.PutDeleted("gamma", "old") // deleted earlier, never purged
	kv := newTestVault(t, fv, &kvtest.Credential{})
	if err := kv.Set(context.Background(), "gamma", "new"); err != nil {
		t.Fatalf("Set over a soft-deleted name: %v", err)
	}
	got, _ := fv.Live("gamma")
	if got != "new" {
		t.Errorf("vault holds %q, want new", got)
	}
	if n := fv.Count("DELETE /deletedsecrets/gamma"); n != 1 {
		t.Errorf("purges = %d, want 1", n)
	}
}

func TestKeyVaultPurgeForbidden(t *testing.T) {
	t.Parallel()
	fv := kvtest.New(t)
	fv.SetPurgeForbidden(true)
	fv.Put("key", "v")
	kv := newTestVault(t, fv, &kvtest.Credential{})
	ctx := context.Background()
	if err := kv.Delete(ctx, "key"); err != nil {
		t.Fatalf("Delete with purge protection = %v, want nil (soft delete is all the vault allows)", err)
	}
	if _, err := kv.Get(ctx, "key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	// Re-using the name is impossible while it is soft-deleted and purge is refused: a clear error.
	err := kv.Set(ctx, "key", "again")
	if err == nil || !strings.Contains(err.Error(), "cannot be purged") {
		t.Errorf("Set over unpurgeable name err = %v, want 'cannot be purged'", err)
	}
}

func TestKeyVaultRejectsBadNames(t *testing.T) {
	t.Parallel()
	fv := kvtest.New(t)
	kv := newTestVault(t, fv, &kvtest.Credential{})
	for _, name := range []string{"", "has_underscore", "has/slash", strings.Repeat("a", 128)} {
		if _, err := kv.Get(context.Background(), name); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want a name error", name, err)
		}
	}
	if n := len(fv.Requests()); n != 0 {
		t.Errorf("invalid names reached the vault %d times", n)
	}
}
