// Command connecthub is the operator's tool for ConnectHub's secrets, certificates, audit trails, dead
// letters and app registration. It works on the local encrypted secret file of `make run` (found through
// local.settings.json) and on Azure Key Vault (with the operator's az login) through the same interface
// the app uses, and it never prints a secret value or a private key. The dlq commands work on make run's
// devhost or on Service Bus; the app-registration commands read files only.
//
//	connecthub secrets import-cert --name N --pfx FILE [--password-file F]
//	connecthub secrets set --name N --from-file F|-
//	connecthub secrets list [--prefix P]
//	connecthub secrets delete --name N
//	connecthub certs new-self-signed --name N [--subject CN=...] [--days 365] [--bits 2048] [--replace]
//	connecthub certs show --name N [--pem]
//	connecthub audit verify --tenant T [--tables-url URL]
//	connecthub dev-token --tenant T --user U [--role R]... (make run only)
//	connecthub dlq list|show|replay|purge --queue Q [--id ID | --all] [--namespace NS]
//	connecthub app-registration permissions [--capabilities C]
//	connecthub app-registration patch --app APP.json --graph-sp GRAPH.json --public-base URL [--capabilities C]
//
// The store commands take --settings FILE (default local.settings.json); the secret commands alternatively
// --vault-url URL, the dlq commands --namespace <ns>.servicebus.windows.net.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := realMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "connecthub:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "connecthub:", err)
		os.Exit(1)
	}
}

// realMain runs one command. stdin is read only by `secrets set --from-file -`.
func realMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, openVault: openKeyVault, openServiceBus: openServiceBusDLQ}
	return c.run(ctx, args)
}

// usageError is a command line that cannot be run (exit status 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// store is what the commands need of a secret store; every store in internal/platform/secrets has it.
type store interface {
	secrets.Store
	secrets.InfoLister
}

type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// openVault opens the Key Vault store; tests point it at a fake vault.
	openVault func(vaultURL string, log *slog.Logger) (store, error)
	// openServiceBus opens a queue's dead letters on Service Bus.
	openServiceBus func(namespace string, duplicateWindow time.Duration) (deadLetterQueue, error)
}

const topUsage = `connecthub: the operator's tool for ConnectHub's secrets, certificates, audits, dead letters and app registration

Usage: connecthub <group> <command> [flags]
  connecthub secrets import-cert --name N --pfx FILE [--password-file F]
  connecthub secrets set --name N --from-file F|-
  connecthub secrets list [--prefix P]
  connecthub secrets delete --name N
  connecthub certs new-self-signed --name N [--subject CN=...] [--days 365] [--bits 2048] [--replace]
  connecthub certs show --name N [--pem]
  connecthub audit verify --tenant T [--tables-url URL]
  connecthub dev-token --tenant T --user U [--role R]... [--app] [--global-admin] [--minutes 60]
  connecthub dlq list|show|replay|purge --queue Q [--id ID | --all] [--namespace <ns>.servicebus.windows.net]
  connecthub app-registration permissions [--capabilities C]
  connecthub app-registration patch --app APP.json --graph-sp GRAPH.json --public-base URL [--capabilities C]

The app-registration commands read files only: what the Entra app registration needs, and the PATCH
that gives it (from az's JSON). The dlq commands work on make run's devhost (--settings FILE) or on
Service Bus (--namespace, az login).
Every other command works on the local secret file named in local.settings.json (--settings FILE, the
default when ./local.settings.json exists) or on Azure Key Vault (--vault-url https://<vault>.vault.azure.net,
signed in with az login). Values and private keys are never printed.
Run "connecthub <group> <command> --help" for a command's flags.
`

type command struct {
	group, name, summary string
	run                  func(c *cli, ctx context.Context, args []string) error
}

var commands = []command{
	{"secrets", "import-cert", "import a certificate with its private key (PFX/PKCS#12 or PEM)", (*cli).importCert},
	{"secrets", "set", "set a secret's value from a file or standard input", (*cli).setSecret},
	{"secrets", "list", "list secret names and when they last changed (never values)", (*cli).listSecrets},
	{"secrets", "delete", "delete a secret (Key Vault: soft delete, then purge where allowed)", (*cli).deleteSecret},
	{"certs", "new-self-signed", "create a self-signed RSA certificate for local use and store it", (*cli).newSelfSigned},
	{"certs", "show", "show a stored certificate and its public PEM (never the key)", (*cli).showCert},
	{"audit", "verify", "check a tenant's audit hash chain and print its head", (*cli).verifyAudit},
	{"dev-token", "", "print an admin API token from make run's development issuer (local only)", (*cli).devToken},
	{"dlq", "list", "list a queue's dead letters: id, deliveries, enqueued, tenant, reason, last failure", (*cli).dlqList},
	{"dlq", "show", "show one dead letter with its application properties (never the body)", (*cli).dlqShow},
	{"dlq", "replay", "resubmit dead letters to their queue with every application property", (*cli).dlqReplay},
	{"dlq", "purge", "delete dead letters for good", (*cli).dlqPurge},
	{"app-registration", "permissions", "list the Microsoft Graph permissions the app registration asks for, and why", (*cli).appRegPermissions},
	{"app-registration", "patch", "print the PATCH that gives an app registration what ConnectHub needs", (*cli).appRegPatch},
}

