// Package webhook is the generic connector for PBX and UC systems without a dedicated one: each presence
// change is POSTed as JSON to the tenant's HTTPS endpoint, signed with HMAC-SHA256.
//
// Signature: header X-ConnectHub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
// Receivers recompute it over the raw body, compare in constant time and refuse timestamps outside a few
// minutes (Verify does exactly that). X-ConnectHub-Delivery is a unique id for deduplication.
//
// Test deliveries (the admin's connection test) are signed the same way and carry "type":"test" and no
// user: a receiver verifies the signature, answers 2xx and ignores them.
//
// The body carries the user's Entra object id and, when an admin mapped one, the PBX user id; the
// user's mail only when there is no mapping (the receiver needs something to match on, nothing more).
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Kind is the Tenant.PBXKind of this connector.
const Kind = "webhook"

// Header names.
const (
	SignatureHeader = "X-ConnectHub-Signature"
	DeliveryHeader  = "X-ConnectHub-Delivery"
)

// Credential is the tenant's endpoint and signing secret (sealed JSON in Key Vault).
type Credential struct {
	Kind   string `json:"kind"` // "webhook"
	URL    string `json:"url"`
	Secret string `json:"secret"` // at least 32 characters
}

// Event is the JSON body posted.
type Event struct {
	Type       string `json:"type"` // "presence", or "test" for a connection test
	ID         string `json:"id"`
	TenantID   string `json:"tenantId"`
	UserID     string `json:"userId,omitempty"` // always set on presence events
	PBXUserID  string `json:"pbxUserId,omitempty"`
	Email      string `json:"email,omitempty"`
	State      string `json:"state,omitempty"` // always set on presence events
	OccurredAt string `json:"occurredAt"`
}

// Options configure the connector.
type Options struct {
	HTTP connector.HTTPOptions
	// AllowHTTP permits http:// endpoints (local development only).
	AllowHTTP bool
	Now       func() time.Time
}

// Connector posts signed presence events.
type Connector struct {
	o       Options
	p       runtime.Pipeline
	secrets secrets.Store
	sealer  tables.Sealer
}

var (
	_ connector.Pusher = (*Connector)(nil)
	_ connector.Tester = (*Connector)(nil)
)

// New builds the connector.
func New(o Options, sec secrets.Store, sealer tables.Sealer) *Connector {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Connector{o: o, p: connector.NewPipeline(o.HTTP), secrets: sec, sealer: sealer}
}

// Push posts the presence change.
func (c *Connector) Push(ctx context.Context, tenant core.TenantID, u connector.User, s connector.State) error {
	cred, err := c.credential(ctx, tenant)
	if err != nil {
		return err
	}
	now := c.o.Now().UTC()
	ev := Event{Type: "presence", ID: newID(), TenantID: string(tenant), UserID: u.ID, PBXUserID: u.PBXUserID,
		State: string(s), OccurredAt: now.Format(time.RFC3339Nano)}
	if u.PBXUserID == "" {
		ev.Email = u.Email
	}
	return c.post(ctx, cred, now, ev)
}

func (c *Connector) credential(ctx context.Context, tenant core.TenantID) (Credential, error) {
	var cred Credential
	if err := connector.LoadCredential(ctx, c.secrets, c.sealer, tenant, &cred); err != nil {
		return Credential{}, err
	}
	if err := c.check(cred); err != nil {
		return Credential{}, err
	}
	return cred, nil
}

// Test posts a signed test event to the tenant's endpoint: any 2xx answer passes.
func (c *Connector) Test(ctx context.Context, tenant core.TenantID) error {
	cred, err := c.credential(ctx, tenant)
	if errors.Is(err, connector.ErrNotConfigured) {
		return &connector.TestFailure{Code: "webhook_config_invalid", Message: "the stored endpoint or secret is unusable; set the connector again"}
	}
	if err != nil {
		return err
	}
	now := c.o.Now().UTC()
	err = c.post(ctx, cred, now, Event{Type: "test", ID: newID(), TenantID: string(tenant), OccurredAt: now.Format(time.RFC3339Nano)})
	var ce *connector.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce) && ce.Status > 0:
		return &connector.TestFailure{Code: "webhook_status_" + strconv.Itoa(ce.Status),
			Message: "the endpoint answered the signed test event with status " + strconv.Itoa(ce.Status) + " (want 2xx)"}
	}
	return &connector.TestFailure{Code: "webhook_unreachable", Message: "the endpoint could not be reached (DNS, connection or TLS failed, or no answer in time)"}
}

func (c *Connector) post(ctx context.Context, cred Credential, now time.Time, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("pbx webhook: %w", err)
	}
	h := http.Header{
		"Content-Type":  {"application/json"},
		SignatureHeader: {Sign([]byte(cred.Secret), now, body)},
		DeliveryHeader:  {ev.ID},
	}
	_, _, err = connector.Do(ctx, c.p, "webhook", http.MethodPost, cred.URL, h, body)
	return err
}

func (c *Connector) check(cred Credential) error {
	u, err := url.Parse(cred.URL)
	switch {
	case cred.Kind != Kind:
		return fmt.Errorf("webhook credential of kind %q: %w", cred.Kind, connector.ErrNotConfigured)
	case err != nil || u.Host == "":
		return fmt.Errorf("webhook URL unusable: %w", connector.ErrNotConfigured)
	case u.Scheme != "https" && !(c.o.AllowHTTP && u.Scheme == "http"):
		return fmt.Errorf("webhook URL must be https: %w", connector.ErrNotConfigured)
	case len(cred.Secret) < 32:
		return fmt.Errorf("webhook secret shorter than 32 characters: %w", connector.ErrNotConfigured)
	}
	return nil
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrSignature is returned by Verify for a missing, malformed, wrong or expired signature.
var ErrSignature = errors.New("webhook signature invalid")

// Verify checks a signature header against body, in constant time, refusing timestamps further than
// tolerance from now (replays).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrSignature
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
