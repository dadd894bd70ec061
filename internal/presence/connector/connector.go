// Package connector pushes presence to the tenant's PBX or UC system. Each connector (ringcentral, a
// generic signed webhook) implements Pusher; the presence worker picks one by the tenant's PBXKind.
//
// HTTP goes through an azcore pipeline whose retry policy honours Retry-After on 429 and 503 for short
// waits (up to MaxInlineWait); a longer wait, or failures past the few inline retries, come back as a
// retryable *Error carrying the wait, and the worker reschedules the message (Service Bus) with backoff.
// Nothing here loops by hand.
//
// PBX credentials live in Key Vault under secrets.PBXCredentialName, as JSON sealed with the tenant key
// (SaveCredential/LoadCredential), so crypto-shredding the tenant kills them too.
package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// State is a PBX-neutral presence state; each connector maps it to its system's vocabulary.
type State string

// The states presence is mapped to.
const (
	Available State = "Available"
	Busy      State = "Busy"
	DND       State = "DND"
	Away      State = "Away"
	Offline   State = "Offline"
)

// Valid reports whether s is one of the states above.
func (s State) Valid() bool {
	switch s {
	case Available, Busy, DND, Away, Offline:
		return true
	}
	return false
}

// User is whom a presence belongs to, as a connector needs it.
type User struct {
	ID        string // Entra object id
	PBXUserID string // the admin's explicit mapping at the PBX; "" to match by Email or Phone
	Email     string // personal: used only to find the PBX account, never logged
	Phone     string // personal: used only to find the PBX account (E.164), never logged
}

// Pusher sets a user's presence at the PBX.
type Pusher interface {
	Push(ctx context.Context, tenant core.TenantID, u User, s State) error
}

// ErrUnmapped means the user has no account at the PBX (no explicit mapping, no match by e-mail or phone).
// Retrying cannot help until an admin maps the user.
var ErrUnmapped = errors.New("user has no PBX account")

// ErrNotConfigured means the tenant has no (or an unusable) PBX credential.
var ErrNotConfigured = errors.New("PBX connector not configured for the tenant")

// Error is a failed PBX call: the status and, when the PBX said so, how long to wait.
type Error struct {
	Op         string
	Status     int
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("pbx %s: status %d, retry after %s", e.Op, e.Status, e.RetryAfter)
	}
	return fmt.Sprintf("pbx %s: status %d", e.Op, e.Status)
}

// Retryable reports whether the push may succeed later: throttling, a server error or no answer.
// Unmapped users, missing configuration and other 4xx answers are permanent.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrUnmapped) || errors.Is(err, ErrNotConfigured) || errors.Is(err, context.Canceled) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500 || e.Status == 0
	}
	return true
}

// RetryAfter returns the wait the PBX asked for, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Code is a short, log-safe code for an error (syncerrors.ErrorCode).
func Code(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnmapped):
		return "pbx_unmapped"
	case errors.Is(err, ErrNotConfigured):
		return "pbx_not_configured"
	case errors.As(err, &e) && e.Status == http.StatusTooManyRequests:
		return "pbx_throttled"
	case errors.As(err, &e) && e.Status > 0:
		return "pbx_status_" + strconv.Itoa(e.Status)
	}
	return "pbx_unreachable"
}

// MaxInlineWait is the longest Retry-After the HTTP pipeline waits for inside one invocation; longer
// waits go back to the queue.
const MaxInlineWait = 5 * time.Second

// HTTPOptions configure a connector's HTTP pipeline.
type HTTPOptions struct {
	Client     *http.Client  // nil: a default client with TLS 1.2+
	MaxRetries int32         // inline retries of 429/5xx (default 2)
	RetryDelay time.Duration // first delay when no Retry-After is given (default 500 ms)
	Timeout    time.Duration // per try (default 10 s)
}

