package ttlcache

import (
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[string, int](10*time.Second, 10, clk.now)
	c.Set("a", 1)
	c.SetTTL("b", 2, time.Second)
	c.SetTTL("c", 3, time.Hour) // capped at the cache TTL

	clk.t = clk.t.Add(2 * time.Second)
	tests := []struct {
		name   string
		key    string
		want   int
		wantOK bool
	}{
		{"live entry", "a", 1, true},
		{"short ttl expired", "b", 0, false},
		{"long ttl capped but live", "c", 3, true},
		{"absent", "z", 0, false},
	}
	for _, tc := range tests {
		got, ok := c.Get(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: Get(%q) = %d, %v; want %d, %v", tc.name, tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	clk.t = clk.t.Add(9 * time.Second)
	if _, ok := c.Get("c"); ok {
		t.Error("entry with ttl above the cap outlived the cache TTL")
	}
}

func TestBoundAndDelete(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[int, int](time.Minute, 3, clk.now)
	for i := range 10 {
		c.Set(i, i)
		if c.Len() > 3 {
			t.Fatalf("after %d sets Len = %d, want <= 3", i+1, c.Len())
		}
	}
	if _, ok := c.Get(9); !ok {
		t.Error("most recent entry missing")
	}
	c.Delete(9)
	if _, ok := c.Get(9); ok {
		t.Error("deleted entry still present")
	}
}
