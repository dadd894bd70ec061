package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

const (
	fakeTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	fakeToken  = "fake-access-token"
)

// fakeCredential hands out one token and records what it was asked for.
type fakeCredential struct {
	mu   sync.Mutex
	reqs []policy.TokenRequestOptions
}

func (c *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, o)
	return azcore.AccessToken{Token: fakeToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type deletedSecret struct {
	value         string
	hiddenPolls   int // GetDeletedSecret answers 404 this many times: the soft delete is still running
	purgeConflict int // PurgeDeletedSecret answers 409 this many times
}

// fakeVault answers Key Vault's REST shapes for secrets (api-version 2025-07-01 style bodies), starting
// with the bearer challenge every real vault sends to a request without a token.
type fakeVault struct {
	t              *testing.T
	mu             sync.Mutex
	live           map[string]string
	deleted        map[string]*deletedSecret
	purging        map[string]int // Set answers 409 this many more times after a purge
	purgeForbidden bool
	hiddenPolls    int
	purgeConflicts int
	log            []string
	host           string
}

func newFakeVault(t *testing.T) (*fakeVault, *httptest.Server) {
	fv := &fakeVault{t: t, live: map[string]string{}, deleted: map[string]*deletedSecret{}, purging: map[string]int{},
		hiddenPolls: 2, purgeConflicts: 1}
	srv := httptest.NewTLSServer(fv)
	t.Cleanup(srv.Close)
	fv.host = srv.URL
	return fv, srv
}

func kvError(w http.ResponseWriter, status int, code, inner, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	body := map[string]any{"error": map[string]any{"code": code, "message": msg}}
	if inner != "" {
		body["error"].(map[string]any)["innererror"] = map[string]string{"code": inner}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (fv *fakeVault) bundle(name, value string, deleted bool) map[string]any {
	b := map[string]any{
		"id": fmt.Sprintf("%s/secrets/%s/0123456789abcdef0123456789abcdef", fv.host, name),
		"attributes": map[string]any{"enabled": true, "created": 1763800000, "updated": 1763800000,
			"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 7},
	}
	if deleted {
		b["recoveryId"] = fmt.Sprintf("%s/deletedsecrets/%s", fv.host, name)
		b["deletedDate"] = 1763800100
		b["scheduledPurgeDate"] = 1764404900
	} else {
		b["value"] = value
	}
	return b
}

func (fv *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "", "api-version missing")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		fv.log = append(fv.log, "401 "+r.Method+" "+r.URL.Path)
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="https://vault.azure.net"`, fakeTenant))
		kvError(w, http.StatusUnauthorized, "Unauthorized", "", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	fv.log = append(fv.log, r.Method+" "+r.URL.Path)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 1 && parts[0] == "secrets" && r.Method == http.MethodGet {
		fv.list(w, r)
		return
	}
	if len(parts) < 2 {
		kvError(w, http.StatusNotFound, "NotFound", "", "no such path")
		return
	}
	coll, name := parts[0], parts[1]
	ok := func(v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(v)
	}
	notFound := func() {
		kvError(w, http.StatusNotFound, "SecretNotFound", "", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
	}
	switch {
	case coll == "secrets" && r.Method == http.MethodGet:
		v, found := fv.live[name]
		if !found {
			notFound()
			return
		}
		ok(fv.bundle(name, v, false))
	case coll == "secrets" && r.Method == http.MethodPut:
		if _, d := fv.deleted[name]; d || fv.purging[name] > 0 {
			if fv.purging[name] > 0 {
				fv.purging[name]--
			}
			kvError(w, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable",
				fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name))
			return
		}
		var p struct{ Value string }
		if err := json.Unmarshal(body, &p); err != nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "", "bad body")
			return
		}
		fv.live[name] = p.Value
		ok(fv.bundle(name, p.Value, false))
	case coll == "secrets" && r.Method == http.MethodDelete:
		v, found := fv.live[name]
		if !found {
			notFound()
			return
		}
		delete(fv.live, name)
		fv.deleted[name] = &deletedSecret{value: v, hiddenPolls: fv.hiddenPolls, purgeConflict: fv.purgeConflicts}
		ok(fv.bundle(name, "", true))
	case coll == "deletedsecrets" && r.Method == http.MethodGet:
		d, found := fv.deleted[name]
		if !found {
			notFound()
			return
		}
		if d.hiddenPolls > 0 {
			d.hiddenPolls--
			notFound()
			return
		}
		ok(fv.bundle(name, "", true))
	case coll == "deletedsecrets" && r.Method == http.MethodDelete:
		d, found := fv.deleted[name]
		switch {
		case !found:
			notFound()
		case fv.purgeForbidden:
			kvError(w, http.StatusForbidden, "Forbidden", "", `Operation "purge" is not enabled for this vault.`)
		case d.hiddenPolls > 0 || d.purgeConflict > 0:
			if d.purgeConflict > 0 {
				d.purgeConflict--
			}
			kvError(w, http.StatusConflict, "Conflict", "ObjectIsBeingDeleted", "Secret is currently being deleted.")
		default:
			delete(fv.deleted, name)
			fv.purging[name] = 1
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		kvError(w, http.StatusMethodNotAllowed, "BadRequest", "", "unsupported")
	}
}

// list answers GET /secrets like Key Vault: properties without values, at most maxresults (here 2, so
// callers must follow nextLink) per page, in name order.
func (fv *fakeVault) list(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(fv.live))
	for n := range fv.live {
		names = append(names, n)
	}
	slices.Sort(names)
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	const pageSize = 2
	end := min(skip+pageSize, len(names))
	var items []map[string]any
	for _, n := range names[min(skip, len(names)):end] {
		items = append(items, map[string]any{"id": fv.host + "/secrets/" + n,
			"attributes": map[string]any{"enabled": true, "created": 1763800000, "updated": 1763800000}})
	}
	body := map[string]any{"value": items}
	if end < len(names) {
		body["nextLink"] = fmt.Sprintf("%s/secrets?api-version=%s&$skiptoken=%d&maxresults=%d", fv.host, r.URL.Query().Get("api-version"), end, pageSize)
	} else {
		body["nextLink"] = nil
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

func (fv *fakeVault) requests() []string {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	return append([]string(nil), fv.log...)
}

func (fv *fakeVault) count(req string) int {
	n := 0
	for _, r := range fv.requests() {
		if r == req {
			n++
		}
	}
	return n
}

func newTestVault(t *testing.T, fv *fakeVault, srv *httptest.Server, cred *fakeCredential) *KeyVault {
	t.Helper()
	kv, err := NewKeyVault(srv.URL, cred, &KeyVaultOptions{
		Client: &azsecrets.ClientOptions{
			ClientOptions:                        azcore.ClientOptions{Transport: srv.Client()},
			DisableChallengeResourceVerification: true,
		},
		PollInterval: time.Millisecond,
		PollTimeout:  5 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestKeyVaultChallengeAndCRUD(t *testing.T) {
	t.Parallel()
	fv, srv := newFakeVault(t)
	cred := &fakeCredential{}
	kv := newTestVault(t, fv, srv, cred)
	ctx := context.Background()

	if _, err := kv.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
	}
	if got := fv.requests(); len(got) < 2 || !strings.HasPrefix(got[0], "401 ") {
		t.Fatalf("first request = %v, want a 401 challenge before the authorised call", got)
	}
	cred.mu.Lock()
	first := cred.reqs[0]
	cred.mu.Unlock()
	if first.TenantID != fakeTenant || len(first.Scopes) != 1 || first.Scopes[0] != "https://vault.azure.net/.default" {
		t.Errorf("token request = tenant %q scopes %v; want the challenge's tenant and vault scope", first.TenantID, first.Scopes)
	}

	if err := kv.Set(ctx, "alpha", "one"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := kv.Get(ctx, "alpha")
	if err != nil || got != "one" {
		t.Fatalf("Get after Set = %q, %v; want one", got, err)
	}
	if n := fv.count("GET /secrets/alpha/"); n != 0 {
		t.Errorf("Get after Set reached the vault %d times; want 0 (served from cache)", n)
	}
	// A second client has no cache: it must read the vault once, then serve from memory.
	kv2 := newTestVault(t, fv, srv, cred)
	for range 3 {
		if v, err := kv2.Get(ctx, "alpha"); err != nil || v != "one" {
			t.Fatalf("kv2.Get = %q, %v", v, err)
		}
	}
	if n := fv.count("GET /secrets/alpha/"); n != 1 {
		t.Errorf("three Gets made %d vault reads; want 1", n)
	}

	if err := kv.Delete(ctx, "alpha"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := kv.Get(ctx, "alpha"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	fv.mu.Lock()
	_, stillDeleted := fv.deleted["alpha"]
	fv.mu.Unlock()
	if stillDeleted {
		t.Error("secret left soft-deleted; want purged")
	}
	// The soft delete was polled until visible and the first purge hit 409 and was retried.
	if n := fv.count("GET /deletedsecrets/alpha"); n < 3 {
		t.Errorf("GetDeletedSecret polled %d times; want >= 3 (two hidden polls, then visible)", n)
	}
	if n := fv.count("DELETE /deletedsecrets/alpha"); n != 2 {
		t.Errorf("purge attempts = %d; want 2 (409 then 204)", n)
	}

	// Re-creating the name right after a purge gets 409 until the purge finishes; Set rides it out.
	if err := kv.Set(ctx, "alpha", "two"); err != nil {
		t.Fatalf("Set after purge: %v", err)
	}
	if v, err := kv.Get(ctx, "alpha"); err != nil || v != "two" {
		t.Errorf("Get = %q, %v; want two", v, err)
	}
	// Deleting a missing secret is fine.
	if err := kv.Delete(ctx, "never-there"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func TestKeyVaultSetPurgesSoftDeletedName(t *testing.T) {
	t.Parallel()
	fv, srv := newFakeVault(t)
	fv.deleted["gamma"] = &deletedSecret{value: "old"} // deleted earlier, never purged
	kv := newTestVault(t, fv, srv, &fakeCredential{})
	if err := kv.Set(context.Background(), "gamma", "new"); err != nil {
		t.Fatalf("Set over a soft-deleted name: %v", err)
	}
	fv.mu.Lock()
	got := fv.live["gamma"]
	fv.mu.Unlock()
	if got != "new" {
		t.Errorf("vault holds %q, want new", got)
	}
	if n := fv.count("DELETE /deletedsecrets/gamma"); n != 1 {
		t.Errorf("purges = %d, want 1", n)
	}
}

func TestKeyVaultPurgeForbidden(t *testing.T) {
	t.Parallel()
	fv, srv := newFakeVault(t)
	fv.purgeForbidden = true
	fv.live["key"] = "v"
	kv := newTestVault(t, fv, srv, &fakeCredential{})
	ctx := context.Background()
	if err := kv.Delete(ctx, "key"); err != nil {
		t.Fatalf("Delete with purge protection = %v, want nil (soft delete is all the vault allows)", err)
	}
	if _, err := kv.Get(ctx, "key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
	}
	// Re-using the name is impossible while it is soft-deleted and purge is refused: a clear error.
	err := kv.Set(ctx, "key", "again")
	if err == nil || !strings.Contains(err.Error(), "cannot be purged") {
		t.Errorf("Set over unpurgeable name err = %v, want 'cannot be purged'", err)
	}
}

func TestKeyVaultRejectsBadNames(t *testing.T) {
	t.Parallel()
	fv, srv := newFakeVault(t)
	kv := newTestVault(t, fv, srv, &fakeCredential{})
	for _, name := range []string{"", "has_underscore", "has/slash", strings.Repeat("a", 128)} {
		if _, err := kv.Get(context.Background(), name); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want a name error", name, err)
		}
	}
	if n := len(fv.requests()); n != 0 {
		t.Errorf("invalid names reached the vault %d times", n)
	}
}
