package pbx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
)

// Kind is the queue message kind of a PBX presence event (queue.PropKind).
const Kind = "pbx-presence"

// Drop reasons, counted (presence.Stats.AddPBX "dropped_<reason>") and logged; never processed.
const (
	ReasonNoTenant            = "no_tenant"
	ReasonMalformed           = "malformed"
	ReasonUnknownSubscription = "unknown_subscription"
	ReasonForged              = "verification_token"
	ReasonTenantInactive      = "tenant_inactive"
	ReasonNotPresence         = "not_presence"
)

// MaxBody caps a delivery. A detailed presence event with the latest seven calls is 2 to 4 kB; 64 kB
// leaves room for RingCentral adding fields, and bounds what an anonymous POST costs.
const MaxBody = 64 << 10

// MaxValidationToken caps the Validation-Token we echo: RingCentral's whole handshake answer must be
// at most 1,024 bytes (creating-webhooks.md), and what we echo is what an anonymous caller chose.
const MaxValidationToken = 256

// Tenants says whether a tenant is active (registry.TenantStateLookup).
type Tenants interface {
	Active(ctx context.Context, tenant core.TenantID, notBefore time.Time) (bool, error)
}

// Event is what the queue carries of a RingCentral presence event: the extension, the ordering number
// and the states, each from RingCentral's fixed vocabulary. Phone numbers and names of the calls never
// leave the webhook.
type Event struct {
	ExtensionID     string    `json:"extensionId"`
	Sequence        int64     `json:"sequence"`
	TelephonyStatus string    `json:"telephonyStatus,omitempty"` // "" when the event did not say (sent only when it changed)
	DNDStatus       string    `json:"dndStatus,omitempty"`
	UserStatus      string    `json:"userStatus,omitempty"`
	ActiveCalls     int       `json:"activeCalls"` // calls connected or on hold, of activeCalls[]
	DetailedCalls   bool      `json:"detailedCalls"`
	ReceivedAt      time.Time `json:"receivedAt"`
}

// Intake checks RingCentral's webhook deliveries and queues their events.
type Intake struct {
	data    *presence.Data
	tenants Tenants
	sender  queue.Sender
	stats   *presence.Stats
	budget  time.Duration
	log     *slog.Logger
	now     func() time.Time
	subs    *ttlcache.Cache[core.TenantID, presence.PBXSubscription]
}

// NewIntake builds the intake; budget bounds everything one delivery waits for (storage reads, the
// queue send), like the Graph webhook's hand-off deadline.
func NewIntake(db *tables.DB, tenants Tenants, sender queue.Sender, stats *presence.Stats, budget time.Duration, log *slog.Logger) *Intake {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = presence.NewStats()
	}
	if budget <= 0 {
		budget = 2 * time.Second
	}
	return &Intake{data: presence.OpenData(db), tenants: tenants, sender: sender, stats: stats, budget: budget, log: log,
		now: time.Now, subs: ttlcache.New[core.TenantID, presence.PBXSubscription](30*time.Second, 10_000, time.Now)}
}

// envelope is RingCentral's notification: uuid, event, timestamp, subscriptionId, ownerId, body
// (event-filters, presence.md).
type envelope struct {
	UUID           string `json:"uuid"`
	Event          string `json:"event"`
	SubscriptionID string `json:"subscriptionId"`
	Body           struct {
		ExtensionID     json.RawMessage `json:"extensionId"`
		Sequence        int64           `json:"sequence"`
		TelephonyStatus string          `json:"telephonyStatus"`
		DNDStatus       string          `json:"dndStatus"`
		UserStatus      string          `json:"userStatus"`
		ActiveCalls     []struct {
			TelephonyStatus string `json:"telephonyStatus"`
		} `json:"activeCalls"`
	} `json:"body"`
}

var (
	telephonyStates = map[string]bool{"NoCall": true, "CallConnected": true, "Ringing": true, "OnHold": true, "ParkedCall": true}
	dndStates       = map[string]bool{"TakeAllCalls": true, "DoNotAcceptAnyCalls": true, "DoNotAcceptDepartmentCalls": true, "TakeDepartmentCallsOnly": true}
	userStates      = map[string]bool{"Offline": true, "Busy": true, "Available": true}
)

func vocab(set map[string]bool, v string) string {
	if set[v] {
		return v
	}
	return ""
}