// NewPipeline builds the azcore pipeline every connector sends through.
func NewPipeline(o HTTPOptions) runtime.Pipeline {
	if o.MaxRetries == 0 {
		o.MaxRetries = 2
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	client := o.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig.MinVersion = 0x0303 // TLS 1.2
		client = &http.Client{Transport: tr}
	}
	return runtime.NewPipeline("connecthub-connector", "v1", runtime.PipelineOptions{}, &policy.ClientOptions{
		Transport: client,
		Retry: policy.RetryOptions{MaxRetries: o.MaxRetries, RetryDelay: o.RetryDelay, MaxRetryDelay: MaxInlineWait,
			TryTimeout: o.Timeout, StatusCodes: []int{http.StatusTooManyRequests, http.StatusServiceUnavailable,
				http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusInternalServerError}},
		// Bodies and headers carry tokens and personal data: the pipeline must not log them.
		Logging: policy.LogOptions{IncludeBody: false},
	})
}

// maxResponse caps what we read of a PBX answer.
const maxResponse = 4 << 20

// Do sends a request through p and returns the answer's status, headers and (capped) body. A status
// outside 2xx is an *Error with the Retry-After the PBX gave, if any.
func Do(ctx context.Context, p runtime.Pipeline, op, method, url string, header http.Header, body []byte) (http.Header, []byte, error) {
	req, err := runtime.NewRequest(ctx, method, url)
	if err != nil {
		return nil, nil, fmt.Errorf("pbx %s: %w", op, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Raw().Header.Add(k, v)
		}
	}
	if body != nil {
		ct := header.Get("Content-Type")
		if ct == "" {
			ct = "application/json"
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), ct); err != nil {
			return nil, nil, fmt.Errorf("pbx %s: %w", op, err)
		}
	}
	resp, err := p.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("pbx %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, fmt.Errorf("pbx %s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.Header, b, &Error{Op: op, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	}
	return resp.Header, b, nil
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// ----- credentials -----

// credentialLabel binds the sealed credential to its purpose (associated data of the tenant key).
const credentialLabel = "pbx-credential"

// SaveCredential stores the tenant's PBX credential (any JSON value), sealed with the tenant key, in
// the secret registry. The admin API calls it; tests too.
func SaveCredential(ctx context.Context, sec secrets.Store, sealer tables.Sealer, tenant core.TenantID, v any) error {
	if err := secrets.SetSealed(ctx, sec, sealer, tenant, secrets.PBXCredentialName(tenant), credentialLabel, "pbx", v); err != nil {
		return fmt.Errorf("save pbx credential: %w", err)
	}
	return nil
}

// LoadCredential reads and opens the tenant's PBX credential into v. A missing credential is
// ErrNotConfigured.
func LoadCredential(ctx context.Context, sec secrets.Store, sealer tables.Sealer, tenant core.TenantID, v any) error {
	err := secrets.GetSealed(ctx, sec, sealer, tenant, secrets.PBXCredentialName(tenant), credentialLabel, "pbx", v)
	if errors.Is(err, secrets.ErrNoSealed) {
		return fmt.Errorf("load pbx credential: %w: %v", ErrNotConfigured, err)
	}
	if err != nil {
		return fmt.Errorf("load pbx credential: %w", err)
	}
	return nil
}

// Registry picks the tenant's connector by kind (Tenant.PBXKind).
type Registry map[string]Pusher

// For returns the connector of kind, or ErrNotConfigured.
func (r Registry) For(kind string) (Pusher, error) {
	if p, ok := r[kind]; ok && kind != "" {
		return p, nil
	}
	return nil, fmt.Errorf("pbx kind %q: %w", kind, ErrNotConfigured)
}

// ----- connection test -----

// TestFailure is why a tenant's connector does not work, as an admin can act on it: Code is stable and
// names what failed (ringcentral_jwt_refused, webhook_status_401, …), Message says it in a sentence. Both
// are safe to log and to answer: they hold no secret and nothing the PBX said but its error code.
type TestFailure struct {
	Code    string
	Message string
}

func (f *TestFailure) Error() string { return f.Code + ": " + f.Message }

// Tester checks the tenant's configured credential against the PBX, as a push would use it. It returns
// nil when it works, a *TestFailure when the PBX refused or could not be reached, and any other error
// when the check could not run (the credential could not be read).
type Tester interface {
	Test(ctx context.Context, tenant core.TenantID) error
}

// Lister lists the PBX's extensions for matching; connectors without a directory (webhook) have none.
type Lister interface {
	Directory(ctx context.Context, tenant core.TenantID) (*Directory, error)
}

// Forgetter drops what a connector cached of a tenant (token, directory) after its credential changed.
type Forgetter interface {
	Forget(tenant core.TenantID)
}
