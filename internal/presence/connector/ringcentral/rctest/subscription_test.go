package rctest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// token gets an access token from the fake with the JWT grant.
func token(t *testing.T, rc *rctest.Server) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rc.URL()+"/restapi/oauth/token",
		strings.NewReader("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="+rc.JWT))
	req.SetBasicAuth(rc.ClientID, rc.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.AccessToken
}

func call(t *testing.T, rc *rctest.Server, tok, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, rc.URL()+path, r)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func create(addr string) map[string]any {
	return map[string]any{
		"eventFilters": []string{"/restapi/v1.0/account/~/extension/101/presence?detailedTelephonyState=true"},
		"deliveryMode": map[string]any{"transportType": "WebHook", "address": addr, "verificationToken": "vt-secret"},
	}
}

func TestSubscriptionHandshake(t *testing.T) {
	t.Parallel()
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Validation-Token", r.Header.Get("Validation-Token"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	}
	tests := []struct {
		name     string
		endpoint http.HandlerFunc
		want     int
		wantCode string
	}{
		{"echo within limits", echo, http.StatusOK, ""},
		{"no echo", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }, http.StatusBadRequest, "SUB-525"},
		{"not 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Validation-Token", r.Header.Get("Validation-Token"))
			w.WriteHeader(http.StatusAccepted)
		}, http.StatusBadRequest, "SUB-525"},
		// The whole answer counts, headers included: a body that alone fits still fails with its headers.
		{"over 1,024 bytes", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Validation-Token", r.Header.Get("Validation-Token"))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("x", 1000)))
		}, http.StatusBadRequest, "SUB-525"},
		{"slower than the limit", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond)
			echo(w, r)
		}, http.StatusBadRequest, "SUB-525"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := rctest.New(t)
			// RingCentral's limit is 3,000 ms; a shorter one keeps the slow case fast.
			rc.HandshakeTimeout = 200 * time.Millisecond
			ep := httptest.NewServer(tt.endpoint)
			defer ep.Close()
			got, body := call(t, rc, token(t, rc), http.MethodPost, "/restapi/v1.0/subscription", create(ep.URL))
			if got != tt.want {
				t.Fatalf("status = %d, want %d (%v)", got, tt.want, body)
			}
			if tt.wantCode != "" && body["errorCode"] != tt.wantCode {
				t.Errorf("errorCode = %v, want %s", body["errorCode"], tt.wantCode)
			}
			if tt.want == http.StatusOK && (body["status"] != "Active" || body["deliveryMode"].(map[string]any)["verificationToken"] != nil) {
				t.Errorf("created = %v, want Active without the verification token", body)
			}
		})
	}
}

func TestSubscriptionEventsRenewalAndBlacklist(t *testing.T) {
	t.Parallel()
	rc := rctest.New(t)
	rc.AddExtension(rctest.Extension{ID: 101, Number: "101"})
	type got struct {
		token string
		body  map[string]any
	}
	deliveries := make(chan got, 10)
	fail := false
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("Validation-Token"); v != "" {
			w.Header().Set("Validation-Token", v)
			return
		}
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		deliveries <- got{r.Header.Get("Verification-Token"), b}
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer ep.Close()
	tok := token(t, rc)
	status, sub := call(t, rc, tok, http.MethodPost, "/restapi/v1.0/subscription", create(ep.URL))
	if status != http.StatusOK {
		t.Fatalf("create = %d %v", status, sub)
	}
	id := sub["id"].(string)

	if err := rc.Deliver(context.Background(), "101", rctest.PresenceEvent{TelephonyStatus: "CallConnected", UserStatus: "Available",
		DNDStatus: "TakeAllCalls", ActiveCalls: []rctest.Call{{ID: "c1", Direction: "Inbound", TelephonyStatus: "CallConnected"}}}); err != nil {
		t.Fatal(err)
	}
	d := <-deliveries
	body := d.body["body"].(map[string]any)
	if d.token != "vt-secret" || d.body["subscriptionId"] != id || body["sequence"] != float64(1) ||
		body["telephonyStatus"] != "CallConnected" || body["extensionId"] != "101" || len(body["activeCalls"].([]any)) != 1 {
		t.Errorf("delivery = %v (token %q)", d.body, d.token)
	}
	if n := rc.Event("999", rctest.PresenceEvent{}); len(n) != 0 {
		t.Errorf("events of an extension nobody subscribed to = %d", len(n))
	}

	status, renewed := call(t, rc, tok, http.MethodPost, "/restapi/v1.0/subscription/"+id+"/renew", nil)
	if status != http.StatusOK || renewed["status"] != "Active" {
		t.Errorf("renew = %d %v", status, renewed)
	}

	// Failing deliveries blacklist the subscription for good: renewal does not revive it.
	fail = true
	for range rc.BlacklistAfter {
		_ = rc.Deliver(context.Background(), "101", rctest.PresenceEvent{TelephonyStatus: "NoCall"})
		<-deliveries
	}
	status, renewed = call(t, rc, tok, http.MethodPost, "/restapi/v1.0/subscription/"+id+"/renew", nil)
	if status != http.StatusOK || renewed["status"] != "Blacklisted" || renewed["blacklistedData"] == nil {
		t.Errorf("renew of a blacklisted subscription = %d %v, want it still Blacklisted", status, renewed)
	}
	if n := rc.Event("101", rctest.PresenceEvent{}); len(n) != 0 {
		t.Errorf("a blacklisted subscription still delivers (%d)", len(n))
	}
	if status, _ := call(t, rc, tok, http.MethodDelete, "/restapi/v1.0/subscription/"+id, nil); status != http.StatusNoContent {
		t.Errorf("delete = %d", status)
	}
	if status, body := call(t, rc, tok, http.MethodGet, "/restapi/v1.0/subscription/"+id, nil); status != http.StatusNotFound || body["errorCode"] != "SUB-502" {
		t.Errorf("get deleted = %d %v", status, body)
	}
}
