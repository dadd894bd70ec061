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
)

// fileMagic starts every secrets file and is bound into the GCM tag, so a file of another format or
// version fails to open rather than being misread.
var fileMagic = []byte("CHSECRETS1")

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
	_ Store  = (*File)(nil)
	_ Lister = (*File)(nil)
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
	v, ok := vals[name]
	if !ok {
		return "", fmt.Errorf("get secret %s: %w", name, ErrNotFound)
	}
	return v, nil
}

// Set implements Store.
func (f *File) Set(_ context.Context, name, value string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return f.modify(func(vals map[string]string) { vals[name] = value })
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return f.modify(func(vals map[string]string) { delete(vals, name) })
}

// List implements Lister.
func (f *File) List(_ context.Context, prefix string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vals, err := f.load()
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range vals {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *File) modify(change func(map[string]string)) error {
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
	change(vals)
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

func (f *File) load() (map[string]string, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read local secrets: %w", err)
	}
	ns := f.aead.NonceSize()
	if len(raw) < len(fileMagic)+ns || !bytes.Equal(raw[:len(fileMagic)], fileMagic) {
		return nil, errors.New("read local secrets: not a secrets file")
	}
	nonce, ct := raw[len(fileMagic):len(fileMagic)+ns], raw[len(fileMagic)+ns:]
	pt, err := f.aead.Open(nil, nonce, ct, fileMagic)
	if err != nil {
		return nil, errors.New("read local secrets: wrong master key or damaged file")
	}
	vals := map[string]string{}
	if err := json.Unmarshal(pt, &vals); err != nil {
		return nil, fmt.Errorf("read local secrets: %w", err)
	}
	return vals, nil
}

func (f *File) save(vals map[string]string) error {
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
