package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// On a fresh machine `make run` creates both certificates the app needs, stores them where it reads them,
// and logs the app certificate's thumbprint for the app registration; on the next start nothing changes.
// In Azure nothing is generated: a missing certificate there is an operator's mistake to surface.
func TestCertificatesLocalFirstRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name        string
		env         config.Environment
		preset      bool // the app certificate exists already
		wantAppCert bool
		wantLog     bool
	}{
		{"local, fresh machine", config.Local, false, true, true},
		{"local, certificate present", config.Local, true, true, false},
		{"azure never generates", config.Azure, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := secrets.NewMemory()
			cfg := config.Config{Environment: tc.env, NotificationCerts: []string{"notification-encryption-cert"},
				Presence: config.Presence{AppClientCertName: "app-client-cert"}}
			if tc.env == config.Azure {
				// Azure refuses to start without the notification certificate; give it one.
				if _, _, err := ensureLocalCertificate(ctx, mem, "notification-encryption-cert", "n"); err != nil {
					t.Fatal(err)
				}
			}
			var preset string
			if tc.preset {
				if _, _, err := ensureLocalCertificate(ctx, mem, "app-client-cert", "operator-imported"); err != nil {
					t.Fatal(err)
				}
				preset, _ = mem.Get(ctx, "app-client-cert")
			}
			var logs bytes.Buffer
			w := &Wired{Secrets: mem, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			if err := w.certificates(ctx, cfg); err != nil {
				t.Fatalf("certificates: %v", err)
			}
			if w.Certs == nil {
				t.Fatal("no notification key ring")
			}
			v, err := mem.Get(ctx, "app-client-cert")
			if !tc.wantAppCert {
				if err == nil {
					t.Fatal("app client certificate generated in Azure mode")
				}
				return
			}
			if err != nil {
				t.Fatalf("app client certificate: %v", err)
			}
			cert, _, err := graphcrypto.ParseCertificate([]byte(v), "")
			if err != nil {
				t.Fatalf("stored app certificate does not parse as the app reads it: %v", err)
			}
			if tc.preset && v != preset {
				t.Error("an existing app certificate was replaced")
			}
			gotLog := strings.Contains(logs.String(), `"msg":"generated a local app client certificate`)
			if gotLog != tc.wantLog {
				t.Errorf("logged generation = %v, want %v; logs: %s", gotLog, tc.wantLog, logs.String())
			}
			if tc.wantLog && !strings.Contains(logs.String(), `"thumbprint":"`+graphcrypto.Thumbprint(cert)+`"`) {
				t.Errorf("log lacks the thumbprint %s: %s", graphcrypto.Thumbprint(cert), logs.String())
			}
			if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "BEGIN") {
				t.Error("log holds PEM text")
			}
		})
	}
}

// An operator's certificate stored between the handler's look and its generation wins: the local file
// creates only where the name is free, and the handler takes the stored certificate.
func TestEnsureLocalCertificateKeepsOneStoredMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file, err := secrets.NewFile(filepath.Join(t.TempDir(), "secrets.enc"), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []secrets.Store{secrets.NewMemory(), file} {
		operator, _, err := ensureLocalCertificate(ctx, s, "app-client-cert", "operator-imported")
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := s.Get(ctx, "app-client-cert")
		got, created, err := ensureLocalCertificate(ctx, s, "app-client-cert", "connecthub-local-app")
		if err != nil {
			t.Fatal(err)
		}
		if after, _ := s.Get(ctx, "app-client-cert"); created || after != stored {
			t.Errorf("%T: created = %v, stored certificate replaced: %v", s, created, after != stored)
		}
		if graphcrypto.Thumbprint(got) != graphcrypto.Thumbprint(operator) {
			t.Errorf("%T: returned %s, want the stored %s", s, got.Subject, operator.Subject)
		}
	}
}
