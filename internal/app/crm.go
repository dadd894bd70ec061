package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// wireCRM builds the mailbox ↔ CRM sync: the connection and mapping functions, and the SyncCRM timer
// that syncs each mapped user's contacts with Salesforce. The Salesforce client signs in at the real
// login and sandbox hosts; its token cache lives as long as the handler. Mailboxes are read and written
// with the app-only Graph clients wireTenants built; failure notices go from CONNECTHUB_CRM_NOTICE_SENDER
// with the operator tenant's client, when it is set.
func (w *Wired) wireCRM() error {
	if w.appClients == nil {
		return errors.New("wire crm: the app-only Graph clients are not built yet")
	}
	data := crm.OpenData(w.Store.DB())
	sfo := salesforce.Options{Now: clock.Now}
	if u := w.Config.SalesforceLoginURL; u != "" { // a local fake org (config: local mode only)
		sfo.LoginURL = func(string) string { return u }
	}
	sf := salesforce.New(sfo)
	svc, err := crm.New(crm.Options{Store: w.Store, Data: data, Secrets: w.Secrets, Sealer: w.Keys,
		Salesforce: sf, Now: clock.Now, Log: w.Log})
	if err != nil {
		return err
	}
	var notifier crm.Notifier
	if w.Config.CRMNoticeSender != "" {
		notifier = crm.MailNotifier{SenderTenant: core.TenantID(w.Config.OperatorTenantID), From: w.Config.CRMNoticeSender,
			Clients: func(ctx context.Context, t core.TenantID) (crm.MailClient, error) {
				return w.appClients.For(ctx, string(t))
			}}
	}
	syncer, err := crm.NewSyncer(crm.SyncOptions{Store: w.Store, Data: data, Secrets: w.Secrets, Sealer: w.Keys,
		Salesforce: sf, Mailboxes: crmMailboxes{w.appClients}, Notifier: notifier, Now: clock.Now, Log: w.Log})
	if err != nil {
		return err
	}
	leases := jobs.OpenLeases(w.Store.DB())
	var notificationURL, lifecycleURL string
	if base := w.Config.Presence.PublicBaseURL; base != "" {
		notificationURL, lifecycleURL = base+"/api/graph/notifications", base+"/api/graph/lifecycle"
	}
	notices, err := crm.NewNotifications(crm.NotifyOptions{Syncer: syncer, Leases: leases,
		Subscriptions: func(ctx context.Context, t core.TenantID) (crm.SubscriptionGraph, error) {
			return w.appClients.For(ctx, string(t))
		},
		NotificationURL: notificationURL, LifecycleURL: lifecycleURL, Log: w.Log})
	if err != nil {
		return err
	}
	// A contact notification carries no resource data: the worker runs the user's sync.
	if err := w.notifications.Handle(string(registry.KindCRM), notices); err != nil {
		return fmt.Errorf("route crm notifications: %w", err)
	}
	w.crmNotices = notices
	w.crmState.h = notices              // suspension and cancellation delete the contact subscriptions
	w.Subjects.Withdraw(notices, w.Log) // an erased person's subscription goes with them
	w.App.CRMNow = notices
	w.App.CRM = handlers.CRMServices{Admin: svc,
		Sync: crm.NewSyncJob(syncer, w.Store.Tenants.OperatorAll, leases, w.Config.Tenants.JobRunBudget, w.Log).WithNotifications(notices)}
	return nil
}

// crmMailboxes hands the sync the tenant's app-only client (Contacts.ReadWrite; Contacts.Read for to-crm alone;
// Calendars.Read for events to Salesforce).
type crmMailboxes struct{ clients *graph.AppClients }

func (m crmMailboxes) For(ctx context.Context, tenant core.TenantID) (crm.Mailbox, error) {
	return m.clients.For(ctx, string(tenant))
}
