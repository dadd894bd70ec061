package salesforce_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
)

const tenant = core.TenantID("11111111-2222-3333-4444-555555555555")

func setup(t *testing.T) (*sftest.Server, *salesforce.Client, salesforce.Credential) {
	t.Helper()
	s := sftest.New(t)
	s.AddUser(sftest.User{Username: "sync@example.com", Approved: true})
	c := salesforce.New(salesforce.Options{LoginURL: func(string) string { return s.URL() }})
	return s, c, salesforce.Credential{ConsumerKey: s.App.ConsumerKey, Username: "sync@example.com",
		Host: salesforce.LoginHost, PrivateKeyPEM: s.App.PrivateKeyPEM}
}

// A token is reused until the session ends; then a 401 gets a new one and the call succeeds once retried.
func TestTokenCachedAndRenewedOn401(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	ctx := context.Background()
	for range 2 {
		h, _, err := c.Do(ctx, tenant, cred, "limits", http.MethodGet, "/limits", nil)
		if err != nil {
			t.Fatal(err)
		}
		if u, ok := salesforce.ParseLimitInfo(h); !ok || u.Max != 15000 {
			t.Errorf("usage %v %v", u, ok)
		}
	}
	if n := s.Calls("POST /services/oauth2/token"); n != 1 {
		t.Fatalf("token requests = %d, want 1 (cached)", n)
	}
	s.ExpireSessions()
	if _, _, err := c.Do(ctx, tenant, cred, "limits", http.MethodGet, "/limits", nil); err != nil {
		t.Fatalf("after the session ended: %v", err)
	}
	if n := s.Calls("POST /services/oauth2/token"); n != 2 {
		t.Fatalf("token requests = %d, want 2 (one renewal)", n)
	}
	// A replaced credential never reuses the old one's token.
	cred2 := cred
	cred2.Username = "other@example.com"
	_, _, err := c.Do(ctx, tenant, cred2, "limits", http.MethodGet, "/limits", nil)
	var te *salesforce.TokenError
	if !errors.As(err, &te) || te.Description != "user hasn't approved this consumer" {
		t.Fatalf("other user: %v", err)
	}
}

// A 401 that persists is answered after one retry, not looped on.
func TestPersistent401RetriedOnce(t *testing.T) {
	t.Parallel()
	var tokens, calls int
	srv := newRejecting(t, &tokens, &calls)
	c := salesforce.New(salesforce.Options{LoginURL: func(string) string { return srv }})
	_, cred := keyCred(t)
	_, _, err := c.Do(context.Background(), tenant, cred, "limits", http.MethodGet, "/limits", nil)
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.ErrorCode != "INVALID_SESSION_ID" {
		t.Fatalf("err = %v", err)
	}
	if tokens != 2 || calls != 2 {
		t.Fatalf("tokens %d, calls %d; want 2 and 2", tokens, calls)
	}
}

// The connection test names what failed, one code per cause an admin fixes differently.
func TestConnectionTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(*sftest.Server, *salesforce.Credential)
		code   string
	}{
		{"works", func(*sftest.Server, *salesforce.Credential) {}, ""},
		{"user not pre-authorised", func(s *sftest.Server, c *salesforce.Credential) {
			s.AddUser(sftest.User{Username: "sync@example.com"})
		}, salesforce.CodeNotPreauthorized},
		{"certificate of another key uploaded", func(s *sftest.Server, c *salesforce.Credential) {
			other, err := sftest.NewApp()
			if err != nil {
				t.Fatal(err)
			}
			s.App.Certificate = other.Certificate
		}, salesforce.CodeBadSignature},
		{"sandbox host for a production org", func(s *sftest.Server, c *salesforce.Credential) { c.Host = salesforce.SandboxHost },
			salesforce.CodeWrongAudience},
		{"unknown consumer key", func(s *sftest.Server, c *salesforce.Credential) { c.ConsumerKey = "3MVGnotours" },
			salesforce.CodeUnknownConsumer},
		{"daily allocation used up", func(s *sftest.Server, c *salesforce.Credential) { s.SetUsage(15000) },
			salesforce.CodeLimitExceeded},
		{"org unreachable", func(s *sftest.Server, c *salesforce.Credential) {}, salesforce.CodeUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c, cred := setup(t)
			tt.change(s, &cred)
			if tt.code == salesforce.CodeUnreachable {
				c = salesforce.New(salesforce.Options{LoginURL: func(string) string { return "http://127.0.0.1:1" }})
			}
			u, err := c.Test(ctx, tenant, cred)
			if tt.code == "" {
				if err != nil || u.Max != 15000 || u.Used != 1 {
					t.Fatalf("usage %v, err %v", u, err)
				}
				return
			}
			var f *salesforce.TestFailure
			if !errors.As(err, &f) || f.Code != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
			if strings.Contains(f.Message, cred.Username) || strings.Contains(f.Message, cred.ConsumerKey) {
				t.Errorf("message names the credential: %q", f.Message)
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	t.Parallel()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	k, _ := keyCred(t)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	for name, tc := range map[string]struct {
		pem string
		ok  bool
	}{
		"PKCS#1 (openssl genrsa)": {pkcs1, true},
		"1024-bit key":            {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})), false},
		"EC key":                  {string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), false},
		"certificate":             {string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), false},
		"two blocks":              {pkcs1 + pkcs1, false},
		"not PEM":                 {"hello", false},
	} {
		if _, err := salesforce.ParsePrivateKey(tc.pem); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestParseLimitInfo(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]salesforce.Usage{
		"api-usage=18/5000": {Used: 18, Max: 5000},
		"per-app-api-usage=1/10(appName=x), api-usage=7/100": {Used: 7, Max: 100},
		"":             {},
		"api-usage=x/": {},
	} {
		got, _ := salesforce.ParseLimitInfo(http.Header{"Sforce-Limit-Info": {v}})
		if got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}

func keyCred(t *testing.T) (*rsa.PrivateKey, salesforce.Credential) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, salesforce.Credential{ConsumerKey: "3MVGx", Username: "u@example.com", Host: salesforce.LoginHost,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
}

// newRejecting serves tokens but refuses every REST call with 401, as an org does whose session policy
// rejects our sessions (e.g. IP restrictions).
func newRejecting(t *testing.T, tokens, calls *int) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/services/oauth2/token" {
			*tokens++
			_, _ = w.Write([]byte(`{"access_token":"00D!x","instance_url":"` + srv.URL + `","token_type":"Bearer"}`))
			return
		}
		*calls++
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
