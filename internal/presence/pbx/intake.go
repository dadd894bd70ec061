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
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/ttlcache"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
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
	// Source is the connector kind that reported it: ringcentral ("" in messages queued before the
	// webhook connector had an inbound side) or webhook.
	Source string `json:"source,omitempty"`
	// UserID is set by the webhook connector, whose PBX names the user by the Entra object id our own
	// events gave it; RingCentral names the extension instead.
	UserID          string    `json:"userId,omitempty"`
	ExtensionID     string    `json:"extensionId,omitempty"`
	Sequence        int64     `json:"sequence"`
	TelephonyStatus string    `json:"telephonyStatus,omitempty"` // "" when the event did not say (sent only when it changed)
	DNDStatus       string    `json:"dndStatus,omitempty"`
	UserStatus      string    `json:"userStatus,omitempty"`
	ActiveCalls     int       `json:"activeCalls"` // calls connected or on hold, of activeCalls[]
	DetailedCalls   bool      `json:"detailedCalls"`
	ReceivedAt      time.Time `json:"receivedAt"`
}

// Intake checks RingCentral's webhook deliveries, and the signed ones of the generic webhook connector,
// and queues their events.
type Intake struct {
	data    *presence.Data
	tenants Tenants
	secrets secrets.Store
	sealer  tables.Sealer
	keys    *ttlcache.Cache[core.TenantID, webhookKey]
	sender  queue.Sender
	stats   *presence.Stats
	budget  time.Duration
	log     *slog.Logger
	now     func() time.Time
	subs    *ttlcache.Cache[core.TenantID, presence.PBXSubscription]
}

// NewIntake builds the intake; budget bounds everything one delivery waits for (storage reads, the
// queue send), like the Graph webhook's hand-off deadline.
// sec and sealer read the webhook connector's signing secret (connector.LoadCredential).
func NewIntake(db *tables.DB, tenants Tenants, sec secrets.Store, sealer tables.Sealer, sender queue.Sender, stats *presence.Stats, budget time.Duration, log *slog.Logger) *Intake {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = presence.NewStats()
	}
	if budget <= 0 {
		budget = 2 * time.Second
	}
	return &Intake{data: presence.OpenData(db), tenants: tenants, secrets: sec, sealer: sealer, sender: sender, stats: stats, budget: budget, log: log,
		now: time.Now, subs: ttlcache.New[core.TenantID, presence.PBXSubscription](30*time.Second, 10_000, time.Now),
		keys: ttlcache.New[core.TenantID, webhookKey](time.Minute, 10_000, time.Now)}
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
	ev.Source = ringcentral.Kind
	// The id makes RingCentral's redeliveries of one event duplicates.
	return in.enqueue(ctx, tenant, env.SubscriptionID+"|"+env.UUID, "ext|"+ev.ExtensionID, ev)
}

// enqueue queues one event: dedup is the delivery's identity (redeliveries become duplicates), order the
// user's or extension's key (a Service Bus session keeps its events in order).
func (in *Intake) enqueue(ctx context.Context, tenant core.TenantID, dedup, order string, ev Event) error {
	raw, _ := json.Marshal(ev)
	id := sha256.Sum256([]byte(string(tenant) + "|" + dedup + "|" + strconv.FormatInt(ev.Sequence, 10)))
	sess := sha256.Sum256([]byte(string(tenant) + "|pbx|" + order))
	msg := queue.Message{ID: "pbx-" + hex.EncodeToString(id[:16]), SessionID: hex.EncodeToString(sess[:16]), ContentType: "application/json",
		Body: raw, ApplicationProperties: map[string]string{queue.PropTenant: string(tenant), queue.PropKind: Kind}}
	if err := in.sender.Send(ctx, queue.Notifications, []queue.Message{msg}); err != nil {
		return apperr.New(apperr.Unavailable, "queue unavailable", fmt.Errorf("queue pbx event: %w", err))
	}
	in.stats.AddPBX("queued")
	return nil
}

// SignedEvent is what a PBX on the generic webhook connector posts to /api/pbx/{tenant}/webhook, signed
// as ConnectHub signs its own events (webhook.Sign: X-ConnectHub-Signature over the raw body with the
// tenant's connector secret, a timestamp within 5 minutes).
type SignedEvent struct {
	Type     string `json:"type"`     // "presence"
	ID       string `json:"id"`       // unique per event: a redelivery with the same id is a duplicate
	UserID   string `json:"userId"`   // the Entra object id ConnectHub's own events carry
	Sequence int64  `json:"sequence"` // increasing per user: an older event is ignored
	Call     bool   `json:"call"`     // a call is in progress
	DND      bool   `json:"dnd"`      // do not disturb is on
}

