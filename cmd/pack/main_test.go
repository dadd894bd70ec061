package main

import (
	"archive/zip"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestPackLayoutAndRunBit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "host.json"), []byte(`{"version":"2.0"}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "handler"), []byte("\x7fELF"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "Health"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "Health", "function.json"), []byte(`{}`), 0o644))
	out := filepath.Join(t.TempDir(), "app.zip")
	must(pack(dir, out))

	zr, err := zip.OpenReader(out)
	must(err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "handler" && f.Mode().Perm()&0o111 == 0 {
			t.Errorf("handler lost its run bit: %v", f.Mode())
		}
	}
	sort.Strings(names)
	want := []string{"Health/function.json", "handler", "host.json"}
	if len(names) != len(want) {
		t.Fatalf("entries = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("entries = %v, want %v", names, want)
		}
	}
	if err := pack(t.TempDir(), filepath.Join(t.TempDir(), "x.zip")); err == nil {
		t.Error("pack of a folder without host.json should fail")
	}
}
