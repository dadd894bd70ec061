// Package kvtest is a fake Azure Key Vault (secrets only) for tests of code that talks to a vault
// through azsecrets: the secrets store itself and the operator command. It answers with Key Vault's REST
// shapes and the quirks that matter to callers, each noted where it is reproduced.
package kvtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// Tenant is the tenant the vault's bearer challenge names.
	Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	token  = "fake-access-token"
)

// Credential hands out one token the vault accepts and records what it was asked for.
type Credential struct {
	mu   sync.Mutex
	reqs []policy.TokenRequestOptions
}

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, o)
	return azcore.AccessToken{Token: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Requests returns the token requests made so far.
func (c *Credential) Requests() []policy.TokenRequestOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

type secret struct {
	value   string
	updated time.Time
}

type deletedSecret struct {
	secret
	hiddenPolls   int // GetDeletedSecret answers 404 this many times: the soft delete is still running
	purgeConflict int // PurgeDeletedSecret answers 409 this many times
}

// Vault answers Key Vault's REST shapes for secrets (api-version 2025-07-01 style bodies), starting with
// the bearer challenge every real vault sends to a request without a token.
type Vault struct {
	srv            *httptest.Server
	mu             sync.Mutex
	live           map[string]secret
	deleted        map[string]*deletedSecret
	purging        map[string]int // Set answers 409 this many more times after a purge
	purgeForbidden bool
	hiddenPolls    int
	purgeConflicts int
	log            []string
}

// New starts a vault that behaves like a soft-delete enabled vault without purge protection: a deleted
// secret becomes visible as deleted only after two polls, its first purge is refused with 409 while the
// deletion finishes, and the name stays taken briefly after a purge.
func New(t *testing.T) *Vault {
	fv := &Vault{live: map[string]secret{}, deleted: map[string]*deletedSecret{}, purging: map[string]int{},
		hiddenPolls: 2, purgeConflicts: 1}
	fv.srv = httptest.NewTLSServer(fv)
	t.Cleanup(fv.srv.Close)
	return fv
}

// URL is the vault URL (https://127.0.0.1:port).
func (fv *Vault) URL() string { return fv.srv.URL }

// ClientOptions make azsecrets trust the test server's certificate and accept its host in the challenge.
func (fv *Vault) ClientOptions() *azsecrets.ClientOptions {
	return &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: fv.srv.Client()},
		DisableChallengeResourceVerification: true,
	}
}

// SetPurgeForbidden makes purges fail with 403, as on a vault with purge protection.
func (fv *Vault) SetPurgeForbidden(v bool) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	fv.purgeForbidden = v
}

// Put stores a live secret directly, as if set earlier.
func (fv *Vault) Put(name, value string) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	fv.live[name] = secret{value: value, updated: time.Now()}
}

// PutDeleted stores a soft-deleted, never purged secret, visible as deleted at once.
func (fv *Vault) PutDeleted(name, value string) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	fv.deleted[name] = &deletedSecret{secret: secret{value: value, updated: time.Now()}}
}

// Live returns the current value of a live secret.
func (fv *Vault) Live(name string) (string, bool) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	s, ok := fv.live[name]
	return s.value, ok
}

// Deleted reports whether name is held by a soft-deleted secret.
func (fv *Vault) Deleted(name string) bool {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	_, ok := fv.deleted[name]
	return ok
}

// Requests returns "METHOD /path" for each request, "401 METHOD /path" for challenged ones.
func (fv *Vault) Requests() []string {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	return slices.Clone(fv.log)
}

// Count returns how many requests equal req.
func (fv *Vault) Count(req string) int {
	n := 0
	for _, r := range fv.Requests() {
		if r == req {
			n++
		}
	}
	return n
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

// attributes are a secret's SecretAttributes; times are Unix seconds, as Key Vault sends them.
func attributes(s secret) map[string]any {
	return map[string]any{"enabled": true, "created": s.updated.Unix(), "updated": s.updated.Unix(),
		"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 7}
}

func (fv *Vault) bundle(name string, s secret, deleted bool) map[string]any {
	b := map[string]any{
		"id":         fmt.Sprintf("%s/secrets/%s/0123456789abcdef0123456789abcdef", fv.srv.URL, name),
		"attributes": attributes(s),
	}
	if deleted {
		b["recoveryId"] = fmt.Sprintf("%s/deletedsecrets/%s", fv.srv.URL, name)
		b["deletedDate"] = time.Now().Unix()
		b["scheduledPurgeDate"] = time.Now().AddDate(0, 0, 7).Unix()
	} else {
		b["value"] = s.value
	}
	return b
}

// ServeHTTP implements http.Handler.
func (fv *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "", "api-version missing")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		fv.log = append(fv.log, "401 "+r.Method+" "+r.URL.Path)
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="https://vault.azure.net"`, Tenant))
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
		s, found := fv.live[name]
		if !found {
			notFound()
			return
		}
		ok(fv.bundle(name, s, false))
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
		s := secret{value: p.Value, updated: time.Now()}
		fv.live[name] = s
		ok(fv.bundle(name, s, false))
	case coll == "secrets" && r.Method == http.MethodDelete:
		s, found := fv.live[name]
		if !found {
			notFound()
			return
		}
		delete(fv.live, name)
		fv.deleted[name] = &deletedSecret{secret: s, hiddenPolls: fv.hiddenPolls, purgeConflict: fv.purgeConflicts}
		ok(fv.bundle(name, s, true))
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
		ok(fv.bundle(name, d.secret, true))
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
func (fv *Vault) list(w http.ResponseWriter, r *http.Request) {
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
		a := attributes(fv.live[n])
		delete(a, "recoveryLevel")
		delete(a, "recoverableDays")
		items = append(items, map[string]any{"id": fv.srv.URL + "/secrets/" + n, "attributes": a})
	}
	body := map[string]any{"value": items}
	if end < len(names) {
		body["nextLink"] = fmt.Sprintf("%s/secrets?api-version=%s&$skiptoken=%d&maxresults=%d", fv.srv.URL, r.URL.Query().Get("api-version"), end, pageSize)
	} else {
		body["nextLink"] = nil
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}