// SignatureTolerance is how far a signed event's timestamp may be from now (replays).
const SignatureTolerance = 5 * time.Minute

type webhookKey struct {
	secret []byte
	at     time.Time
}

// ReceiveSigned checks one signed event of the webhook connector and queues it. Answers as Receive:
// nil when queued or dropped (forged, no webhook connector, inactive tenant), Invalid when the body is
// not an event, Unavailable when it could not be checked or queued in time.
func (in *Intake) ReceiveSigned(ctx context.Context, tenantID, signature string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, in.budget)
	defer cancel()
	tenant, err := core.ParseCustomerTenant(tenantID)
	if err != nil {
		in.drop(ctx, ReasonNoTenant)
		return nil
	}
	ctx = core.WithTenant(ctx, tenant)
	var se SignedEvent
	err = json.NewDecoder(bytes.NewReader(body)).Decode(&se)
	user, uerr := core.ParseObjectID(se.UserID)
	if err != nil || uerr != nil || se.Type != "presence" || se.ID == "" || len(se.ID) > 128 || se.Sequence <= 0 {
		in.drop(ctx, ReasonMalformed)
		return apperr.New(apperr.Invalid, "not a presence event: want type presence, id, userId, sequence > 0", err)
	}
	if signature == "" || len(signature) > 256 {
		in.drop(ctx, ReasonForged)
		return nil
	}
	// The tenant's state first: a cached table read, where the secret is a Key Vault read, so made-up
	// tenant ids cost no Key Vault traffic.
	active, err := in.tenants.Active(ctx, tenant, time.Time{})
	if err != nil {
		return apperr.New(apperr.Unavailable, "tenant state unavailable", err)
	}
	if !active {
		in.drop(ctx, ReasonTenantInactive)
		return nil
	}
	key, err := in.webhookKey(ctx, tenant, false)
	if err != nil {
		return apperr.New(apperr.Unavailable, "connector secret unavailable", err)
	}
	now := in.now()
	if key.secret != nil && webhook.Verify(key.secret, signature, body, now, SignatureTolerance) != nil && now.Sub(key.at) > 5*time.Second {
		// The secret may have been replaced since it was cached: read it once more (at most every 5 s,
		// so forged traffic cannot turn into a Key Vault read per request).
		if key, err = in.webhookKey(ctx, tenant, true); err != nil {
			return apperr.New(apperr.Unavailable, "connector secret unavailable", err)
		}
	}
	if key.secret == nil {
		in.drop(ctx, ReasonUnknownSubscription)
		return nil
	}
	if webhook.Verify(key.secret, signature, body, now, SignatureTolerance) != nil {
		in.drop(ctx, ReasonForged)
		return nil
	}
	ev := Event{Source: webhook.Kind, UserID: string(user), Sequence: se.Sequence, TelephonyStatus: "NoCall", DNDStatus: "TakeAllCalls",
		DetailedCalls: true, ReceivedAt: now.UTC()}
	if se.Call {
		ev.TelephonyStatus, ev.ActiveCalls = "CallConnected", 1
	}
	if se.DND {
		ev.DNDStatus = "DoNotAcceptAnyCalls"
	}
	return in.enqueue(ctx, tenant, "webhook|"+se.ID, "user|"+string(user), ev)
}

// webhookKey reads the tenant's webhook signing secret through a one-minute cache; a tenant without the
// webhook connector has none (nil secret, cached too).
func (in *Intake) webhookKey(ctx context.Context, tenant core.TenantID, fresh bool) (webhookKey, error) {
	if k, ok := in.keys.Get(tenant); ok && !fresh {
		return k, nil
	}
	var cred webhook.Credential
	err := connector.LoadCredential(ctx, in.secrets, in.sealer, tenant, &cred)
	k := webhookKey{at: in.now()}
	switch {
	case errors.Is(err, connector.ErrNotConfigured):
	case err != nil:
		return webhookKey{}, err
	case cred.Kind == webhook.Kind && cred.Secret != "":
		k.secret = []byte(cred.Secret)
	}
	in.keys.Set(tenant, k)
	return k, nil
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