func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, topUsage)
		return usagef("no command given")
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(c.stdout, topUsage)
		return nil
	}
	group := args[0]
	var inGroup []command
	for _, cmd := range commands {
		if cmd.group == group {
			inGroup = append(inGroup, cmd)
		}
	}
	if len(inGroup) == 0 {
		fmt.Fprint(c.stderr, topUsage)
		return usagef("unknown command %q", group)
	}
	if len(inGroup) == 1 && inGroup[0].name == "" { // a command of one word, e.g. dev-token
		return inGroup[0].run(c, ctx, args[1:])
	}
	if len(args) < 2 || isHelp(args[1]) {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage: connecthub %s <command> [flags]\n\nCommands:\n", group)
		for _, cmd := range inGroup {
			fmt.Fprintf(&b, "  %-16s %s\n", cmd.name, cmd.summary)
		}
		if len(args) < 2 {
			fmt.Fprint(c.stderr, b.String())
			return usagef("%s: no command given", group)
		}
		fmt.Fprint(c.stdout, b.String())
		return nil
	}
	for _, cmd := range inGroup {
		if cmd.name == args[1] {
			return cmd.run(c, ctx, args[2:])
		}
	}
	return usagef("unknown command %q %q (see connecthub %s --help)", group, args[1], group)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// storeFlags are the flags that pick the secret store, on every command.
type storeFlags struct {
	settings string
	vaultURL string
	fs       *flag.FlagSet
}

// newFlags makes a command's flag set with its usage text and the store flags.
func (c *cli) newFlags(name, synopsis, about string) (*flag.FlagSet, *storeFlags) {
	fs, sf := c.newLocalFlags(name, synopsis, about, "local settings file naming the local secret file and its key")
	fs.StringVar(&sf.vaultURL, "vault-url", "", "Azure Key Vault URL (https://<vault>.vault.azure.net); uses az login")
	return fs, sf
}

// newLocalFlags makes a flag set with --settings only (commands that use no secret store).
func (c *cli) newLocalFlags(name, synopsis, about, settingsUsage string) (*flag.FlagSet, *storeFlags) {
	fs := c.newFlagSet(name, synopsis, about)
	sf := &storeFlags{fs: fs}
	fs.StringVar(&sf.settings, "settings", "local.settings.json", settingsUsage)
	return fs, sf
}

// newFlagSet makes a command's flag set with its usage text, and no flags yet.
func (c *cli) newFlagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("connecthub "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: connecthub %s\n\n%s\n\nFlags:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; a positional argument left over is a usage error (values never come from argv).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// open opens the store the flags name, and says which it is (for the output).
func (c *cli) open(sf *storeFlags) (store, string, error) {
	settingsSet := false
	sf.fs.Visit(func(f *flag.Flag) { settingsSet = settingsSet || f.Name == "settings" })
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if sf.vaultURL != "" {
		if settingsSet {
			return nil, "", usagef("--settings and --vault-url name two stores; give one")
		}
		u, err := url.Parse(sf.vaultURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, "", usagef("--vault-url: want https://<vault>.vault.azure.net, got %q", sf.vaultURL)
		}
		s, err := c.openVault(sf.vaultURL, log)
		if err != nil {
			return nil, "", err
		}
		return s, "Key Vault " + sf.vaultURL, nil
	}
	if _, err := os.Stat(sf.settings); errors.Is(err, os.ErrNotExist) {
		if !settingsSet {
			return nil, "", usagef("no secret store: %s not found here; give --settings FILE or --vault-url URL", sf.settings)
		}
		return nil, "", fmt.Errorf("settings file %s not found", sf.settings)
	}
	settings, err := devhost.ReadLocalSettings(sf.settings)
	if err != nil {
		return nil, "", err
	}
	path, key := settings.Values[config.KeyLocalSecretsFile], settings.Values[config.KeyLocalSecretsKey]
	if path == "" || key == "" {
		return nil, "", fmt.Errorf("%s: %s and %s must be set for the local secret file", sf.settings, config.KeyLocalSecretsFile, config.KeyLocalSecretsKey)
	}
	// The handler runs in the app root, where local.settings.json lives: a relative path is relative to it.
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(sf.settings), path)
	}
	f, err := secrets.NewFile(path, key)
	if err != nil {
		return nil, "", fmt.Errorf("open local secrets %s: %w", path, err)
	}
	return f, "local file " + path, nil
}

func openKeyVault(vaultURL string, log *slog.Logger) (store, error) {
	// No managed identity id: DefaultAzureCredential, which finds the operator's az login.
	cred, err := secrets.NewCredential("")
	if err != nil {
		return nil, err
	}
	return secrets.NewKeyVault(vaultURL, cred, &secrets.KeyVaultOptions{Logger: log})
}

// nameFlag adds the required --name flag.
func nameFlag(fs *flag.FlagSet, what string) *string {
	return fs.String("name", "", what+" (1-127 of a-z A-Z 0-9 -, as Key Vault allows)")
}

func checkName(name string) error {
	if name == "" {
		return usagef("--name is required")
	}
	if err := secrets.ValidName(name); err != nil {
		return usagef("--name %q: %v", name, err)
	}
	return nil
}

// exists reports whether name holds a value, to tell the operator whether a write created or replaced it.
// openTarget opens the chosen store and says whether the secret name is taken there (the commands that
// write or delete report "created", "replaced" or "did not exist").
func (c *cli) openTarget(ctx context.Context, sf *storeFlags, name string) (s store, where string, existed bool, err error) {
	if s, where, err = c.open(sf); err != nil {
		return nil, "", false, err
	}
	_, err = s.Get(ctx, name)
	if errors.Is(err, secrets.ErrNotFound) {
		return s, where, false, nil
	}
	return s, where, err == nil, err
}

func createdOrReplaced(existed bool) string {
	if existed {
		return "replaced"
	}
	return "created"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
