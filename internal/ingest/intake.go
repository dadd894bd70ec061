// Package ingest is the Graph change-notification receiver: it checks what Graph POSTs and hands the
// items, still encrypted, to Service Bus. It does only cheap work, under one deadline, so the webhook
// answers well inside Graph's 3-second budget; everything else happens in the queue workers.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/notification"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Subscriptions reads a tenant's subscription record (registry.SubscriptionLookup: found records and
// misses cached). Cached answers from memory alone; cached is false when Get would read storage.
type Subscriptions interface {
	Get(ctx context.Context, tenant core.TenantID, id string) (registry.Subscription, error)
	Cached(tenant core.TenantID, id string) (sub registry.Subscription, found, cached bool)
}

// Tenants says whether a tenant is active (registry.TenantStateLookup: cached for seconds, so the hot path
// costs one storage read per tenant per TTL, not one per item). notBefore is when the item's
// subscription was created: an answer cached before it is read again.
type Tenants interface {
	Active(ctx context.Context, tenant core.TenantID, notBefore time.Time) (bool, error)
}

// Tokens validates the validationTokens of rich notifications (validationtoken.Validator). Ready fails
// with validationtoken.ErrKeysUnavailable while no signing keys are loaded, without verifying anything.
type Tokens interface {
	Ready() error
	ValidateAll(tokens []string) (validTenants map[string]bool, errs error)
}

// Rejection reasons, as counted and logged.
const (
	ReasonNoTenant = "no_tenant"
	// ReasonBadSubscriptionID: Graph's subscription ids are GUIDs; anything else is forged and is dropped
	// before it costs a storage read (and is not logged: it may be as long as the body).
	ReasonBadSubscriptionID   = "bad_subscription_id"
	ReasonUnknownSubscription = "unknown_subscription"
	ReasonClientState         = "client_state"
	ReasonToken               = "validation_token"
	// ReasonTenantInactive: a genuine item of a suspended or cancelled tenant. Its subscriptions are
	// deleted at suspension; until Graph stops posting (or another instance's cache expires) the items
	// are dropped here rather than carrying personal data into the queue.
	ReasonTenantInactive = "tenant_inactive"
)

// MaxItems caps the items (and the validation tokens) of one POST; more answers 413. Microsoft documents
// no largest batch, only that one POST may carry several notifications, of several subscriptions, apps
// and tenants sharing the URL (changeNotificationCollection; graph-notifications.md). A refused batch
// may come back unchanged on every retry until Graph gives up, so the cap must sit well above what
// Graph sends us: our largest subscription is a presence one of 650 users (Graph's limit per
// subscription), whose whole burst fits with half as much again to spare. It still bounds the work
// an anonymous POST can ask for: the 1 MiB body cap alone admits some 300,000 empty items. Rich items
// take 1 to 1.5 kB each, so for them the body cap binds first.
const MaxItems = 1000

// MaxLookups bounds the subscription reads one POST may cost; ids that would need more are not looked
// up and the POST is answered 503. Ids answered from memory (found, or a remembered miss) cost
// nothing, so a warm instance reads nothing for Graph's traffic, while a POST of made-up ids costs at
// most 32 reads instead of one per item (1,000). 32 sequential reads take a few hundred ms at Table
// Storage's usual latency, well inside the deadline.
//
// Over the bound the POST gets 503, not 202 with the rest dropped as unknown: we cannot tell the ids
// we did not read from real ones, and a 202 would lose real notifications for good whenever a cold
// instance meets a POST spanning many subscriptions. With 503 Graph retries, and each attempt finds
// the ids read before in memory, so a genuine POST gets through; a forged one gains nothing by it.
const MaxLookups = 32

// maxLoggedID bounds each subscription id in the rejection log: Graph's are GUIDs (36 bytes), a forged
// one may be as long as the body.
const maxLoggedID = 64

// Intake implements handlers.NotificationIntake.
type Intake struct {
	subs    Subscriptions
	tenants Tenants
	tokens  Tokens
	sender  queue.Sender
	budget  time.Duration
	stats   *Stats
	log     *slog.Logger
	now     func() time.Time
	quiet   rejectionLog
}

