package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	bad := filepath.Join("..", "..", "internal", "dev", "bicepcheck", "testdata", "bad", "location_literal.bicep")
	good := filepath.Join("..", "..", "internal", "dev", "bicepcheck", "testdata", "good")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"finding exits 1 and prints file:line:col", []string{bad}, 1, "location_literal.bicep:3:13: eu-location:", "1 finding(s)"},
		{"clean tree exits 0", []string{good}, 0, "no findings", ""},
		{"missing path exits 2", []string{filepath.Join("testdata", "nowhere")}, 2, "", "bicepcheck: walk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.wantCode {
				t.Errorf("run() = %d, want %d\nstdout: %s\nstderr: %s", got, tt.wantCode, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", &stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", &stderr, tt.wantStderr)
			}
		})
	}
}
