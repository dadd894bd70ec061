package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fileMagic starts every secrets file and is bound into the GCM tag, so a file of another format or
// version fails to open rather than being misread. Version 2 keeps each secret's update time beside its
// value; version 1 files (values only) are still read and are rewritten as version 2 on the next change.
var (
	fileMagic   = []byte("CHSECRETS2")
	fileMagicV1 = []byte("CHSECRETS1")
)

// fileEntry is one secret in the file.
type fileEntry struct {
	Value   string    `json:"v"`
	Updated time.Time `json:"u,omitzero"`
}

// File is a Store in one AES-256-GCM encrypted file, for `make run`. The master key comes from a
// setting (32 bytes, base64), kept apart from the file. Writes replace the file atomically (temp file,
// fsync, rename) with mode 0600 and hold an advisory lock, so the local host and handler processes can
// share it. Deleting is final: the value is gone from the next version of the file.
type File struct {
	path string
	aead cipher.AEAD
	mu   sync.Mutex
}

var (
	_ Store      = (*File)(nil)
	_ Lister     = (*File)(nil)
	_ InfoLister = (*File)(nil)
)

// NewFile opens (or will create) the secrets file at path, sealed with the base64 32-byte master key.
func NewFile(path, masterKeyBase64 string) (*File, error) {
	key, err := base64.StdEncoding.DecodeString(masterKeyBase64)
	if err != nil || len(key) != 32 {
		return nil, errors.New("local secrets master key: want 32 bytes, base64 encoded")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("local secrets master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("local secrets master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create local secrets folder: %w", err)
	}
	f := &File{path: path, aead: aead}
	// Fail at start, not at first use, when the key does not match an existing file.
	if _, err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// Get implements Store.
func (f *File) Get(_ context.Context, name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	vals, err := f.load()
	if err != nil {
		return "", err
	}
	e, ok := vals[name]
	if !ok {
		return "", fmt.Errorf("get secret %s: %w", name, ErrNotFound)
	}
	return e.Value, nil
}

// Set implements Store.
func (f *File) Set(_ context.Context, name, value string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return f.modify(func(vals map[string]fileEntry) bool {
		vals[name] = fileEntry{Value: value, Updated: time.Now().UTC().Truncate(time.Second)}
		return true
	})
}

// Create implements Creator: under the same lock as every change, so another process's write of the
// name in the meantime wins and is kept.
func (f *File) Create(_ context.Context, name, value string) (bool, error) {
	if err := ValidName(name); err != nil {
		return false, err
	}
	created := false
	err := f.modify(func(vals map[string]fileEntry) bool {
		if _, ok := vals[name]; ok {
			return false
		}
		vals[name] = fileEntry{Value: value, Updated: time.Now().UTC().Truncate(time.Second)}
		created = true
		return true
	})
	return created, err
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return f.modify(func(vals map[string]fileEntry) bool { delete(vals, name); return true })
}

// List implements Lister.
func (f *File) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := f.ListInfo(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out, nil
}

// ListInfo implements InfoLister. Secrets written by a version 1 file have no update time.
func (f *File) ListInfo(_ context.Context, prefix string) ([]Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vals, err := f.load()
	if err != nil {
		return nil, err
	}
	var out []Info
	for name, e := range vals {
		if strings.HasPrefix(name, prefix) {
			out = append(out, Info{Name: name, Updated: e.Updated})
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// modify runs change on the file's values under both locks and saves them when change says so.
func (f *File) modify(change func(map[string]fileEntry) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	vals, err := f.load()
	if err != nil {
		return err
	}
	if !change(vals) {
		return nil
	}
	return f.save(vals)
}

// lock takes an exclusive advisory lock beside the file, against lost updates between processes.
func (f *File) lock() (func(), error) {
	lf, err := os.OpenFile(f.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock local secrets: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		return nil, fmt.Errorf("lock local secrets: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
	}, nil
}

func (f *File) load() (map[string]fileEntry, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]fileEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read local secrets: %w", err)
	}
	ns := f.aead.NonceSize()
	if len(raw) < len(fileMagic)+ns {
		return nil, errors.New("read local secrets: not a secrets file")
	}
	magic := raw[:len(fileMagic)]
	if !bytes.Equal(magic, fileMagic) && !bytes.Equal(magic, fileMagicV1) {
		return nil, errors.New("read local secrets: not a secrets file")
	}
	nonce, ct := raw[len(magic):len(magic)+ns], raw[len(magic)+ns:]
	pt, err := f.aead.Open(nil, nonce, ct, magic)
	if err != nil {
		return nil, errors.New("read local secrets: wrong master key or damaged file")
	}
	vals := map[string]fileEntry{}
	if bytes.Equal(magic, fileMagicV1) {
		v1 := map[string]string{}
		if err := json.Unmarshal(pt, &v1); err != nil {
			return nil, fmt.Errorf("read local secrets: %w", err)
		}
		for name, v := range v1 {
			vals[name] = fileEntry{Value: v}
		}
		return vals, nil
	}
	if err := json.Unmarshal(pt, &vals); err != nil {
		return nil, fmt.Errorf("read local secrets: %w", err)
	}
	return vals, nil
}

func (f *File) save(vals map[string]fileEntry) error {
	pt, err := json.Marshal(vals)
	if err != nil {
		return fmt.Errorf("write local secrets: %w", err)
	}
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("write local secrets: %w", err)
	}
	out := append(append(bytes.Clone(fileMagic), nonce...), f.aead.Seal(nil, nonce, pt, fileMagic)...)

	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, ".secrets-*") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("write local secrets: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("write local secrets: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write local secrets: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write local secrets: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write local secrets: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable
		d.Close()
	}
	return nil
}
