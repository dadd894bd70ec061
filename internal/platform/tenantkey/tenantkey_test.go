package tenantkey

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

func tenant(t testing.TB, s string) core.TenantID {
	t.Helper()
	id, err := core.ParseTenantID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var (
	ctx = context.Background()
	pt  = []byte("Ada Lovelace")
)

func setup(t testing.TB) (*Keyring, *secrets.Memory, core.TenantID, core.TenantID) {
	t.Helper()
	mem := secrets.NewMemory()
	k := New(mem, Options{})
	a := tenant(t, "11111111-1111-4111-8111-111111111111")
	b := tenant(t, "22222222-2222-4222-8222-222222222222")
	for _, id := range []core.TenantID{a, b} {
		if err := k.CreateTenantKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return k, mem, a, b
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	k, _, a, _ := setup(t)
	for _, p := range [][]byte{pt, {}, bytes.Repeat([]byte("x"), 10_000)} {
		sealed, err := k.Seal(ctx, a, "users", "u1", p)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 3 && bytes.Contains(sealed, p) {
			t.Error("sealed value contains the plaintext")
		}
		if got, want := len(sealed), len(p)+29; got != want {
			t.Errorf("sealed length = %d, want %d", got, want)
		}
		got, err := k.Open(ctx, a, "users", "u1", sealed)
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("Open = %q, %v; want the plaintext", got, err)
		}
	}
	s1, _ := k.Seal(ctx, a, "users", "u1", pt)
	s2, _ := k.Seal(ctx, a, "users", "u1", pt)
	if bytes.Equal(s1, s2) {
		t.Error("two seals of the same value are equal (nonce reuse?)")
	}
}

func TestMovedOrAlteredCiphertextFails(t *testing.T) {
	t.Parallel()
	k, _, a, b := setup(t)
	sealed, err := k.Seal(ctx, a, "users", "u1", pt)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 2

	tests := []struct {
		name   string
		tenant core.TenantID
		table  string
		row    string
		sealed []byte
	}{
		{"other row", a, "users", "u2", sealed},
		{"other table", a, "syncerrors", "u1", sealed},
		{"other tenant (other key)", b, "users", "u1", sealed},
		{"ambiguous split of the same bytes", a, "user", "su1", sealed},
		{"tampered", a, "users", "u1", flipped},
		{"unknown version", a, "users", "u1", badVersion},
		{"truncated", a, "users", "u1", sealed[:20]},
	}
	for _, tc := range tests {
		_, err := k.Open(ctx, tc.tenant, tc.table, tc.row, tc.sealed)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open err = %v, want ErrOpen", tc.name, err)
		}
	}
}

func TestWrongTenantKeyFails(t *testing.T) {
	t.Parallel()
	k, _, a, _ := setup(t)
	sealed, err := k.Seal(ctx, a, "users", "u1", pt)
	if err != nil {
		t.Fatal(err)
	}
	// Another deployment (its own vault) with a key for the same tenant id cannot open it.
	other := New(secrets.NewMemory(), Options{})
	if err := other.CreateTenantKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(ctx, a, "users", "u1", sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("Open under another key err = %v, want ErrOpen", err)
	}
}

func TestDestroyedKeyMakesDataUnreadable(t *testing.T) {
	t.Parallel()
	k, mem, a, b := setup(t)
	sealedA, _ := k.Seal(ctx, a, "users", "u1", pt)
	sealedB, _ := k.Seal(ctx, b, "users", "u1", pt)
	// The instance that destroys the key must forget it at once (its cache held it after the seals).
	if err := k.DestroyTenantKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(ctx, a, "users", "u1", sealedA); !errors.Is(err, ErrNoKey) {
		t.Errorf("Open after destroy err = %v, want ErrNoKey", err)
	}
	if _, err := New(mem, Options{}).Open(ctx, a, "users", "u1", sealedA); !errors.Is(err, ErrNoKey) {
		t.Errorf("fresh instance Open after destroy err = %v, want ErrNoKey", err)
	}
	if _, err := k.Seal(ctx, a, "users", "u1", pt); !errors.Is(err, ErrNoKey) {
		t.Errorf("Seal after destroy err = %v, want ErrNoKey (Seal never creates keys)", err)
	}
	if got, err := k.Open(ctx, b, "users", "u1", sealedB); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("other tenant's data after destroy = %q, %v; want readable", got, err)
	}
	// A re-created key is a new key: the old data stays unreadable.
	if err := k.CreateTenantKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(ctx, a, "users", "u1", sealedA); !errors.Is(err, ErrOpen) {
		t.Errorf("Open under re-created key err = %v, want ErrOpen", err)
	}
}

func TestKeyLifecycleAndCache(t *testing.T) {
	t.Parallel()
	mem := secrets.NewMemory()
	k := New(mem, Options{})
	a := tenant(t, "33333333-3333-4333-8333-333333333333")
	if _, err := k.Seal(ctx, a, "users", "u1", pt); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Seal without key err = %v, want ErrNoKey", err)
	}
	if err := k.EnsureTenantKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateTenantKey(ctx, a); !errors.Is(err, ErrKeyExists) {
		t.Errorf("second CreateTenantKey err = %v, want ErrKeyExists", err)
	}
	if err := k.EnsureTenantKey(ctx, a); err != nil {
		t.Errorf("EnsureTenantKey on existing key = %v", err)
	}
	before := mem.Gets()
	for range 100 {
		s, err := k.Seal(ctx, a, "users", "u1", pt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Open(ctx, a, "users", "u1", s); err != nil {
			t.Fatal(err)
		}
	}
	if n := mem.Gets() - before; n > 1 {
		t.Errorf("200 seal/open calls read the secret store %d times; want at most 1", n)
	}
	if _, err := k.Seal(ctx, core.TenantID("33333333-3333-4333-8333-33333333333A"), "users", "u1", pt); err == nil {
		t.Error("Seal accepted a non-canonical tenant id")
	}
}

func BenchmarkSeal(b *testing.B) {
	k, _, a, _ := setup(b)
	field := []byte("ada.lovelace@example.com")
	b.SetBytes(int64(len(field)))
	for b.Loop() {
		if _, err := k.Seal(ctx, a, "users", "0b6e9f4a-1111-4222-8333-944455556666", field); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k, _, a, _ := setup(b)
	field := []byte("ada.lovelace@example.com")
	sealed, err := k.Seal(ctx, a, "users", "0b6e9f4a-1111-4222-8333-944455556666", field)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(field)))
	for b.Loop() {
		if _, err := k.Open(ctx, a, "users", "0b6e9f4a-1111-4222-8333-944455556666", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
