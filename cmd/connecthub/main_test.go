package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/secrets/kvtest"
)

// fixture is a local.settings.json naming a secret file (relative, as the sample does), the files an
// operator would import, and a way to read what was stored.
type fixture struct {
	dir, settings string
	file          *secrets.File // the store, opened as the app opens it
	cert          *x509.Certificate
	files         map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	settings, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Values": map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":      "custom",
		"CONNECTHUB_LOCAL_SECRETS_FILE": ".localsecrets/secrets.enc",
		"CONNECTHUB_LOCAL_SECRETS_KEY":  base64.StdEncoding.EncodeToString(key),
	}})
	f := &fixture{dir: dir, settings: filepath.Join(dir, "local.settings.json"), files: map[string]string{}}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f.files[name] = p
	}
	write("local.settings.json", settings)

	cert, rsaKey, err := graphcrypto.NewSelfSigned(graphcrypto.SelfSigned{Subject: pkix.Name{CommonName: "contoso-connecthub", Organization: []string{"Contoso"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.cert = cert
	// What an admin exports from Windows or openssl: a password-protected PFX (AES-256, PBKDF2).
	pfx, err := pkcs12.Modern.Encode(rsaKey, cert, nil, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	write("app.pfx", pfx)
	write("password.txt", []byte("correct horse\n"))
	write("wrong-password.txt", []byte("battery staple\n"))
	pemText, _ := graphcrypto.EncodePEM(rsaKey, cert)
	write("app.pem", []byte(pemText))
	write("cert-only.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ec"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	ecDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	ecCert, _ := x509.ParseCertificate(ecDER)
	ecPFX, err := pkcs12.Modern.Encode(ecKey, ecCert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	write("ec.pfx", ecPFX)
	write("token.txt", []byte("refresh-token-value-123\n"))
	return f
}

// openFile opens the secret file the settings name, as the handler would.
func (f *fixture) store(t *testing.T) *secrets.File {
	t.Helper()
	raw, _ := os.ReadFile(f.settings)
	var s struct{ Values map[string]string }
	_ = json.Unmarshal(raw, &s)
	fs, err := secrets.NewFile(filepath.Join(f.dir, s.Values["CONNECTHUB_LOCAL_SECRETS_FILE"]), s.Values["CONNECTHUB_LOCAL_SECRETS_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

type step struct {
	name    string
	args    []string
	stdin   string
	wantErr string   // substring of the error; "" for success
	want    []string // regexps the output must match
	notWant []string // substrings the output (stdout and stderr) must not hold
}

// secretsLeak are strings that would mean key material or a value reached the output.
var secretsLeak = []string{"PRIVATE KEY", "refresh-token-value", "from-stdin-value", "correct horse"}

func runSteps(t *testing.T, c *cli, storeArgs []string, steps []step) {
	t.Helper()
	for _, st := range steps {
		var out, errOut bytes.Buffer
		c.stdout, c.stderr, c.stdin = &out, &errOut, strings.NewReader(st.stdin)
		args := append(append([]string(nil), st.args...), storeArgs...)
		err := c.run(context.Background(), args)
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: %v (stderr: %s)", st.name, err, errOut.String())
			continue
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: err = %v, want it to say %q", st.name, err, st.wantErr)
			continue
		}
		for _, w := range st.want {
			if !regexp.MustCompile(w).MatchString(out.String()) {
				t.Errorf("%s: output lacks %q:\n%s", st.name, w, out.String())
			}
		}
		for _, n := range append(st.notWant, secretsLeak...) {
			if strings.Contains(out.String()+errOut.String(), n) {
				t.Errorf("%s: output holds %q:\n%s%s", st.name, n, out.String(), errOut.String())
			}
		}
	}
}

func TestCommandsOnBothStores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns the command runner, the store flags and a reader of what the app would read.
		setup func(t *testing.T, f *fixture) (*cli, []string, secrets.Store)
	}{
		{"local file", func(t *testing.T, f *fixture) (*cli, []string, secrets.Store) {
			return &cli{openVault: func(string, *slog.Logger) (store, error) {
				t.Fatal("opened Key Vault without --vault-url")
				return nil, nil
			}}, []string{"--settings", f.settings}, f.store(t)
		}},
		{"key vault", func(t *testing.T, f *fixture) (*cli, []string, secrets.Store) {
			fv := kvtest.New(t)
			open := func(url string, log *slog.Logger) (store, error) {
				if url != fv.URL() {
					t.Errorf("vault url %q, want %q", url, fv.URL())
				}
				return secrets.NewKeyVault(url, &kvtest.Credential{}, &secrets.KeyVaultOptions{
					Client: fv.ClientOptions(), PollInterval: time.Millisecond, PollTimeout: 5 * time.Second, Logger: log})
			}
			app, _ := open(fv.URL(), slog.New(slog.DiscardHandler))
			return &cli{openVault: open}, []string{"--vault-url", fv.URL()}, app
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			c, storeArgs, appView := tc.setup(t, f)
			thumb := graphcrypto.Thumbprint(f.cert)
			runSteps(t, c, storeArgs, []step{
				{name: "protected pfx without password", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["app.pfx"]},
					wantErr: "is password-protected: give its password with --password-file"},
				{name: "wrong password", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["app.pfx"], "--password-file", f.files["wrong-password.txt"]},
					wantErr: "wrong password"},
				{name: "ec key refused", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["ec.pfx"]},
					wantErr: "want RSA"},
				{name: "certificate without key refused", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["cert-only.pem"]},
					wantErr: "no private key"},
				{name: "import pfx", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["app.pfx"], "--password-file", f.files["password.txt"]},
					want: []string{`imported certificate app-client-cert \(created\)`, `subject: +CN=contoso-connecthub,O=Contoso`, `thumbprint: +` + thumb, `not after: +\d{4}-\d\d-\d\dT`}},
				{name: "import pem replaces", args: []string{"secrets", "import-cert", "--name", "app-client-cert", "--pfx", f.files["app.pem"]},
					want: []string{`\(replaced\)`, thumb}},
				{name: "set from file", args: []string{"secrets", "set", "--name", "t-x-pbx", "--from-file", f.files["token.txt"]},
					want: []string{`set secret t-x-pbx \(created\)`}},
				{name: "set from stdin", args: []string{"secrets", "set", "--name", "from-stdin", "--from-file", "-"}, stdin: "from-stdin-value\n",
					want: []string{`set secret from-stdin \(created\)`}},
				{name: "set empty refused", args: []string{"secrets", "set", "--name", "empty", "--from-file", "-"}, stdin: "\n", wantErr: "is empty"},
				{name: "value on the command line refused", args: []string{"secrets", "set", "--name", "x", "--from-file", f.files["token.txt"], "the-value"},
					wantErr: `unexpected argument "the-value"`},
				{name: "list", args: []string{"secrets", "list"},
					want: []string{`3 secrets in `, `(?m)^NAME +UPDATED$`, `(?m)^app-client-cert +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, `(?m)^from-stdin +\d{4}-`, `(?m)^t-x-pbx +\d{4}-`}},
				{name: "list prefix", args: []string{"secrets", "list", "--prefix", "t-"}, want: []string{`1 secrets in `, `(?m)^t-x-pbx `}, notWant: []string{"app-client-cert"}},
				{name: "delete", args: []string{"secrets", "delete", "--name", "from-stdin"}, want: []string{`deleted secret from-stdin from `}},
				{name: "delete again", args: []string{"secrets", "delete", "--name", "from-stdin"}, want: []string{`secret from-stdin did not exist`}},
				{name: "list after delete", args: []string{"secrets", "list"}, want: []string{`2 secrets in `}, notWant: []string{"from-stdin"}},
				{name: "self-signed", args: []string{"certs", "new-self-signed", "--name", "local-app", "--subject", "CN=connecthub-dev, O=Contoso", "--days", "30"},
					want: []string{`created self-signed certificate local-app \(created\)`, `subject: +CN=connecthub-dev,O=Contoso`, `thumbprint: +[0-9A-F]{40}\n`}},
				{name: "self-signed keeps an existing one", args: []string{"certs", "new-self-signed", "--name", "app-client-cert"},
					wantErr: "give --replace to overwrite it"},
				{name: "show", args: []string{"certs", "show", "--name", "app-client-cert"},
					want: []string{`certificate app-client-cert in `, `thumbprint: +` + thumb, `-----BEGIN CERTIFICATE-----`}},
				{name: "show pem only", args: []string{"certs", "show", "--name", "app-client-cert", "--pem"}, want: []string{`\A-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n\z`}},
				{name: "show a value that is no certificate", args: []string{"certs", "show", "--name", "t-x-pbx"}, wantErr: "is not a certificate"},
				{name: "show missing", args: []string{"certs", "show", "--name", "nope"}, wantErr: "no secret nope"},
				{name: "bad name", args: []string{"secrets", "delete", "--name", "has_underscore"}, wantErr: "only letters, digits and - are allowed"},
				{name: "long name", args: []string{"secrets", "delete", "--name", strings.Repeat("a", 128)}, wantErr: "length must be 1..127"},
				{name: "missing name", args: []string{"certs", "show"}, wantErr: "--name is required"},
				{name: "bad bits", args: []string{"certs", "new-self-signed", "--name", "x", "--bits", "1024"}, wantErr: "--bits: 1024"},
				{name: "bad subject", args: []string{"certs", "new-self-signed", "--name", "x", "--subject", "O=Contoso"}, wantErr: "a CN is required"},
			})

			// What the app reads: the imported certificate with its key, the value exactly as given.
			ctx := context.Background()
			v, err := appView.Get(ctx, "app-client-cert")
			if err != nil {
				t.Fatal(err)
			}
			cert, key, err := graphcrypto.ParseCertificate([]byte(v), "")
			if err != nil || !cert.Equal(f.cert) || key == nil {
				t.Errorf("app cannot load the imported certificate: %v", err)
			}
			if v, err := appView.Get(ctx, "t-x-pbx"); err != nil || v != "refresh-token-value-123" {
				t.Errorf("t-x-pbx = %q, %v; want the file's value without its line break", v, err)
			}
			v, err = appView.Get(ctx, "local-app")
			if err != nil {
				t.Fatal(err)
			}
			cert, _, err = graphcrypto.ParseCertificate([]byte(v), "")
			if err != nil {
				t.Fatalf("app cannot load the self-signed certificate: %v", err)
			}
			if d := time.Until(cert.NotAfter); d > 30*24*time.Hour || d < 29*24*time.Hour {
				t.Errorf("self-signed valid for %v more, want 30 days", d)
			}
		})
	}
}

// The local store is found through ./local.settings.json when no flag names one, and the secret file's
// relative path is taken from the settings file's folder, where the handler runs.
func TestStoreSelection(t *testing.T) {
	f := newFixture(t)
	t.Chdir(f.dir)
	var out, errOut bytes.Buffer
	if err := realMain(context.Background(), []string{"secrets", "set", "--name", "n", "--from-file", f.files["token.txt"]}, nil, &out, &errOut); err != nil {
		t.Fatalf("with ./local.settings.json: %v", err)
	}
	if v, err := f.store(t).Get(context.Background(), "n"); err != nil || v != "refresh-token-value-123" {
		t.Errorf("stored %q, %v", v, err)
	}

	tests := []struct {
		name    string
		args    []string
		wantErr string
		usage   bool
	}{
		{"no settings here", []string{"secrets", "list", "--settings", filepath.Join(t.TempDir(), "absent.json")}, "not found", false},
		{"both stores", []string{"secrets", "list", "--settings", f.settings, "--vault-url", "https://v.vault.azure.net"}, "give one", true},
		{"http vault", []string{"secrets", "list", "--vault-url", "http://v.vault.azure.net"}, "want https://", true},
		{"unknown group", []string{"keys"}, `unknown command "keys"`, true},
		{"unknown command", []string{"secrets", "get"}, `unknown command "secrets" "get"`, true},
		{"no command", nil, "no command given", true},
		{"unknown flag", []string{"secrets", "list", "--value"}, "flag provided but not defined", true},
	}
	for _, tc := range tests {
		err := realMain(context.Background(), tc.args, nil, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
		if got := errors.As(err, new(usageError)); got != tc.usage {
			t.Errorf("%s: usage error = %v, want %v (exit status 2)", tc.name, got, tc.usage)
		}
	}
}

// Every command answers --help with its usage and flags, and success.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range commands {
		var out, errOut bytes.Buffer
		args := []string{cmd.group, cmd.name, "--help"}
		if cmd.name == "" {
			args = []string{cmd.group, "--help"}
		}
		err := realMain(context.Background(), args, nil, &out, &errOut)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s %s --help: err = %v, want flag.ErrHelp (exit 0)", cmd.group, cmd.name, err)
		}
		// The secret-store commands work on either store; the others read the local settings or name
		// their own target, but for the app-registration ones, which read only the files they are given.
		storeCommand := cmd.group == "secrets" || cmd.group == "certs"
		filesOnly := cmd.group == "app-registration"
		if help := errOut.String(); !strings.Contains(help, strings.TrimSpace("Usage: connecthub "+cmd.group+" "+cmd.name)) ||
			strings.Contains(help, "-vault-url") != storeCommand || strings.Contains(help, "-settings") == filesOnly {
			t.Errorf("%s %s --help printed:\n%s", cmd.group, cmd.name, help)
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"secrets", "--help"}, {"certs", "-h"}} {
		var out, errOut bytes.Buffer
		if err := realMain(context.Background(), args, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "Usage: connecthub") {
			t.Errorf("%v: err = %v, output %q", args, err, out.String())
		}
	}
}
