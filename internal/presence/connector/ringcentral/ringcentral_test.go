package ringcentral_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

var ctx = context.Background()

const tenant = core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")

type fixture struct {
	rc  *rctest.Server
	c   *ringcentral.Connector
	sec *secrets.Memory
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rc := rctest.New(t)
	for i, email := range []string{"ada@contoso.example", "Grace@Contoso.example", "alan@contoso.example"} {
		rc.AddExtension(rctest.Extension{ID: int64(101 + i), Number: "10" + string(rune('1'+i)), Email: email})
	}
	sec := secrets.NewMemory()
	keys := tenantkey.New(sec, tenantkey.Options{})
	if err := keys.CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if err := connector.SaveCredential(ctx, sec, keys, tenant, ringcentral.Credential{Kind: ringcentral.Kind,
		ClientID: rc.ClientID, ClientSecret: rc.ClientSecret, JWT: rc.JWT}); err != nil {
		t.Fatal(err)
	}
	c := ringcentral.New(ringcentral.Options{BaseURL: rc.URL(), HTTP: connector.HTTPOptions{RetryDelay: time.Millisecond}}, sec, keys)
	return &fixture{rc: rc, c: c, sec: sec}
}

func TestPushMapsStatesAndExtensions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name          string
		user          connector.User
		state         connector.State
		wantExt       string
		wantUser, dnd string
	}{
		{"available by mail", connector.User{ID: "u1", Email: "ada@contoso.example"}, connector.Available, "101", "Available", "TakeAllCalls"},
		{"busy, mail in another case, second page", connector.User{ID: "u3", Email: "ALAN@contoso.example"}, connector.Busy, "103", "Busy", "TakeAllCalls"},
		{"do not disturb", connector.User{ID: "u2", Email: "grace@contoso.example"}, connector.DND, "102", "Busy", "DoNotAcceptAnyCalls"},
		{"away shows busy and takes calls", connector.User{ID: "u1", Email: "ada@contoso.example"}, connector.Away, "101", "Busy", "TakeAllCalls"},
		{"offline", connector.User{ID: "u1", Email: "ada@contoso.example"}, connector.Offline, "101", "Offline", "TakeAllCalls"},
		{"explicit mapping wins over mail", connector.User{ID: "u1", PBXUserID: "102", Email: "ada@contoso.example"}, connector.Busy, "102", "Busy", "TakeAllCalls"},
	}
	for _, tt := range tests {
		if err := f.c.Push(ctx, tenant, tt.user, tt.state); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, _ := f.rc.Presence(tt.wantExt)
		if got.UserStatus != tt.wantUser || got.DNDStatus != tt.dnd {
			t.Errorf("%s: extension %s = %+v, want %s/%s", tt.name, tt.wantExt, got, tt.wantUser, tt.dnd)
		}
	}
	if n := f.rc.Calls("POST /restapi/oauth/token"); n != 1 {
		t.Errorf("token requests = %d, want 1 (cached)", n)
	}
	if n := f.rc.Calls("GET /restapi/v1.0/account/~/extension"); n != 2 {
		t.Errorf("extension list pages = %d, want 2 (one listing, two pages)", n)
	}
}

func TestUnmappedUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 3 {
		err := f.c.Push(ctx, tenant, connector.User{ID: "u9", Email: "nobody@contoso.example"}, connector.Busy)
		if !errors.Is(err, connector.ErrUnmapped) || connector.Retryable(err) {
			t.Fatalf("unmapped err = %v", err)
		}
	}
	if err := f.c.Push(ctx, tenant, connector.User{ID: "u8"}, connector.Busy); !errors.Is(err, connector.ErrUnmapped) {
		t.Errorf("user without mail err = %v", err)
	}
	// An unknown mail lists again at most once a minute.
	if n := f.rc.Calls("GET /restapi/v1.0/account/~/extension"); n != 2 {
		t.Errorf("extension list pages = %d, want 2", n)
	}
	if err := f.c.Push(ctx, tenant, connector.User{ID: "u1", PBXUserID: "999"}, connector.Busy); connector.Retryable(err) || err == nil {
		t.Errorf("unknown extension err = %v, want a permanent error", err)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	ada := connector.User{ID: "u1", Email: "ada@contoso.example"}

	t.Run("short Retry-After is waited for inline", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.rc.Fail(http.MethodPut, "/restapi/v1.0/account/~/extension/", rctest.Failure{Status: 429, RetryAfter: "0"}, rctest.Failure{Status: 503})
		if err := f.c.Push(ctx, tenant, ada, connector.Busy); err != nil {
			t.Fatal(err)
		}
		if got := len(f.rc.Pushes()); got != 1 {
			t.Errorf("pushes = %d, want 1", got)
		}
		if n := f.rc.Calls("PUT /restapi/v1.0/account/~/extension/101/presence"); n != 3 {
			t.Errorf("PUT calls = %d, want 3", n)
		}
	})
	t.Run("long Retry-After goes back to the caller", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.rc.Fail(http.MethodPut, "/restapi/v1.0/account/~/extension/", rctest.Failure{Status: 429, RetryAfter: "30"})
		start := time.Now()
		err := f.c.Push(ctx, tenant, ada, connector.Busy)
		if !connector.Retryable(err) || connector.RetryAfter(err) != 30*time.Second || connector.Code(err) != "pbx_throttled" {
			t.Errorf("err = %v (retry after %v)", err, connector.RetryAfter(err))
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("the connector waited %v for a 30 s Retry-After instead of returning", time.Since(start))
		}
	})
	t.Run("exhausted rate-limit window holds further calls", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if err := f.c.Push(ctx, tenant, ada, connector.Available); err != nil { // token and mapping first
			t.Fatal(err)
		}
		f.rc.Fail(http.MethodPut, "/restapi/v1.0/account/~/extension/", rctest.Failure{Remaining: "0", Window: "60"})
		if err := f.c.Push(ctx, tenant, ada, connector.Busy); err != nil {
			t.Fatal(err)
		}
		before := f.rc.CallsPrefix("PUT ")
		err := f.c.Push(ctx, tenant, ada, connector.DND)
		if !connector.Retryable(err) || connector.RetryAfter(err) <= 50*time.Second {
			t.Errorf("err = %v, want throttled for the window", err)
		}
		if f.rc.CallsPrefix("PUT ") != before {
			t.Error("a call was made inside an exhausted window")
		}
	})
}

func TestTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := connector.User{ID: "u1", Email: "ada@contoso.example"}
	if err := f.c.Push(ctx, tenant, ada, connector.Busy); err != nil {
		t.Fatal(err)
	}
	f.rc.RevokeTokens()
	if err := f.c.Push(ctx, tenant, ada, connector.Available); err != nil {
		t.Fatalf("push after revoked token: %v", err)
	}
	if n := f.rc.Calls("POST /restapi/oauth/token"); n != 2 {
		t.Errorf("token requests = %d, want 2 (new token after 401)", n)
	}

	other := core.TenantID("0b1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
	if err := f.c.Push(ctx, other, ada, connector.Busy); !errors.Is(err, connector.ErrNotConfigured) || connector.Retryable(err) {
		t.Errorf("tenant without credential err = %v", err)
	}
	f.rc.JWT = "changed"
	f.c.Forget(tenant)
	if err := f.c.Push(ctx, tenant, ada, connector.Busy); !errors.Is(err, connector.ErrNotConfigured) {
		t.Errorf("refused JWT err = %v, want ErrNotConfigured", err)
	}
}

func TestPushMatchesByPhone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.AddExtension(rctest.Extension{ID: 201, Number: "201", Email: "desk@contoso.example", BusinessPhone: "+14255550201"})
	f.rc.AddExtension(rctest.Extension{ID: 202, Number: "202", MobilePhone: "+4915112345678"})
	tests := []struct {
		name    string
		user    connector.User
		wantExt string
	}{
		{"business phone, written with separators", connector.User{ID: "u5", Email: "other@contoso.example", Phone: "+1 425-555-0201"}, "201"},
		{"mobile phone, international prefix 00", connector.User{ID: "u6", Phone: "0049 151 12345678"}, "202"},
	}
	for _, tt := range tests {
		if err := f.c.Push(ctx, tenant, tt.user, connector.DND); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got, ok := f.rc.Presence(tt.wantExt); !ok || got.DNDStatus != "DoNotAcceptAnyCalls" {
			t.Errorf("%s: extension %s = %+v, %v", tt.name, tt.wantExt, got, ok)
		}
	}
	if err := f.c.Push(ctx, tenant, connector.User{ID: "u7", Phone: "(425) 555-0201"}, connector.Busy); !errors.Is(err, connector.ErrUnmapped) {
		t.Errorf("national number err = %v, want unmapped", err)
	}

	dir, err := f.c.Directory(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if dir.Len() != 5 {
		t.Errorf("directory lists %d extensions, want 5", dir.Len())
	}
	if m := dir.Match(connector.User{Phone: "+14255550201"}); m != (connector.Match{ExtensionID: "201", Number: "201", By: connector.MatchPhone}) {
		t.Errorf("directory match = %+v", m)
	}
}

