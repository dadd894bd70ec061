package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

// maxSecretBytes is Key Vault's limit on a secret value (25 KB); the local file keeps the same limit so
// that what works locally works in Azure.
const maxSecretBytes = 25 * 1024

func (c *cli) importCert(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("secrets import-cert", "secrets import-cert --name N --pfx FILE [--password-file F] [--settings F | --vault-url URL]",
		`Imports a certificate with its RSA private key from a PFX (PKCS#12) or PEM file and stores it the way
the app reads it (PEM: certificate and unencrypted PKCS#8 key). Prints the name, subject, SHA-1
thumbprint (as the Entra admin center shows it) and validity; never the key. The PFX password is read
from --password-file, never from the command line.`)
	name := nameFlag(fs, "secret name, e.g. app-client-cert or notification-encryption-cert")
	pfx := fs.String("pfx", "", "certificate file: PFX/PKCS#12 (binary or base64) or PEM with its private key")
	pwFile := fs.String("password-file", "", "file holding the PFX password (one line)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkName(*name); err != nil {
		return err
	}
	if *pfx == "" {
		return usagef("--pfx is required")
	}
	data, err := os.ReadFile(*pfx)
	if err != nil {
		return fmt.Errorf("read certificate file: %w", err)
	}
	password := ""
	if *pwFile != "" {
		pw, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("read password file: %w", err)
		}
		password = string(trimNewline(pw))
	}
	cert, key, err := graphcrypto.ParseCertificate(data, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword) && *pwFile == "":
		return fmt.Errorf("%s is password-protected: give its password with --password-file", *pfx)
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return fmt.Errorf("%s: wrong password (from %s)", *pfx, *pwFile)
	case err != nil:
		return fmt.Errorf("%s: not a certificate with an RSA private key: %w", *pfx, err)
	}
	if bits := key.N.BitLen(); bits < 2048 {
		return fmt.Errorf("%s: %d-bit RSA key; Entra ID and Graph need at least 2048 bits", *pfx, bits)
	}
	text, err := graphcrypto.EncodePEM(key, cert)
	if err != nil {
		return err
	}
	s, where, existed, err := c.openTarget(ctx, sf, *name)
	if err != nil {
		return err
	}
	if err := s.Set(ctx, *name, text); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "imported certificate %s (%s) into %s\n", *name, createdOrReplaced(existed), where)
	c.describe(cert)
	return nil
}

// describe prints what identifies a certificate; nothing in it is secret.
func (c *cli) describe(cert *x509.Certificate) {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "  subject:\t%s\n", cert.Subject)
	fmt.Fprintf(w, "  thumbprint:\t%s\n", graphcrypto.Thumbprint(cert))
	fmt.Fprintf(w, "  not before:\t%s\n", formatTime(cert.NotBefore))
	fmt.Fprintf(w, "  not after:\t%s\n", formatTime(cert.NotAfter))
	_ = w.Flush()
	if now := time.Now(); now.After(cert.NotAfter) {
		fmt.Fprintf(c.stderr, "warning: the certificate expired on %s\n", formatTime(cert.NotAfter))
	} else if now.Before(cert.NotBefore) {
		fmt.Fprintf(c.stderr, "warning: the certificate is not valid before %s\n", formatTime(cert.NotBefore))
	}
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func (c *cli) setSecret(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("secrets set", "secrets set --name N --from-file F|- [--settings F | --vault-url URL]",
		`Sets a secret's value from a file, or from standard input with "-" (values never come from the
command line, where shell history and process lists would keep them). One final line break is dropped.`)
	name := nameFlag(fs, "secret name")
	from := fs.String("from-file", "", `file holding the value, or "-" for standard input`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkName(*name); err != nil {
		return err
	}
	var (
		r   io.Reader
		src = *from
	)
	switch src {
	case "":
		return usagef("--from-file is required (a file, or - for standard input)")
	case "-":
		r, src = c.stdin, "standard input"
	default:
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("read value: %w", err)
		}
		defer f.Close()
		r = f
	}
	value, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+3)) // +3: room for a final line break
	if err != nil {
		return fmt.Errorf("read value: %w", err)
	}
	value = trimNewline(value)
	switch {
	case len(value) == 0:
		return fmt.Errorf("%s is empty; to remove a secret use secrets delete", src)
	case len(value) > maxSecretBytes:
		return fmt.Errorf("%s is larger than Key Vault's %d-byte limit for a secret", src, maxSecretBytes)
	}
	s, where, existed, err := c.openTarget(ctx, sf, *name)
	if err != nil {
		return err
	}
	if err := s.Set(ctx, *name, string(value)); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "set secret %s (%s) in %s\n", *name, createdOrReplaced(existed), where)
	return nil
}

func (c *cli) listSecrets(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("secrets list", "secrets list [--prefix P] [--settings F | --vault-url URL]",
		`Lists the current secrets: names and when each last changed, never values.`)
	prefix := fs.String("prefix", "", "only names starting with this (e.g. t-<tenant id>- for one tenant's secrets)")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, where, err := c.open(sf)
	if err != nil {
		return err
	}
	infos, err := s.ListInfo(ctx, *prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d secrets in %s\n", len(infos), where)
	if len(infos) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tUPDATED")
	for _, i := range infos {
		fmt.Fprintf(w, "%s\t%s\n", i.Name, formatTime(i.Updated))
	}
	return w.Flush()
}

func (c *cli) deleteSecret(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("secrets delete", "secrets delete --name N [--settings F | --vault-url URL]",
		`Deletes a secret. In Key Vault it is soft-deleted, then purged; a vault with purge protection keeps
it recoverable until its retention ends. Deleting a secret that does not exist is not an error.`)
	name := nameFlag(fs, "secret name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkName(*name); err != nil {
		return err
	}
	s, where, existed, err := c.openTarget(ctx, sf, *name)
	if err != nil {
		return err
	}
	// Delete even when it does not exist: in Key Vault a soft-deleted one still holds the name until purged.
	if err := s.Delete(ctx, *name); err != nil {
		return err
	}
	if !existed {
		fmt.Fprintf(c.stdout, "secret %s did not exist in %s; nothing deleted\n", *name, where)
		return nil
	}
	fmt.Fprintf(c.stdout, "deleted secret %s from %s\n", *name, where)
	return nil
}
