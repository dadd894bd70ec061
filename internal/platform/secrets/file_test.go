package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestFileRoundTripAndPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "secrets.bin")
	key := newKey(t)
	f, err := NewFile(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on empty store err = %v, want ErrNotFound", err)
	}
	const value = "super-secret-token-value"
	if err := f.Set(ctx, "a", value); err != nil {
		t.Fatal(err)
	}
	if err := f.Set(ctx, "b", "other"); err != nil {
		t.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %v, want 0600", got)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(value)) || bytes.Contains(raw, []byte(`"a"`)) {
		t.Error("file holds the secret or its name in clear text")
	}

	// A new instance on the same file and key sees the values; a wrong key fails at start.
	f2, err := NewFile(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f2.Get(ctx, "a"); err != nil || got != value {
		t.Errorf("reopened Get = %q, %v; want the value", got, err)
	}
	if _, err := NewFile(path, newKey(t)); err == nil {
		t.Error("NewFile with the wrong master key succeeded")
	}

	if err := f2.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	if got, _ := f.Get(ctx, "b"); got != "other" {
		t.Errorf("unrelated secret = %q after delete, want other", got)
	}
	if err := f.Delete(ctx, "a"); err != nil {
		t.Errorf("Delete of a missing secret = %v, want nil", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != "secrets.bin" && e.Name() != "secrets.bin.lock" {
			t.Errorf("left-over file %s (temp files must be renamed or removed)", e.Name())
		}
	}
}

func TestFileTamperDetected(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secrets.bin")
	key := newKey(t)
	f, err := NewFile(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set(context.Background(), "a", "v"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(context.Background(), "a"); err == nil {
		t.Error("Get on a tampered file succeeded")
	}
}

func TestFileBadMasterKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, key string }{
		{"empty", ""},
		{"not base64", "!!!"},
		{"16 bytes", base64.StdEncoding.EncodeToString(make([]byte, 16))},
	}
	for _, tc := range tests {
		if _, err := NewFile(filepath.Join(t.TempDir(), "s"), tc.key); err == nil {
			t.Errorf("%s: NewFile accepted the key", tc.name)
		}
	}
}

// twoHandles opens one new file twice, as two processes would.
func twoHandles(t *testing.T) (*File, *File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.bin")
	key := newKey(t)
	a, err := NewFile(path, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFile(path, key)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Two handles on one file (as the local host and the handler would have) must not lose each other's writes.
func TestFileConcurrentWriters(t *testing.T) {
	t.Parallel()
	a, b := twoHandles(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := a
			if i%2 == 1 {
				h = b
			}
			if err := h.Set(context.Background(), fmt.Sprintf("k%d", i), "v"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		if _, err := a.Get(context.Background(), fmt.Sprintf("k%d", i)); err != nil {
			t.Errorf("k%d lost: %v", i, err)
		}
	}
}

// A file written before update times were kept (version 1: values only) still opens with its key, its
// secrets list without a time, and the next change rewrites it as version 2 without losing them.
func TestFileReadsVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "secrets.bin")
	key := newKey(t)
	raw, _ := base64.StdEncoding.DecodeString(key)
	block, _ := aes.NewCipher(raw)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	v1 := append(append([]byte("CHSECRETS1"), nonce...), aead.Seal(nil, nonce, []byte(`{"old":"kept"}`), []byte("CHSECRETS1"))...)
	if err := os.WriteFile(path, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(path, key)
	if err != nil {
		t.Fatalf("NewFile on a version 1 file: %v", err)
	}
	if got, err := f.Get(ctx, "old"); err != nil || got != "kept" {
		t.Fatalf("Get(old) = %q, %v; want kept", got, err)
	}
	if err := f.Set(ctx, "new", "v"); err != nil {
		t.Fatal(err)
	}
	infos, err := f.ListInfo(ctx, "")
	if err != nil || len(infos) != 2 || infos[0].Name != "new" || infos[1].Name != "old" ||
		infos[0].Updated.IsZero() || !infos[1].Updated.IsZero() {
		t.Errorf("ListInfo = %+v, %v; want new (with a time) and old (without)", infos, err)
	}
	if now, _ := os.ReadFile(path); !bytes.HasPrefix(now, []byte("CHSECRETS2")) {
		t.Errorf("file after a change starts %q, want version 2", now[:10])
	}
}

// Create stores only where the name is free, across handles on one file (the handler and the operator
// command): of two creating at once exactly one stores, and what is stored is not replaced.
func TestFileCreateKeepsWhatIsThere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := twoHandles(t)
	for round := range 10 {
		name := fmt.Sprintf("cert-%d", round)
		var wg sync.WaitGroup
		created := make([]bool, 2)
		for i, h := range []*File{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := h.Create(ctx, name, fmt.Sprintf("v%d", i))
				if err != nil {
					t.Error(err)
				}
				created[i] = ok
			}()
		}
		wg.Wait()
		if created[0] == created[1] {
			t.Fatalf("%s: created = %v, want exactly one", name, created)
		}
		winner := 0
		if created[1] {
			winner = 1
		}
		if v, _ := b.Get(ctx, name); v != fmt.Sprintf("v%d", winner) {
			t.Errorf("%s = %q, want the creator's v%d", name, v, winner)
		}
	}
	if ok, err := a.Create(ctx, "bad name!", "v"); ok || err == nil {
		t.Errorf("Create(bad name) = %v, %v; want refused", ok, err)
	}
}
