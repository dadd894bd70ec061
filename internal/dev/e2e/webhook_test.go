package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

func post(t testing.TB, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newSubscriptionID is a random GUID, the form of Graph's subscription ids (the webhook drops others).
func newSubscriptionID(t testing.TB) string { return string(storetest.NewTenantID(t)) }

// subscribe stores a subscription the way the subscription manager does, for an active tenant (the
// webhook drops other tenants' items), returning its clientState.
func (s *stack) subscribe(t testing.TB, tenant core.TenantID, id string) string {
	t.Helper()
	state, hash, err := registry.NewClientState()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Tenants.Create(context.Background(), registry.Tenant{ID: tenant, State: registry.TenantActive}); err != nil && !errors.Is(err, tables.ErrExists) {
		t.Fatal(err)
	}
	if _, err := s.store.Subscriptions.Insert(context.Background(), tenant, registry.Subscription{ID: id, Kind: registry.KindPresence,
		Resource: "/communications/presences", ChangeType: "updated", ClientStateHash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return state
}

// richBody is a presence notification encrypted exactly as Graph does, with a validation token.
func (s *stack) richBody(t testing.TB, tenant core.TenantID, subID, state string, n int) string {
	t.Helper()
	var items []map[string]any
	for i := range n {
		plain := fmt.Sprintf(`{"@odata.type":"#Microsoft.Graph.presence","id":"user-%d","availability":"Busy","activity":"InACall"}`, i)
		ec, err := graphcrypto.EncryptLikeGraph(s.cert, s.certID, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, map[string]any{
			"subscriptionId": subID, "clientState": state, "changeType": "updated", "tenantId": string(tenant),
			"resource": fmt.Sprintf("communications/presences('user-%d')", i), "subscriptionExpirationDateTime": "2026-11-22T12:00:00Z",
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.presence", "@odata.id": fmt.Sprintf("communications/presences('user-%d')", i), "id": fmt.Sprintf("user-%d", i)},
			"encryptedContent": map[string]any{"data": ec.Data, "dataKey": ec.DataKey, "dataSignature": ec.DataSignature,
				"encryptionCertificateId": ec.EncryptionCertificateID, "encryptionCertificateThumbprint": ec.EncryptionCertificateThumbprint},
		})
	}
	b, _ := json.Marshal(map[string]any{"value": items, "validationTokens": []string{s.idp.Mint(t, idptest.Claims(appID, string(tenant), time.Now()))}})
	return string(b)
}

func TestWebhookThroughDevhost(t *testing.T) {
	// The notification worker is off so the test can look at exactly what the webhook queued.
	s := startStack(t, func(settings map[string]string) {
		settings["AzureWebJobs.ProcessNotification.Disabled"] = "true"
	})
	api := s.host.URL() + "/api"

	t.Run("validation handshake echoes the token byte for byte", func(t *testing.T) {
		for _, tok := range []string{"Validation: Testing client", "a+b c:d/e%f", "ünïcödé ✓", "Validation: Testing client application reachability for subscription Request-Id: 5a2c"} {
			for _, path := range []string{"/graph/notifications", "/graph/lifecycle"} {
				resp, err := http.Post(api+path+"?validationToken="+urlEncode(tok), "text/plain", nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != tok || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s %q: got %d %q, nosniff %q", path, tok, resp.StatusCode, b, resp.Header.Get("X-Content-Type-Options"))
				}
			}
		}
	})

	t.Run("health reports dependencies and region", func(t *testing.T) {
		resp, err := http.Get(api + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Status, Region, Version string
			Checks                  map[string]string
		}
		_ = json.NewDecoder(resp.Body).Decode(&h)
		if resp.StatusCode != 200 || h.Status != "ok" || h.Region != "westeurope" || h.Version != "e2e" || h.Checks["tables"] != "ok" || h.Checks["secrets"] != "ok" {
			t.Errorf("health = %d %+v", resp.StatusCode, h)
		}
	})

	t.Run("rich notification reaches the queue still encrypted, replay dropped", func(t *testing.T) {
		tenant, sub := storetest.NewTenantID(t), newSubscriptionID(t)
		state := s.subscribe(t, tenant, sub)
		q := s.host.Queue(queue.Notifications)
		before := q.Stats().Active + q.Stats().DeadLetter
		body := s.richBody(t, tenant, sub, state, 3)
		for range 2 {
			if code, _ := post(t, api+"/graph/notifications", body); code != http.StatusAccepted {
				t.Fatalf("webhook = %d, want 202", code)
			}
		}
		var got []string
		for _, m := range append(q.Snapshot(), q.DeadLetters()...) {
			if strings.Contains(string(m.Body), sub) {
				got = append(got, m.ID)
				if strings.Contains(string(m.Body), "InACall") || strings.Contains(string(m.Body), state) {
					t.Error("queued message holds decrypted content or the clientState")
				}
			}
		}
		if len(got) != 3 {
			t.Errorf("queued %d messages for 3 items posted twice, want 3 (before: %d)", len(got), before)
		}
	})

	t.Run("forged items are dropped with 202", func(t *testing.T) {
		tenant, sub := storetest.NewTenantID(t), newSubscriptionID(t)
		s.subscribe(t, tenant, sub)
		body := s.richBody(t, tenant, sub, "not-the-client-state", 1)
		if code, _ := post(t, api+"/graph/notifications", body); code != http.StatusAccepted {
			t.Fatalf("webhook = %d, want 202", code)
		}
		for _, m := range s.host.Queue(queue.Notifications).Snapshot() {
			if strings.Contains(string(m.Body), sub) {
				t.Error("forged item was queued")
			}
		}
	})

	t.Run("bad bodies", func(t *testing.T) {
		if code, _ := post(t, api+"/graph/notifications", `[1,2,3]`); code != http.StatusBadRequest {
			t.Errorf("not a collection = %d, want 400", code)
		}
		if code, _ := post(t, api+"/graph/notifications", `{"value":[`+strings.Repeat(`{"id":"x"},`, 200_000)+`{}]}`); code != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized = %d, want 413", code)
		}
		// Well under the body cap, but more items than one POST may carry (ingest.MaxItems).
		if code, body := post(t, api+"/graph/notifications", `{"value":[`+strings.Repeat(`{},`, 1000)+`{}]}`); code != http.StatusRequestEntityTooLarge {
			t.Errorf("1,001 items = %d %q, want 413", code, body)
		}
	})

	t.Run("lifecycle event is recorded on the subscription", func(t *testing.T) {
		tenant, sub := storetest.NewTenantID(t), newSubscriptionID(t)
		state := s.subscribe(t, tenant, sub)
		body := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"clientState":%q,"tenantId":%q,"lifecycleEvent":"reauthorizationRequired","resource":"communications/presences","subscriptionExpirationDateTime":"2026-11-22T12:00:00Z"}]}`, sub, state, tenant)
		if code, _ := post(t, api+"/graph/lifecycle", body); code != http.StatusAccepted {
			t.Fatalf("lifecycle = %d, want 202", code)
		}
		waitFor(t, "lifecycle event recorded", func() bool {
			got, err := s.store.Subscriptions.Get(context.Background(), tenant, sub)
			return err == nil && got.LastLifecycleEvent == "reauthorizationRequired" && !got.LastLifecycleAt.IsZero()
		})
	})
}

func urlEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
