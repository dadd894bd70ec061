package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/retention"
	"github.com/connecthub/connecthub/internal/tenants"
	"github.com/connecthub/connecthub/internal/tenants/tenantgraph"
)

var (
	_ tenants.StateHook = (*presence.Manager)(nil)
	_ tenants.StateHook = (*bookings.Cache)(nil)
	_ tenants.StateHook = (*crm.Notifications)(nil)
)

// wireTenants builds the tenant lifecycle and licensing capability: onboarding, operator actions,
// ReconcileLicenses and EnforceRetention.
func (w *Wired) wireTenants(processing tenants.StateHook) error {
	cfg := w.Config.Tenants
	policy := retention.Policy{CancelledRetention: cfg.CancelledRetention, SuspendedRetention: cfg.SuspendedRetention,
		LicenseRetention: cfg.LicenseRetention, BillingRetention: cfg.BillingRetention}

	// App-only Graph clients (the multi-tenant app's certificate) read directories, delete
	// subscriptions and prove admin consent; they are built per tenant on first use.
	clients := graph.NewAppClients(graph.AppAuth{ClientID: w.Config.AppID, Secrets: w.Secrets,
		CertName: w.Config.Presence.AppClientCertName, Auth: graph.AuthOptions{AuthorityHost: w.Config.Presence.AuthorityHost}},
		graph.Options{BaseURL: w.Config.GraphBaseURL})
	w.appClients = clients

	// Presence sync's tables: erased with a user's license, counted for usage, swept by retention.
	presenceData := presence.OpenData(w.Store.DB())
	presenceData.SyncErrorRetention = cfg.SyncErrorRetention
	bookingData := bookings.OpenData(w.Store.DB())
	bookingData.MaxWindowDays = cfg.BookingWindowDays
	// The CRM sync's tables: a user's sync goes with the license; failed records' names are kept no
	// longer than presence sync's.
	crmData := crm.OpenData(w.Store.DB())
	crmData.SyncErrorRetention = cfg.SyncErrorRetention
	// The CRM sync is wired after this service (it needs the clients built here): its hook is set then.
	w.crmState = &lateHook{}
	// The room cache first: suspension and cancellation delete its subscriptions too.
	if err := w.wireRooms(clients); err != nil {
		return fmt.Errorf("wire rooms: %w", err)
	}

	svc, err := tenants.New(tenants.Options{
		Store: w.Store, Keys: w.Keys, Directory: tenantgraph.Directory{Clients: clients}, Now: clock.Now, Log: w.Log,
		Policy: policy, AppID: w.Config.AppID, RedirectURI: cfg.AdminConsentRedirectURI, ConsentTTL: cfg.AdminConsentTTL,
		Consent: tenantgraph.Consent{Prover: clients}, ConsentWait: cfg.AdminConsentWait,
		LoginBaseURL: w.Config.Presence.AuthorityHost, Regions: config.EURegions, BookingWindowDays: cfg.BookingWindowDays,
		Processing: stateHooks{processing, w.roomCache, w.crmState}, UserData: []tenants.UserData{presenceData, crm.Unlicensed{Data: crmData}}, Activity: presenceData,
	})
	if err != nil {
		return err
	}

	sec, ok := w.Secrets.(interface {
		secrets.Store
		secrets.Lister
	})
	if !ok {
		return errors.New("the secret store cannot list names, so a tenant's secrets could not all be deleted")
	}
	job, err := retention.New(retention.Options{
		Store: w.Store, Catalogue: catalogue, Keys: w.Keys, Secrets: sec, Graph: tenantgraph.Subscriptions{Clients: clients}, Licenses: svc,
		Contracts: tenants.OpenData(w.Store.DB()),
		Sweepers:  []retention.Sweeper{presenceData, bookingData, crmData, portal.OpenData(w.Store.DB())}, Holders: []retention.UserHolder{presenceData, crmData},
		Now: clock.Now, Log: w.Log, Policy: policy,
		MaxRows: cfg.RetentionMaxRows, Budget: cfg.JobRunBudget,
	})
	if err != nil {
		return err
	}

	w.App.EnforceRetention = job
	w.App.ReconcileLicenses = tenants.NewReconciler(svc, cfg.JobRunBudget)
	w.App.Tenants = handlers.TenantServices{Admin: svc, List: w.Store.Tenants}
	return nil
}

// lateHook is the state hook of a capability wired after the tenants service; nil until it is.
type lateHook struct{ h tenants.StateHook }

func (l *lateHook) OnStateChange(ctx context.Context, tenant core.TenantID, state registry.TenantState) error {
	if l.h == nil {
		return nil
	}
	return l.h.OnStateChange(ctx, tenant, state)
}

// stateHooks tells each capability of a tenant's state change, all of them even when one fails.
type stateHooks []tenants.StateHook

func (h stateHooks) OnStateChange(ctx context.Context, tenant core.TenantID, state registry.TenantState) error {
	var errs []error
	for _, x := range h {
		if x != nil {
			errs = append(errs, x.OnStateChange(ctx, tenant, state))
		}
	}
	return errors.Join(errs...)
}

// The tenant capability's adapters and service serve retention through interfaces retention declares.
var (
	_ retention.SubscriptionDeleter = tenantgraph.Subscriptions{}
	_ retention.Licenses            = (*tenants.Service)(nil)
	_ retention.ContractRows        = (*tenants.Data)(nil)
	_ tenants.DeletionPolicy        = retention.Policy{}
	_ tenants.UserData              = (*presence.Data)(nil)
	_ tenants.Activity              = (*presence.Data)(nil)
	_ retention.Sweeper             = (*presence.Data)(nil)
	_ retention.Sweeper             = (*bookings.Data)(nil)
	_ retention.Sweeper             = (*portal.Data)(nil)
	_ retention.Sweeper             = (*queue.ParkingLot)(nil)
	_ retention.UserHolder          = (*presence.Data)(nil)
	_ retention.UserHolder          = (*crm.Data)(nil)
	_ retention.Sweeper             = (*crm.Data)(nil)
	_ tenants.UserData              = crm.Unlicensed{}
)
