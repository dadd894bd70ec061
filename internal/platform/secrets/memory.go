package secrets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is an in-process Store for tests.
type Memory struct {
	mu   sync.Mutex
	vals map[string]string
	upd  map[string]time.Time
	gets int
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{vals: map[string]string{}, upd: map[string]time.Time{}} }

var (
	_ Store      = (*Memory)(nil)
	_ Lister     = (*Memory)(nil)
	_ InfoLister = (*Memory)(nil)
)

// Get implements Store.
func (m *Memory) Get(_ context.Context, name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	v, ok := m.vals[name]
	if !ok {
		return "", fmt.Errorf("get secret %s: %w", name, ErrNotFound)
	}
	return v, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, name, value string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vals[name] = value
	m.upd[name] = time.Now().UTC()
	return nil
}

// Create implements Creator.
func (m *Memory) Create(_ context.Context, name, value string) (bool, error) {
	if err := ValidName(name); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.vals[name]; ok {
		return false, nil
	}
	m.vals[name] = value
	m.upd[name] = time.Now().UTC()
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, name)
	delete(m.upd, name)
	return nil
}

// List implements Lister.
func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.vals {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ListInfo implements InfoLister.
func (m *Memory) ListInfo(ctx context.Context, prefix string) ([]Info, error) {
	names, _ := m.List(ctx, prefix)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(names))
	for _, n := range names {
		out = append(out, Info{Name: n, Updated: m.upd[n]})
	}
	return out, nil
}

// Gets reports how many Get calls reached the store (tests of caches above it).
func (m *Memory) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}