// Receive checks one delivery and queues its event. Order (house style): the body is capped by the
// caller, then parsed; cheap checks; then the tenant's subscription row and the constant-time
// comparison of the verification token; then the tenant's state. It returns nil when the event is
// queued or dropped (RingCentral gets 200 either way: a non-200 only pushes a genuine subscription
// towards blacklisting), apperr Invalid when the body is not an event (400), apperr Unavailable when it
// could not be checked or queued in time (503: RingCentral delivers again).
func (in *Intake) Receive(ctx context.Context, tenantID, verificationToken string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, in.budget)
	defer cancel()
	tenant, err := core.ParseCustomerTenant(tenantID)
	if err != nil {
		in.drop(ctx, ReasonNoTenant)
		return nil
	}
	ctx = core.WithTenant(ctx, tenant)
	env, ev, err := ParseDelivery(body, in.now())
	if err != nil {
		in.drop(ctx, ReasonMalformed)
		return apperr.New(apperr.Invalid, "not a RingCentral notification", err)
	}
	sub, err := in.subscription(ctx, tenant, env.SubscriptionID)
	if err != nil {
		return apperr.New(apperr.Unavailable, "subscription unavailable", err)
	}
	if sub.SubscriptionID == "" || sub.SubscriptionID != env.SubscriptionID {
		in.drop(ctx, ReasonUnknownSubscription)
		return nil
	}
	got := sha256.Sum256([]byte(verificationToken))
	if verificationToken == "" || subtle.ConstantTimeCompare(got[:], sub.VerificationTokenHash) != 1 {
		in.drop(ctx, ReasonForged)
		return nil
	}
	active, err := in.tenants.Active(ctx, tenant, sub.CreatedAt)
	if err != nil {
		return apperr.New(apperr.Unavailable, "tenant state unavailable", err)
	}
	if !active {
		in.drop(ctx, ReasonTenantInactive)
		return nil
	}
	if ev.ExtensionID == "" || ev.Sequence <= 0 {
		// A genuine delivery of something else (the subscription covers presence only): nothing to do.
		in.drop(ctx, ReasonNotPresence)
		return nil
	}
	ext := ev.ExtensionID
	raw, _ := json.Marshal(ev)
	// The id makes RingCentral's redeliveries of one event duplicates; the session keeps one extension's
	// events in order.
	id := sha256.Sum256([]byte(string(tenant) + "|" + env.SubscriptionID + "|" + env.UUID + "|" + strconv.FormatInt(ev.Sequence, 10)))
	sess := sha256.Sum256([]byte(string(tenant) + "|pbx|" + ext))
	msg := queue.Message{ID: "pbx-" + hex.EncodeToString(id[:16]), SessionID: hex.EncodeToString(sess[:16]), ContentType: "application/json",
		Body: raw, ApplicationProperties: map[string]string{queue.PropTenant: string(tenant), queue.PropKind: Kind}}
	if err := in.sender.Send(ctx, queue.Notifications, []queue.Message{msg}); err != nil {
		return apperr.New(apperr.Unavailable, "queue unavailable", fmt.Errorf("queue pbx event: %w", err))
	}
	in.stats.AddPBX("queued")
	return nil
}

// Delivery is the envelope of a RingCentral notification: what identifies it.
type Delivery struct {
	UUID           string
	SubscriptionID string
}

// ParseDelivery reads a RingCentral notification: the envelope's ids and the presence event, reduced to
// what the queue carries (states outside RingCentral's vocabularies become "", an extension id that is
// not all digits makes ExtensionID ""). It fails only when the body is not a notification.
func ParseDelivery(body []byte, now time.Time) (Delivery, Event, error) {
	var env envelope
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil {
		return Delivery{}, Event{}, err
	}
	if env.SubscriptionID == "" || len(env.SubscriptionID) > 128 || len(env.UUID) > 128 {
		return Delivery{}, Event{}, errors.New("no subscription id, or ids too long")
	}
	ev := Event{ExtensionID: extensionID(env.Body.ExtensionID), Sequence: env.Body.Sequence,
		TelephonyStatus: vocab(telephonyStates, env.Body.TelephonyStatus), DNDStatus: vocab(dndStates, env.Body.DNDStatus),
		UserStatus: vocab(userStates, env.Body.UserStatus), DetailedCalls: env.Body.ActiveCalls != nil, ReceivedAt: now.UTC()}
	for _, c := range env.Body.ActiveCalls {
		if c.TelephonyStatus == "CallConnected" || c.TelephonyStatus == "OnHold" {
			ev.ActiveCalls++
		}
	}
	return Delivery{UUID: env.UUID, SubscriptionID: env.SubscriptionID}, ev, nil
}

// subscription reads the tenant's subscription row through a short cache; a row whose id differs from
// the delivery's is read again (it may have just been recreated).
func (in *Intake) subscription(ctx context.Context, tenant core.TenantID, id string) (presence.PBXSubscription, error) {
	if s, ok := in.subs.Get(tenant); ok && s.SubscriptionID == id {
		return s, nil
	}
	s, err := in.data.PBXSubscriptions.Get(ctx, tenant, ringcentral.Kind)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return presence.PBXSubscription{}, nil
	case err != nil:
		return presence.PBXSubscription{}, fmt.Errorf("read pbx subscription: %w", err)
	}
	in.subs.Set(tenant, s)
	return s, nil
}

// Forget drops the cached subscription of a tenant (deleted or recreated by this instance).
func (in *Intake) Forget(tenant core.TenantID) { in.subs.Delete(tenant) }

func (in *Intake) drop(ctx context.Context, reason string) {
	in.stats.AddPBX("dropped_" + reason)
	in.log.InfoContext(ctx, "pbx delivery dropped", "reason", reason)
}

// extensionID accepts RingCentral's extension id as a JSON string or number, digits only.
func extensionID(raw json.RawMessage) string {
	s := string(bytes.Trim(raw, `"`))
	if s == "" || len(s) > 20 {
		return ""
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return s
}

// ValidationToken returns the Validation-Token to echo in the creation handshake, or "" when it is not
// one we may echo (too long for RingCentral's 1,024-byte answer, or not a plain token).
func ValidationToken(v string) string {
	if v == "" || len(v) > MaxValidationToken {
		return ""
	}
	for _, r := range v {
		if r <= ' ' || r > '~' {
			return ""
		}
	}
	return v
}
