package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphsubs"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Contact change notifications bring a change made in Outlook to Salesforce within about a minute
// (Graph's delivery time) instead of at the next SyncCRM run, 15 minutes at most. Each user whose
// contacts sync to the CRM has an app-only subscription on their default Contacts folder
// (/users/{id}/contacts: created, updated, deleted; without resource data, since the delta query reads
// only the mapped fields anyway). A notification runs that user's sync at once; the timer stays for
// what Graph cannot say: Salesforce's changes (the CRM → mailbox direction), lost notifications, and
// users whose subscription could not be made.
//
// A user's sync runs under the tenant's SyncCRM lease, the one the timer holds while it works through
// the tenant: two syncs of one user at once would both read the same delta and both create the new
// contact in Salesforce. One sync per tenant at a time suits the org too, whose API allocation and
// concurrency are per org.

// SubscriptionGraph is what the notifications need of a tenant's app-only Graph client.
type SubscriptionGraph = graphsubs.Graph

// NotifyOptions configure Notifications.
type NotifyOptions struct {
	Syncer        *Syncer
	Subscriptions func(ctx context.Context, tenant core.TenantID) (SubscriptionGraph, error)
	Leases        jobs.Table
	// NotificationURL and LifecycleURL are the webhooks Graph posts to; without a NotificationURL (a
	// local run nobody outside can reach) no subscription is made and the timer alone syncs.
	NotificationURL, LifecycleURL string
	// Lifetime of a subscription (default and most: graphsubs.MaxLifetime); RenewMargin is how long
	// before expiry it is renewed (default 2 days, so a day of failed runs still renews in time).
	Lifetime, RenewMargin time.Duration
	// LeaseWait is how long a notification waits for the tenant's sync lease before it is retried
	// later (default 10 s).
	LeaseWait time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

// Notifications keeps the contact subscriptions and runs a user's sync when one reports a change.
type Notifications struct {
	o      NotifyOptions
	keep   *graphsubs.Keeper
	runner *jobs.Runner

	mu      sync.Mutex
	started map[string]time.Time // tenant/user → when this instance's last sync of the user began
}

// NewNotifications returns the notifications on the syncer's store.
func NewNotifications(o NotifyOptions) (*Notifications, error) {
	if o.Syncer == nil || o.Subscriptions == nil || o.Leases == nil {
		return nil, errors.New("crm notifications: syncer, subscriptions and leases are required")
	}
	if o.RenewMargin <= 0 {
		o.RenewMargin = 48 * time.Hour
	}
	if o.LeaseWait <= 0 {
		o.LeaseWait = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	keep := &graphsubs.Keeper{Subs: o.Syncer.o.Store.Subscriptions, Kind: registry.KindCRM, NotificationURL: o.NotificationURL,
		LifecycleURL: o.LifecycleURL, Lifetime: o.Lifetime, Now: o.Now, Log: o.Log}
	return &Notifications{o: o, keep: keep, started: map[string]time.Time{},
		runner: jobs.New(o.Leases, jobs.Options{Log: o.Log, Now: o.Now})}, nil
}

// A user's subscribed resources: the default Contacts folder and the calendar's events (Learn,
// outlook-change-notifications-overview: /users/{id}/contacts, /users/{id}/events).
var userResourceRE = regexp.MustCompile(`(?i)^/?users/([^/?]+)/(contacts|events)$`)

func contactsResource(user string) string { return "/users/" + url.PathEscape(user) + "/contacts" }
func eventsResource(user string) string   { return "/users/" + url.PathEscape(user) + "/events" }

// Resources are the subscriptions a mapping wants: a user's contacts when they sync to the CRM, and
// their events when those do (changes in the CRM are read by the timer: Salesforce does not notify).
func Resources(m UserMapping) []string {
	var out []string
	if m.Contacts.ToCRM() {
		out = append(out, contactsResource(m.UserID))
	}
	if m.Events.ToCRM() {
		out = append(out, eventsResource(m.UserID))
	}
	return out
}

// userOf is the user whose contacts or events a subscription's resource names.
func userOf(resource string) (string, bool) {
	m := userResourceRE.FindStringSubmatch(resource)
	if m == nil {
		return "", false
	}
	u, err := url.PathUnescape(m[1])
	return u, err == nil && u != ""
}

// Maintain makes the tenant's subscriptions match want (the resources of Resources, for every mapped
// user): creates the missing, renews those expiring within RenewMargin, deletes the rest (a user
// unmapped or turned to from-crm). Failures are joined; the next run tries again.
func (n *Notifications) Maintain(ctx context.Context, tenant core.TenantID, want map[string]bool) error {
	if n.o.NotificationURL == "" {
		return nil
	}
	g, err := n.o.Subscriptions(ctx, tenant)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	subs, err := n.keep.All(ctx, tenant)
	if err != nil {
		return err
	}
	var errs []error
	have := map[string]registry.Subscription{}
	for _, s := range subs {
		_, ok := userOf(s.Resource)
		if _, dup := have[s.Resource]; !ok || !want[s.Resource] || dup {
			if err := n.keep.Remove(ctx, tenant, g, s.ID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		have[s.Resource] = s
	}
	resources := make([]string, 0, len(want))
	for r, ok := range want {
		if ok {
			resources = append(resources, r)
		}
	}
	sort.Strings(resources)
	now := n.o.Now().UTC()
	for _, r := range resources {
		s, ok := have[r]
		if ok && !s.ExpiresAt.Before(now.Add(n.o.RenewMargin)) {
			continue
		}
		if ok {
			gone, err := n.keep.Renew(ctx, tenant, g, s)
			if err != nil || !gone {
				errs = append(errs, err)
				continue
			}
			// Gone at Graph: a new one below. The user's changes meanwhile were never notified; the
			// run that called Maintain syncs the user next.
		}
		if _, err := n.keep.Create(ctx, tenant, g, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Process is the worker of contact notifications (queue kind crm): the notification names the
// subscription, the subscription the user, whose sync runs now. A notification queued before this
// instance's last sync of the user began is covered by it (Graph notifies after the change is stored),
// so a burst of edits costs one sync. A sync that fails is left to the timer: it changed nothing that
// the next run does not redo (the delta link and the windows advance only on success).
func (n *Notifications) Process(ctx context.Context, d *queue.Delivery) error {
	ctx, tenant, sub, held, err := n.keep.Received(ctx, d)
	if err != nil || !held {
		return err
	}
	user, ok := userOf(sub.Resource)
	if !ok {
		return apperr.New(apperr.Invalid, "crm notification for a subscription that is not a user's contacts or events", nil)
	}
	if !d.EnqueuedTime.IsZero() && n.lastStart(tenant, user).After(d.EnqueuedTime.Add(time.Second)) {
		n.o.Log.InfoContext(ctx, "crm notification already covered by a later sync", "subscription_id", sub.ID)
		return nil
	}
	return n.syncNow(ctx, tenant, user)
}

// syncNow runs the user's sync under the tenant's lease. A lease still held after LeaseWait (the timer
// is working through the tenant) is a conflict: the router tries the notification again later.
func (n *Notifications) syncNow(ctx context.Context, tenant core.TenantID, user string) error {
	spec := jobs.Spec{Name: SyncCRMJob, Budget: 30 * time.Second, Lease: time.Minute, Wait: n.o.LeaseWait}
	ran, err := n.runner.Run(ctx, tenant, spec, func(ctx context.Context, _ *jobs.Lease) error {
		n.mark(tenant, user)
		rep, err := n.o.Syncer.SyncUser(ctx, tenant, user)
		if err != nil {
			n.o.Log.WarnContext(ctx, "crm sync on notification failed; the timer tries again", "error", err)
			return nil
		}
		n.o.Log.InfoContext(ctx, "crm sync on notification", "created", rep.Created, "updated", rep.Updated,
			"deleted", rep.Deleted, "failed", rep.Failed, "skipped", rep.Skipped)
		return nil
	})
	switch {
	case errors.Is(err, jobs.ErrLeaseHeld) || err == nil && !ran:
		return apperr.New(apperr.Conflict, "the tenant's CRM sync is running; the notification is tried again later", err)
	case err != nil:
		return err
	}
	return nil
}

func (n *Notifications) mark(tenant core.TenantID, user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.started[string(tenant)+"/"+user] = n.o.Now()
}

func (n *Notifications) lastStart(tenant core.TenantID, user string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.started[string(tenant)+"/"+user]
}

// Handle acts on a lifecycle event of a contacts subscription: reauthorize it, recreate a removed
// one, and sync the user after a removal or missed notifications (their changes were never notified).
func (n *Notifications) Handle(ctx context.Context, tenant core.TenantID, sub registry.Subscription, event string) error {
	if sub.Kind != registry.KindCRM {
		return nil
	}
	user, ok := userOf(sub.Resource)
	if !ok {
		return apperr.New(apperr.Invalid, "lifecycle event for a subscription that is not a user's contacts or events", nil)
	}
	g, err := n.o.Subscriptions(ctx, tenant)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	reread, err := n.keep.Lifecycle(ctx, tenant, g, sub, event, func() (bool, error) {
		m, err := n.o.Syncer.o.Data.Users.Get(ctx, tenant, user)
		if errors.Is(err, tables.ErrNotFound) || err == nil && !slices.Contains(Resources(m), sub.Resource) {
			return false, nil // no longer synced to the CRM
		}
		if err != nil {
			return false, fmt.Errorf("read mapping: %w", err)
		}
		_, err = n.keep.Create(ctx, tenant, g, sub.Resource)
		return err == nil, err
	})
	if err != nil || !reread {
		return err
	}
	return n.syncNow(ctx, tenant, user)
}

// Withdraw deletes a person's contacts subscription when they are erased: the subscription's resource
// names them, and Graph would go on notifying their changes.
func (n *Notifications) Withdraw(ctx context.Context, tenant core.TenantID, user string) error {
	return n.removeWhere(ctx, tenant, func(u string) bool { return u == user })
}

// OnStateChange follows a tenant's lifecycle (tenants.StateHook): a tenant that is no longer active
// loses its contact subscriptions at once (the webhook drops an inactive tenant's notifications
// anyway); an active one gets them back from the next SyncCRM run.
func (n *Notifications) OnStateChange(ctx context.Context, tenant core.TenantID, state registry.TenantState) error {
	if state == registry.TenantActive {
		return nil
	}
	return n.removeWhere(ctx, tenant, func(string) bool { return true })
}

// removeWhere deletes, at Graph and here, the tenant's contact subscriptions of the users it picks.
func (n *Notifications) removeWhere(ctx context.Context, tenant core.TenantID, pick func(user string) bool) error {
	subs, err := n.keep.All(ctx, tenant)
	if err != nil {
		return err
	}
	var ids []string
	for _, s := range subs {
		if u, ok := userOf(s.Resource); ok && pick(u) {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	g, err := n.o.Subscriptions(ctx, tenant)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := n.keep.Remove(ctx, tenant, g, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncNowResult is what an admin's sync of one user did.
type SyncNowResult struct {
	UserID  string `json:"userId"`
	Skipped string `json:"skipped,omitempty"` // why nothing ran: not-mapped, sync-off, unlicensed, restricted
	// To Salesforce, and to the mailbox.
	Created        int `json:"created"`
	Linked         int `json:"linked"`
	Updated        int `json:"updated"`
	Deleted        int `json:"deleted"`
	Failed         int `json:"failed"`
	MailboxCreated int `json:"mailboxCreated"`
	MailboxLinked  int `json:"mailboxLinked"`
	MailboxUpdated int `json:"mailboxUpdated"`
	MailboxDeleted int `json:"mailboxDeleted"`
}

// SyncNow runs one user's sync at once, for an admin who fixed a failing record or a permission and
// will not wait for the next run; audited as crm.sync. It waits for the tenant's lease like a
// notification does, and a sync still running after that is a conflict to try again. A user without a
// mapping is 404; a run that fails is 503 with its code, and GetCRMSyncHealth says what to do.
func (n *Notifications) SyncNow(ctx context.Context, a core.Actor, tenant core.TenantID, user string) (SyncNowResult, error) {
	if _, err := n.o.Syncer.o.Data.Users.Get(ctx, tenant, user); errors.Is(err, tables.ErrNotFound) || errors.Is(err, tables.ErrInvalidKey) {
		return SyncNowResult{}, apperr.New(apperr.NotFound, "the user has no CRM mapping (PUT crm/users/{userId} first)", nil)
	} else if err != nil {
		return SyncNowResult{}, fmt.Errorf("read mapping: %w", err)
	}
	var rep Report
	var runErr error
	spec := jobs.Spec{Name: SyncCRMJob, Budget: 30 * time.Second, Lease: time.Minute, Wait: n.o.LeaseWait}
	ran, err := n.runner.Run(ctx, tenant, spec, func(ctx context.Context, _ *jobs.Lease) error {
		n.mark(tenant, user)
		rep, runErr = n.o.Syncer.SyncUser(ctx, tenant, user)
		return nil
	})
	switch {
	case errors.Is(err, jobs.ErrLeaseHeld) || err == nil && !ran:
		err = apperr.New(apperr.Conflict, "a CRM sync of this tenant is running; try again in a minute", err)
	case err == nil && runErr != nil:
		n.o.Log.WarnContext(ctx, "crm sync on request failed", "error", runErr)
		err = apperr.New(apperr.Unavailable, "the sync did not finish; GET crm/health shows why and what to do", runErr)
	}
	trail := audit.Trail{Table: audit.OpenLog(n.o.Syncer.o.Store.DB()), Now: n.o.Now, Log: n.o.Log}
	if err := trail.Record(ctx, tenant, a, "crm.sync", "user", user, err); err != nil {
		return SyncNowResult{}, err
	}
	return SyncNowResult{UserID: user, Skipped: rep.Skipped, Created: rep.Created, Linked: rep.Linked, Updated: rep.Updated,
		Deleted: rep.Deleted, Failed: rep.Failed, MailboxCreated: rep.MailboxCreated, MailboxLinked: rep.MailboxLinked,
		MailboxUpdated: rep.MailboxUpdated, MailboxDeleted: rep.MailboxDeleted}, nil
}