// New builds the intake. budget is the one deadline of everything Receive waits for — the subscription
// and tenant-state reads as well as the queue send — so that a refusing or frozen store answers 503 as
// fast as a slow queue does, not after the SDK's retries (about 10 s) or never (config.Config's
// HandoffTimeout, 2 s by default, at most 2.5 s: Graph counts an answer after 3 s as slow, and the host
// and the network need their share).
func New(subs Subscriptions, tenants Tenants, tokens Tokens, sender queue.Sender, budget time.Duration, log *slog.Logger) *Intake {
	return &Intake{subs: subs, tenants: tenants, tokens: tokens, sender: sender, budget: budget, stats: NewStats(), log: log, now: time.Now}
}

// Stats returns the intake's counters.
func (in *Intake) Stats() *Stats { return in.stats }

// Receive checks one POST and queues its valid items. It returns nil when every valid item is queued
// (202), apperr Invalid when the body is not a notification collection (400), apperr TooLarge when it
// holds more than MaxItems items or validation tokens (413), and apperr Unavailable when the items
// could not be checked or queued in time (503: Graph retries, nothing is acknowledged unstored). Items
// that fail a check are dropped and counted; the answer stays 202 for them, because a 4xx would make
// Graph retry forged items for hours.
func (in *Intake) Receive(ctx context.Context, lifecycleURL bool, body []byte) error {
	return in.ReceiveScanned(ctx, lifecycleURL, body, nil)
}

