// Command pack zips a Functions app folder the way Azure's one-deploy expects it: entries relative to the
// folder (host.json at the root, no parent folder), forward slashes, and the handler's run bit kept in the
// entry's Unix mode so the Linux host can execute it.
//
//	pack -dir dist/app -out dist/connecthub.zip
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", "dist/app", "folder to pack")
	out := flag.String("out", "dist/connecthub.zip", "zip file to write")
	flag.Parse()
	if err := pack(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func pack(dir, out string) error {
	if _, err := os.Stat(filepath.Join(dir, "host.json")); err != nil {
		return fmt.Errorf("no host.json at the root of %s: %w", dir, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	// A fixed timestamp keeps the zip reproducible for the same inputs.
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Method = zip.Deflate
		hdr.Modified = stamp
		hdr.SetMode(info.Mode()) // keeps 0755 on the handler
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		zw.Close()
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
