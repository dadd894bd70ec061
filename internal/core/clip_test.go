package core_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/core"
)

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short stays", "abc", 10, "abc"},
		{"exactly max stays", "abcdef", 6, "abcdef"},
		{"long is cut and marked", "abcdefghij", 7, "abcd…"},
		{"never inside a rune", "ééééé", 8, "éé…"},
		{"tiny max", "abcdef", 2, "…"},
	}
	for _, tt := range tests {
		got := core.Clip(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("%s: Clip(%q, %d) = %q, want %q", tt.name, tt.in, tt.max, got, tt.want)
		}
		if len(got) > max(tt.max, len("…")) || !utf8.ValidString(got) {
			t.Errorf("%s: %q is over %d bytes or not UTF-8", tt.name, got, tt.max)
		}
	}
	if got := core.ClipErr(errors.New(strings.Repeat("x", 1<<20))); len(got) > core.MaxLogError {
		t.Errorf("ClipErr of a 1 MB error = %d bytes, want <= %d", len(got), core.MaxLogError)
	}
	if got := core.ClipErr(nil); got != "" {
		t.Errorf("ClipErr(nil) = %q", got)
	}
}