// ReceiveScanned is Receive for a body whose string stops the envelope reader found
// (azfunc.HTTPRequest.BodyStops; nil: not known): the parse then jumps over the items' base64 instead of
// reading it a second time.
func (in *Intake) ReceiveScanned(ctx context.Context, lifecycleURL bool, body []byte, stops []int32) error {
	ctx, cancel := context.WithTimeout(ctx, in.budget)
	defer cancel()
	// One pass over the body; raws are the items as sent, minus their clientState, for the queue.
	coll, raws, err := notification.ParseScannedAtMost(body, stops, MaxItems)
	if err != nil {
		if errors.Is(err, notification.ErrTooManyItems) {
			return apperr.New(apperr.TooLarge, fmt.Sprintf("more than %d notifications or validation tokens", MaxItems), err)
		}
		if errors.Is(err, notification.ErrNotCollection) {
			return apperr.New(apperr.Invalid, "not a notification collection", err)
		}
		return apperr.New(apperr.Invalid, "malformed notification body", err)
	}

	// The validation tokens are verified when the first item that needs them has passed the cheaper
	// checks: an RSA signature per token is most of what a POST of forged or stale items (wrong
	// clientState, unknown subscription) would cost, and such items are dropped whatever the tokens say.
	// Without signing keys (yet) nothing can be told apart, so that is answered 503 first, as before.
	if len(coll.ValidationTokens) > 0 && in.tokens != nil {
		if err := in.tokens.Ready(); errors.Is(err, validationtoken.ErrKeysUnavailable) {
			return apperr.New(apperr.Unavailable, "validation keys unavailable", err)
		}
	}
	var validTenants map[string]bool
	tokensChecked := false
	checkTokens := func() error {
		tokensChecked = true
		if len(coll.ValidationTokens) == 0 || in.tokens == nil {
			return nil
		}
		valid, terr := in.tokens.ValidateAll(coll.ValidationTokens)
		// Keys not loaded yet, or a key id we have not fetched (Microsoft rotated): the tokens may be
		// fine, so ask Graph to retry rather than drop genuine notifications.
		if errors.Is(terr, validationtoken.ErrKeysUnavailable) || errors.Is(terr, validationtoken.ErrUnknownKey) {
			return apperr.New(apperr.Unavailable, "validation keys unavailable", terr)
		}
		validTenants = make(map[string]bool, len(valid))
		for t := range valid {
			validTenants[strings.ToLower(t)] = true
		}
		return nil
	}

	var notes, lifecycles []queue.Message
	props := propertySets{}
	reads := 0 // subscription reads that went to storage
	rejected := map[string]int{}
	var rejectedIDs []string
	reject := func(tenant, reason, subID string) {
		rejected[reason]++
		in.stats.reject(tenant, reason)
		if subID != "" && len(rejectedIDs) < 5 {
			rejectedIDs = append(rejectedIDs, core.Clip(subID, maxLoggedID))
		}
	}
	// The items of a POST are mostly of one subscription: the last one looked up (and its tenant's
	// state) answers for the next item of the same ids without asking the caches again, whose answers
	// are copies (the clientState hash) under a lock.
	var last struct {
		tenant      core.TenantID
		id          string
		sub         registry.Subscription
		found       bool
		stateKnown  bool // active holds the tenant's state for sub
		active      bool
		received    int // items of last.tenant counted as received, not yet added to the stats
		receivedFor string
	}
	flushReceived := func() {
		if last.received > 0 {
			in.stats.receivedN(last.receivedFor, last.received)
			last.received = 0
		}
	}
	defer flushReceived() // what was counted before an early return
	// buf holds the queued items' bytes (without their clientState) one after another: one allocation
	// per POST rather than one per item.
	var buf []byte
	for i, n := range coll.Value {
		tenant, err := core.ParseTenantID(n.Tenant())
		if err != nil {
			reject("", ReasonNoTenant, n.SubscriptionID)
			continue
		}
		if !core.IsGUID(n.SubscriptionID) {
			reject("", ReasonBadSubscriptionID, "")
			continue
		}
		var sub registry.Subscription
		var found, cached bool
		if last.id != "" && last.tenant == tenant && last.id == n.SubscriptionID {
			sub, found, cached = last.sub, last.found, true
		} else {
			sub, found, cached = in.subs.Cached(tenant, n.SubscriptionID)
		}
		if !cached {
			if reads == MaxLookups {
				in.stats.overLookupBudget()
				in.log.WarnContext(ctx, "subscription lookups over budget", "reads", reads, "items", len(coll.Value), "lifecycle_url", lifecycleURL)
				return apperr.New(apperr.Unavailable, "more subscriptions to read than one POST may", nil)
			}
			reads++
			sub, err = in.subs.Get(ctx, tenant, n.SubscriptionID)
			switch {
			case err == nil:
				found = true
			case errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey):
				// not found: rejected as unknown below
			default:
				// Storage is down: we cannot tell genuine from forged, so Graph must retry.
				return apperr.New(apperr.Unavailable, "subscription lookup failed", err)
			}
		}
		if last.tenant != tenant || last.id != n.SubscriptionID {
			last.tenant, last.id, last.sub, last.found, last.stateKnown = tenant, n.SubscriptionID, sub, found, false
		}
		if !found {
			reject("", ReasonUnknownSubscription, n.SubscriptionID)
			continue
		}
		t := string(tenant)
		if last.receivedFor != t {
			flushReceived()
			last.receivedFor = t
		}
		last.received++
		// A hash and a constant-time compare: all a wrong clientState costs beyond the parse.
		if !registry.ClientStateMatches(sub.ClientStateHash, n.ClientState) {
			reject(t, ReasonClientState, n.SubscriptionID)
			continue
		}
		// Rich notifications always come with validation tokens; one without, or of a tenant whose token
		// failed, did not come from Graph.
		needsToken := n.IsRich() || len(coll.ValidationTokens) > 0
		if needsToken && !tokensChecked {
			if err := checkTokens(); err != nil {
				return err
			}
		}
		if needsToken && !validTenants[t] {
			reject(t, ReasonToken, n.SubscriptionID)
			continue
		}
		// Last, so only genuine items cost a (cached) state read and count as tenant_inactive.
		if !last.stateKnown {
			active, err := in.tenants.Active(ctx, tenant, sub.CreatedAt)
			if err != nil {
				return apperr.New(apperr.Unavailable, "tenant state lookup failed", err)
			}
			last.stateKnown, last.active = true, active
		}
		if !last.active {
			reject(t, ReasonTenantInactive, n.SubscriptionID)
			continue
		}
		var raw []byte
		if raws != nil {
			if buf == nil {
				buf = make([]byte, 0, len(body))
			}
			start := len(buf)
			buf = raws[i].AppendTo(buf)
			raw = buf[start:len(buf):len(buf)]
		}
		msg, err := toMessage(n, raw, t, sub.Kind, props)
		if err != nil {
			return apperr.New(apperr.Internal, "encode notification", err)
		}
		if n.IsLifecycle() {
			msg.SessionID = "" // the lifecycle queue has no sessions
			lifecycles = append(lifecycles, msg)
		} else {
			notes = append(notes, msg)
		}
	}

	flushReceived()
	start := in.now()
	if err := in.sender.Send(ctx, queue.Notifications, notes); err != nil {
		in.stats.handoffFailed()
		return apperr.New(apperr.Unavailable, "queue hand-off failed", err)
	}
	if err := in.sender.Send(ctx, queue.Lifecycle, lifecycles); err != nil {
		in.stats.handoffFailed()
		return apperr.New(apperr.Unavailable, "queue hand-off failed", err)
	}
	elapsed := in.now().Sub(start)
	in.stats.enqueuedAll(notes, lifecycles)
	if len(notes)+len(lifecycles) > 0 {
		in.stats.handoff(elapsed)
	}
	if len(rejected) > 0 {
		if unlogged, ok := in.quiet.due(in.now()); ok {
			// Ids and counts only: never the body, the clientState or a token.
			in.log.WarnContext(ctx, "notifications rejected", "rejected", rejected, "subscription_ids", rejectedIDs,
				"enqueued", len(notes)+len(lifecycles), "lifecycle_url", lifecycleURL, "posts_unlogged", unlogged)
		}
	}
	return nil
}