func TestConnectionTest(t *testing.T) {
	t.Parallel()
	t.Run("working credential", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if err := f.c.Test(ctx, tenant); err != nil {
			t.Fatalf("Test = %v", err)
		}
		if n := f.rc.Calls("GET /restapi/v1.0/account/~/extension"); n != 1 {
			t.Errorf("extension list calls = %d, want 1", n)
		}
	})
	tests := []struct {
		name  string
		spoil func(*fixture)
		code  string
		rc    string // RingCentral's error code, repeated in the message
	}{
		{"wrong client secret", func(f *fixture) { f.rc.ClientSecret = "changed" }, "ringcentral_client_refused", "OAU-123"},
		{"wrong JWT", func(f *fixture) { f.rc.JWT = "changed" }, "ringcentral_jwt_refused", "OAU-213"},
		{"extension list forbidden", func(f *fixture) {
			f.rc.Fail(http.MethodGet, "/restapi/v1.0/account/~/extension", rctest.Failure{Status: http.StatusForbidden})
		}, "ringcentral_permission_denied", ""},
		{"token endpoint down", func(f *fixture) {
			f.rc.Fail(http.MethodPost, "/restapi/oauth/token", rctest.Failure{Status: 503}, rctest.Failure{Status: 503}, rctest.Failure{Status: 503})
		}, "ringcentral_unreachable", ""},
		{"token throttled", func(f *fixture) {
			f.rc.Fail(http.MethodPost, "/restapi/oauth/token", rctest.Failure{Status: 429, RetryAfter: "60"})
		}, "ringcentral_throttled", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tt.spoil(f)
			err := f.c.Test(ctx, tenant)
			var tf *connector.TestFailure
			if !errors.As(err, &tf) || tf.Code != tt.code {
				t.Fatalf("Test = %v, want code %s", err, tt.code)
			}
			if tt.rc != "" && !strings.Contains(tf.Message, "("+tt.rc+")") {
				t.Errorf("message %q does not name RingCentral's code %s", tf.Message, tt.rc)
			}
			for _, secret := range []string{f.rc.ClientSecret, f.rc.JWT} {
				if strings.Contains(tf.Error(), secret) {
					t.Errorf("the failure %q repeats a secret", tf.Error())
				}
			}
		})
	}
	t.Run("a throttled token request stays retryable for pushes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.rc.Fail(http.MethodPost, "/restapi/oauth/token", rctest.Failure{Status: 429, RetryAfter: "60"})
		err := f.c.Push(ctx, tenant, connector.User{ID: "u1", Email: "ada@contoso.example"}, connector.Busy)
		if !connector.Retryable(err) || connector.RetryAfter(err) != time.Minute {
			t.Errorf("push err = %v, want retryable after 60 s", err)
		}
	})
}

// RingCentral may throttle without Retry-After; its penalty restarts with every request made during
// it, so the obvious inline retry would keep the tenant throttled. The connector waits it out.
func TestThrottledWithoutRetryAfterIsNotRetriedInline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := connector.User{ID: "u1", Email: "ada@contoso.example"}
	if err := f.c.Push(ctx, tenant, ada, connector.Available); err != nil { // token and mapping first
		t.Fatal(err)
	}
	f.rc.Limits[rctest.Medium] = 0 // counts nothing; the injected 429 below is the throttle
	f.rc.Fail(http.MethodPut, "/restapi/v1.0/account/~/extension/", rctest.Failure{Status: http.StatusTooManyRequests})
	before := f.rc.CallsPrefix("PUT ")
	err := f.c.Push(ctx, tenant, ada, connector.Busy)
	if !connector.Retryable(err) || connector.RetryAfter(err) < 30*time.Second {
		t.Errorf("err = %v (retry after %v), want throttled for at least 30 s", err, connector.RetryAfter(err))
	}
	if n := f.rc.CallsPrefix("PUT ") - before; n != 1 {
		t.Errorf("PUT calls = %d, want 1 (no retry inside the penalty)", n)
	}
	if err := f.c.Push(ctx, tenant, ada, connector.DND); !connector.Retryable(err) || f.rc.CallsPrefix("PUT ")-before != 1 {
		t.Errorf("a push during the penalty was sent (err %v)", err)
	}
}

// The fake's own limits: RingCentral's Medium group allows 40 calls a minute per user and app, and
// says so in X-Rate-Limit-Remaining; the connector stops at 0 instead of drawing the 429 and its
// penalty.
func TestRateLimitHeadersStopBeforeThePenalty(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rc.Limits[rctest.Medium] = 4 // two pages of extensions + two presence updates
	ada := connector.User{ID: "u1", Email: "ada@contoso.example"}
	for _, s := range []connector.State{connector.Available, connector.Busy} {
		if err := f.c.Push(ctx, tenant, ada, s); err != nil {
			t.Fatal(err)
		}
	}
	err := f.c.Push(ctx, tenant, ada, connector.DND)
	if !connector.Retryable(err) || connector.RetryAfter(err) < 50*time.Second {
		t.Errorf("third push err = %v, want held for the window", err)
	}
	if n := f.rc.Calls("PUT /restapi/v1.0/account/~/extension/101/presence"); n != 2 {
		t.Errorf("PUT calls = %d, want 2 (none drawing a 429)", n)
	}
}
