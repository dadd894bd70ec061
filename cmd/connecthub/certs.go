package main

import (
	"context"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

func (c *cli) newSelfSigned(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("certs new-self-signed", "certs new-self-signed --name N [--subject CN=...] [--days 365] [--bits 2048] [--replace] [--settings F | --vault-url URL]",
		`Creates a self-signed RSA certificate for local use (the app's client certificate or the notification
encryption certificate) and stores it with its key. Prints the subject, thumbprint and validity; upload
the public part to the app registration with "connecthub certs show --name N --pem". An existing secret
of that name is kept unless --replace is given.`)
	name := nameFlag(fs, "secret name, e.g. app-client-cert")
	subject := fs.String("subject", "CN=connecthub-local", "subject, e.g. CN=connecthub-dev,O=Contoso (attributes CN, O, OU, L, ST, C)")
	days := fs.Int("days", 365, "validity in days (1 to 3650)")
	bits := fs.Int("bits", 2048, "RSA key size: 2048, 3072 or 4096")
	replace := fs.Bool("replace", false, "replace an existing secret of that name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkName(*name); err != nil {
		return err
	}
	subj, err := parseSubject(*subject)
	if err != nil {
		return usagef("--subject: %v", err)
	}
	if *days < 1 || *days > 3650 {
		return usagef("--days: %d is outside 1..3650", *days)
	}
	if *bits != 2048 && *bits != 3072 && *bits != 4096 {
		return usagef("--bits: %d; use 2048, 3072 or 4096 (what Entra ID and Graph accept)", *bits)
	}
	s, where, existed, err := c.openTarget(ctx, sf, *name)
	if err != nil {
		return err
	}
	if existed && !*replace {
		return fmt.Errorf("secret %s exists in %s; give --replace to overwrite it", *name, where)
	}
	cert, key, err := graphcrypto.NewSelfSigned(graphcrypto.SelfSigned{Subject: subj, Bits: *bits,
		Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		return err
	}
	text, err := graphcrypto.EncodePEM(key, cert)
	if err != nil {
		return err
	}
	if err := s.Set(ctx, *name, text); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created self-signed certificate %s (%s) in %s\n", *name, createdOrReplaced(existed), where)
	c.describe(cert)
	return nil
}

func (c *cli) showCert(ctx context.Context, args []string) error {
	fs, sf := c.newFlags("certs show", "certs show --name N [--pem] [--settings F | --vault-url URL]",
		`Shows a stored certificate: subject, SHA-1 thumbprint, validity and the public certificate as PEM, to
upload to the Entra app registration (Certificates & secrets > Upload certificate). Never the key.
With --pem only the PEM is printed, for redirecting into a .cer file.`)
	name := nameFlag(fs, "secret name of the certificate")
	pemOnly := fs.Bool("pem", false, "print only the public certificate PEM")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkName(*name); err != nil {
		return err
	}
	s, where, err := c.open(sf)
	if err != nil {
		return err
	}
	v, err := s.Get(ctx, *name)
	if errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("no secret %s in %s", *name, where)
	}
	if err != nil {
		return err
	}
	// Stored certificates have no password (Key Vault's backing secret of a PKCS#12 certificate has none).
	cert, _, err := graphcrypto.ParseCertificate([]byte(v), "")
	if err != nil {
		return fmt.Errorf("secret %s is not a certificate with its private key: %w", *name, err)
	}
	public := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if *pemOnly {
		_, err := c.stdout.Write(public)
		return err
	}
	fmt.Fprintf(c.stdout, "certificate %s in %s\n", *name, where)
	c.describe(cert)
	_, err = c.stdout.Write(public)
	return err
}

// parseSubject reads a distinguished name like "CN=app,O=Contoso,C=DE". Values cannot contain commas.
func parseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return n, fmt.Errorf("%q is not ATTRIBUTE=value", part)
		}
		switch k {
		case "CN":
			if n.CommonName != "" {
				return n, errors.New("more than one CN")
			}
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, fmt.Errorf("attribute %q not supported (use CN, O, OU, L, ST, C)", k)
		}
	}
	if n.CommonName == "" {
		return n, errors.New("a CN is required")
	}
	return n, nil
}