// rejectionLog lets a POST with rejected items write its log line at most once per
// rejectionLogInterval. Why: a forger decides how many POSTs we get, and a line per POST was 7 % of
// the CPU of rejecting one (a write to the host's log pipe), and a flood of them in the log the
// operator reads. Every rejected item is still counted in Stats (Health); the line that is written
// says how many POSTs with rejections went unlogged since the last one.
type rejectionLog struct {
	mu       sync.Mutex
	next     time.Time // no line before this
	unlogged int
}

const rejectionLogInterval = time.Second

// due reports whether a POST with rejections at now may log, and how many went unlogged before it.
func (l *rejectionLog) due(now time.Time) (unlogged int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.unlogged++
		return 0, false
	}
	unlogged, l.unlogged, l.next = l.unlogged, 0, now.Add(rejectionLogInterval)
	return unlogged, true
}

// toMessage queues the item as Graph sent it, minus the clientState (a secret the worker does not need);
// encryptedContent stays encrypted until the worker decrypts it. raw is the item's bytes without the
// clientState when the parser kept them: queued as they are, they spare encoding every item again (and
// its base64 content) on the webhook's hot path; otherwise the decoded item is encoded.
func toMessage(n notification.Notification, raw []byte, tenant string, kind registry.SubscriptionKind, props propertySets) (queue.Message, error) {
	n.ClientState = ""
	body := raw
	if body == nil {
		var err error
		if body, err = json.Marshal(n); err != nil {
			return queue.Message{}, fmt.Errorf("marshal notification: %w", err)
		}
	}
	id, ok := notification.MessageID(n)
	if !ok {
		// No version: a second change of this resource within Service Bus's duplicate-detection window
		// (10 min) would get this very id and be dropped while Health counted it as queued. Losing a
		// change is worse than applying one twice, so the item gets an id of its own and Graph's replays
		// of it are processed again. That is safe because the workers are idempotent: they must be
		// anyway (Service Bus delivers at least once); a basic notification carries nothing but the
		// resource's id, so whatever handles it reads the resource's current state and applying that
		// twice changes nothing; the presence worker, the only one wired, takes rich notifications only
		// and pushes a state only when it differs from the stored one.
		id = "u" + rand.Text()
	}
	session := notification.OrderingKey(n)
	if kind == registry.KindBooking || kind == registry.KindCRM {
		// The booking worker re-reads the room's whole window, and the CRM worker syncs the user's whole
		// folder, whichever item changed: one session per subscription keeps those reads to one at a
		// time per mailbox across instances.
		session = notification.SubscriptionKey(n)
	}
	return queue.Message{
		ID:                    id,
		SessionID:             session,
		ContentType:           "application/json",
		Body:                  body,
		ApplicationProperties: props.get(tenant, kind),
	}, nil
}

// propertySets hands out one ApplicationProperties map per tenant and kind within a POST, shared by its
// messages (a POST's 50 items are mostly of one subscription). Nothing writes to a message's properties
// once it is built: the senders copy them and the router copies them before it adds its own.
type propertySets map[[2]string]map[string]string

func (p propertySets) get(tenant string, kind registry.SubscriptionKind) map[string]string {
	k := [2]string{tenant, string(kind)}
	m, ok := p[k]
	if !ok {
		m = map[string]string{queue.PropTenant: tenant, queue.PropKind: string(kind)}
		p[k] = m
	}
	return m
}
