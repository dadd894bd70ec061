// Package e2e drives the real handler binary under devhost, with Azurite for Table Storage, the way
// `make run` runs it. Only what cannot run here (Graph's identity platform, Graph itself) is an
// httptest stand-in.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/app"
	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

const appID = "11111111-2222-3333-4444-555555555555"

var (
	buildMu  sync.Mutex
	binaries = map[string]string{} // package → built binary, once per test binary
)

// binary builds the command in pkg (relative to the module root) once per test binary.
func binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := binaries[pkg]; ok {
		return path
	}
	dir, err := os.MkdirTemp("", "connecthub-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path, "../../../"+pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	binaries[pkg] = path
	return path
}

// handlerBinary is cmd/handler, as devhost runs it.
func handlerBinary(t testing.TB) string { return binary(t, "cmd/handler") }

// stack is one running handler under devhost, with direct access to its store, secrets and certificate.
type stack struct {
	host    *devhost.Host
	logs    *syncBuffer // what the handler and devhost logged
	store   *registry.Registry
	secrets secrets.Store
	cert    *x509.Certificate
	certID  string
	idp     *idptest.Platform
	// tablePrefix is put before the names of this stack's tables (CONNECTHUB_TABLE_PREFIX).
	tablePrefix string
}

// startStack runs the handler; each option may change the handler's settings before it starts.
func startStack(t testing.TB, options ...func(settings map[string]string)) *stack {
	t.Helper()
	conn := storetest.ConnectionString(t)
	// Each stack has tables of its own: stacks run one after another on one Azurite, and a timer that
	// walks every tenant (RenewSubscriptions) failed on an earlier stack's tenant, sealed with keys this
	// stack's secret file does not hold (make bench's BenchmarkPresenceWebhookToPBX after the CRM ones).
	prefix := storetest.UniquePrefix()
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyB64 := base64.StdEncoding.EncodeToString(key)
	secretsFile := filepath.Join(dir, "secrets.enc")

	// The test plays the admin: it puts the notification certificate into the local secret store first,
	// so it can encrypt like Graph with the same certificate the handler decrypts with.
	sec, err := secrets.NewFile(secretsFile, keyB64)
	if err != nil {
		t.Fatal(err)
	}
	cert, priv, err := graphcrypto.GenerateTestCertificate(2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	certName := "notification-encryption-cert"
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err := sec.Set(context.Background(), certName, pemText); err != nil {
		t.Fatal(err)
	}

	idp := idptest.New(t)
	settings := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME":            "custom",
		"CONNECTHUB_ENVIRONMENT":              "local",
		"CONNECTHUB_REGION":                   "westeurope",
		"CONNECTHUB_APP_ID":                   appID,
		"CONNECTHUB_TABLES_CONNECTION_STRING": conn,
		"CONNECTHUB_TABLE_PREFIX":             prefix,
		"CONNECTHUB_LOCAL_SECRETS_FILE":       secretsFile,
		"CONNECTHUB_LOCAL_SECRETS_KEY":        keyB64,
		"CONNECTHUB_OPENID_CONFIGURATION_URL": idp.ConfigURL(),
		"CONNECTHUB_NOTIFICATION_CERT_NAMES":  certName,
		"CONNECTHUB_VERSION":                  "e2e",
	}
	for _, o := range options {
		o(settings)
	}
	root, _ := filepath.Abs("../../..")
	// The handler's log is shown only when the test fails.
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler log:\n%s", logs.String())
		}
	})
	// The development issuer checks portal sign-ins' client assertions against the app's certificate, read
	// from the secret file as cmd/devhost reads it.
	appCert := func() (*x509.Certificate, error) {
		st, err := secrets.NewFile(secretsFile, keyB64)
		if err != nil {
			return nil, err
		}
		p, err := st.Get(context.Background(), secrets.AppClientCertName)
		if err != nil {
			return nil, err
		}
		c, _, err := graphcrypto.ParseCertificate([]byte(p), "")
		return c, err
	}
	// A second view of the same tables and secrets, as the handler sees them. Its tables are dropped
	// once the handler has stopped (registered before h.Stop: cleanups run last registered first).
	st, err := registry.NewFromConnectionString(conn, tables.Options{Sealer: tenantkey.New(sec, tenantkey.Options{}), TablePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := st.DB().DropTables(ctx, app.Catalogue().Names()); err != nil {
			t.Errorf("drop the stack's tables: %v", err)
		}
	})
	h, err := devhost.New(devhost.Options{AppRoot: root, HandlerPath: handlerBinary(t), Addr: "127.0.0.1:0",
		NoSchedules: true, MasterKey: "mk", FunctionKey: "fk", Settings: settings, Output: logs, AppCertificate: appCert,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)

	return &stack{host: h, logs: logs, store: st, secrets: sec, cert: cert, certID: certName, idp: idp, tablePrefix: prefix}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond; the bound only stops a broken test, it asserts nothing about speed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
