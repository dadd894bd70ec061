package tables

import (
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

func TestODataFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tmpl string
		args []any
		want string
	}{
		{"plain", "PartitionKey eq ?", []any{"abc"}, "PartitionKey eq 'abc'"},
		{"quote doubled", "PartitionKey eq ?", []any{"x' or PartitionKey ne 'x"}, "PartitionKey eq 'x'' or PartitionKey ne ''x'"},
		{"only quotes", "RowKey eq ?", []any{"''"}, "RowKey eq ''''''"},
		{"tenant", "PartitionKey eq ?", []any{core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")}, "PartitionKey eq '6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f'"},
		{"int64 and bool", "A eq ? and B eq ?", []any{int64(-7), true}, "A eq -7L and B eq true"},
		{"time", "T lt ?", []any{time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("x", 3600))}, "T lt datetime'2026-11-22T09:00:00.1234567Z'"},
		{"several", "PartitionKey eq ? and RowKey ge ? and RowKey lt ?", []any{"p", "a|", "a}"}, "PartitionKey eq 'p' and RowKey ge 'a|' and RowKey lt 'a}'"},
	}
	for _, tc := range tests {
		if got := Filter(tc.tmpl, tc.args...); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestODataFilterMisuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"too few args", func() { Filter("A eq ? and B eq ?", "x") }},
		{"too many args", func() { Filter("A eq ?", "x", "y") }},
		{"unsupported type", func() { Filter("A eq ?", 1.5) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.call()
		}()
	}
}

func TestPrefixUpperBound(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a|", "a}"},
		{"contacts|", "contacts}"},
		{"a\xff", "b"},
	}
	for _, tc := range tests {
		if got := PrefixUpperBound(tc.in); got != tc.want {
			t.Errorf("PrefixUpperBound(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestChunkBatch(t *testing.T) {
	t.Parallel()
	same := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	const mib = 1 << 20
	tests := []struct {
		name  string
		sizes []int
		want  [][2]int
	}{
		{"empty", nil, nil},
		{"one", same(1, 100), [][2]int{{0, 1}}},
		{"100", same(100, 100), [][2]int{{0, 100}}},
		{"101", same(101, 100), [][2]int{{0, 100}, {100, 101}}},
		{"250", same(250, 100), [][2]int{{0, 100}, {100, 200}, {200, 250}}},
		{"by bytes: 1 MiB entities", same(9, mib-2000), [][2]int{{0, 4}, {4, 8}, {8, 9}}},
		{"small ones fill the rest", append(same(4, mib-2000), same(3, 10)...), [][2]int{{0, 7}}},
		{"until the bytes run out", append(same(4, mib-2000), same(4, 1000)...), [][2]int{{0, 5}, {5, 8}}},
	}
	for _, tc := range tests {
		got := chunkBatch(tc.sizes)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}
