package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
)

var ctx = context.Background()

const (
	tenant = core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
	secret = "0123456789abcdef0123456789abcdef-signing"
)

type receiver struct {
	mu       sync.Mutex
	events   []webhook.Event
	failures []int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := webhook.Verify([]byte(secret), req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) > 0 {
		code := r.failures[0]
		r.failures = r.failures[1:]
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(code)
		return
	}
	var ev webhook.Event
	_ = json.Unmarshal(body, &ev)
	if ev.ID != req.Header.Get(webhook.DeliveryHeader) {
		http.Error(w, "delivery id mismatch", http.StatusBadRequest)
		return
	}
	r.events = append(r.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func setup(t *testing.T, cred webhook.Credential, allowHTTP bool) *webhook.Connector {
	t.Helper()
	sec := secrets.NewMemory()
	keys := tenantkey.New(sec, tenantkey.Options{})
	if err := keys.CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := connector.SaveCredential(ctx, sec, keys, tenant, cred); err != nil {
		t.Fatal(err)
	}
	return webhook.New(webhook.Options{AllowHTTP: allowHTTP, HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, sec, keys)
}

func TestPushSignsAndRetries(t *testing.T) {
	t.Parallel()
	r := &receiver{failures: []int{429}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	c := setup(t, webhook.Credential{Kind: webhook.Kind, URL: srv.URL + "/presence", Secret: secret}, true)

	if err := c.Push(ctx, tenant, connector.User{ID: "u1", Email: "ada@contoso.example"}, connector.DND); err != nil {
		t.Fatal(err)
	}
	if err := c.Push(ctx, tenant, connector.User{ID: "u2", PBXUserID: "ext-7", Email: "grace@contoso.example"}, connector.Busy); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 2 {
		t.Fatalf("events = %+v, want 2 (the 429 retried once)", r.events)
	}
	if e := r.events[0]; e.UserID != "u1" || e.State != "DND" || e.Email != "ada@contoso.example" || e.TenantID != string(tenant) || e.Type != "presence" {
		t.Errorf("first event = %+v", e)
	}
	if e := r.events[1]; e.PBXUserID != "ext-7" || e.Email != "" {
		t.Errorf("mapped user event = %+v: want the PBX id and no mail", e)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(srv.Close)
	tests := []struct {
		name      string
		cred      webhook.Credential
		allowHTTP bool
		notConfig bool
	}{
		{"http refused outside local", webhook.Credential{Kind: webhook.Kind, URL: srv.URL, Secret: secret}, false, true},
		{"short secret", webhook.Credential{Kind: webhook.Kind, URL: srv.URL, Secret: "short"}, true, true},
		{"wrong kind", webhook.Credential{Kind: "ringcentral", URL: srv.URL, Secret: secret}, true, true},
		{"receiver 410 is permanent", webhook.Credential{Kind: webhook.Kind, URL: srv.URL, Secret: secret}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := setup(t, tt.cred, tt.allowHTTP).Push(ctx, tenant, connector.User{ID: "u1"}, connector.Busy)
			if err == nil || connector.Retryable(err) || errors.Is(err, connector.ErrNotConfigured) != tt.notConfig {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"presence"}`)
	good := webhook.Sign([]byte(secret), now, body)
	tests := []struct {
		name   string
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"valid", good, body, now, true},
		{"body changed", good, []byte(`{"type":"presence2"}`), now, false},
		{"other secret", webhook.Sign([]byte("another-secret-another-secret-xx"), now, body), body, now, false},
		{"too old (replay)", good, body, now.Add(10 * time.Minute), false},
		{"garbage", "t=abc,v1=zz", body, now, false},
		{"empty", "", body, now, false},
		{"signature cut", strings.TrimSuffix(good, good[len(good)-2:]), body, now, false},
	}
	for _, tt := range tests {
		err := webhook.Verify([]byte(secret), tt.header, tt.body, tt.at, 5*time.Minute)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestConnectionTest(t *testing.T) {
	t.Parallel()
	r := &receiver{}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	wrongSecret := httptest.NewServer(&receiver{})
	wrongSecretURL := wrongSecret.URL
	t.Cleanup(wrongSecret.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	t.Run("a signed test event the receiver verifies", func(t *testing.T) {
		t.Parallel()
		c := setup(t, webhook.Credential{Kind: webhook.Kind, URL: srv.URL, Secret: secret}, true)
		if err := c.Test(ctx, tenant); err != nil {
			t.Fatalf("Test = %v", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.events) != 1 || r.events[0].Type != "test" || r.events[0].TenantID != string(tenant) || r.events[0].UserID != "" || r.events[0].State != "" {
			t.Errorf("events = %+v, want one test event of the tenant without a user", r.events)
		}
	})
	tests := []struct {
		name, url, secret, code string
	}{
		// The receiver answers 401 to a signature made with another secret.
		{"receiver refuses the signature", wrongSecretURL, strings.Repeat("x", 40), "webhook_status_401"},
		{"nobody listens", downURL, secret, "webhook_unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := setup(t, webhook.Credential{Kind: webhook.Kind, URL: tt.url, Secret: tt.secret}, true).Test(ctx, tenant)
			var f *connector.TestFailure
			if !errors.As(err, &f) || f.Code != tt.code {
				t.Fatalf("Test = %v, want code %s", err, tt.code)
			}
			if strings.Contains(f.Error(), tt.secret) {
				t.Errorf("the failure %q repeats the secret", f.Error())
			}
		})
	}
}
