// Package tenantgraph adapts internal/platform/msgraph/graph to what the tenant capability consumes: the tenant's
// directory (tenants.Directory) for license assignment and ReconcileLicenses, subscription deletion
// (retention.SubscriptionDeleter) for EnforceRetention, and the proof of admin consent
// (tenants.ConsentProver) for onboarding. All use the multi-tenant app's app-only credential in each
// tenant.
package tenantgraph

import (
	"context"
	"errors"
	"fmt"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/tenants"
)

// Clients hands out a tenant's app-only Graph client (graph.AppClients).
type Clients interface {
	For(ctx context.Context, tenant string) (*graph.Client, error)
}

// Directory is tenants.Directory on Microsoft Graph.
type Directory struct {
	Clients Clients
}

var (
	_ tenants.Directory     = Directory{}
	_ tenants.ConsentProver = Consent{}
	_ Clients               = (*graph.AppClients)(nil)
	_ Prover                = (*graph.AppClients)(nil)
)

// User reads one user's profile (GET /users/{id}).
func (d Directory) User(ctx context.Context, tenant core.TenantID, id string) (tenants.DirectoryUser, error) {
	c, err := d.Clients.For(ctx, string(tenant))
	if err != nil {
		return tenants.DirectoryUser{}, fmt.Errorf("graph client: %w", err)
	}
	u, err := c.GetUser(ctx, id)
	if errors.Is(err, graph.ErrNotFound) {
		return tenants.DirectoryUser{}, tenants.ErrUserNotFound
	}
	if err != nil {
		return tenants.DirectoryUser{}, err
	}
	return profile(u), nil
}

// UsersDelta runs the users delta query from link ("" enumerates everyone).
func (d Directory) UsersDelta(ctx context.Context, tenant core.TenantID, link string, fn func(tenants.DirectoryChange) error) (string, error) {
	c, err := d.Clients.For(ctx, string(tenant))
	if err != nil {
		return "", fmt.Errorf("graph client: %w", err)
	}
	next, err := c.UsersDelta(ctx, link, func(ch graph.UserChange) error {
		return fn(tenants.DirectoryChange{ID: ch.ID, Removed: ch.Removed, Disabled: ch.Disabled()})
	})
	if errors.Is(err, graph.ErrDeltaExpired) {
		return "", tenants.ErrDeltaExpired
	}
	return next, err
}

// profile keeps the inventory's fields: one phone number (the first business phone, else the mobile).
func profile(u graph.User) tenants.DirectoryUser {
	phone := u.MobilePhone
	if len(u.BusinessPhones) > 0 && u.BusinessPhones[0] != "" {
		phone = u.BusinessPhones[0]
	}
	return tenants.DirectoryUser{ID: u.ID, DisplayName: u.DisplayName, UserPrincipalName: u.UserPrincipalName,
		Mail: u.Mail, Phone: phone, Department: u.Department, JobTitle: u.JobTitle,
		// GetUser selects accountEnabled; a directory that does not say is not treated as disabling anyone.
		Enabled: u.AccountEnabled == nil || *u.AccountEnabled}
}

// Subscriptions deletes a tenant's Graph subscriptions with the app-only client. By the time retention
// calls it the tenant key is destroyed, so the service users' token caches (sealed with it) cannot be
// opened: a delegated presence subscription Graph refuses to delete app-only simply expires within its
// hour, and its row is gone, so its notifications are refused.
type Subscriptions struct {
	Clients Clients
}

// DeleteSubscription implements retention.SubscriptionDeleter (asserted in internal/app, so that this
// adapter does not import retention).
func (s Subscriptions) DeleteSubscription(ctx context.Context, tenant core.TenantID, sub registry.Subscription) error {
	c, err := s.Clients.For(ctx, string(tenant))
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	return c.DeleteSubscription(ctx, sub.ID)
}

// Prover asks Microsoft whether the app was granted a tenant (graph.AppClients).
type Prover interface {
	ProveConsent(ctx context.Context, tenant string) error
}

// Consent is tenants.ConsentProver on the identity platform and Graph.
type Consent struct {
	Prover Prover
}

// ProveConsent sorts Microsoft's answer into the tenant capability's: no, could not ask, or a failure.
func (c Consent) ProveConsent(ctx context.Context, tenant core.TenantID) error {
	err := c.Prover.ProveConsent(ctx, string(tenant))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, graph.ErrNotConsented):
		return fmt.Errorf("%w: %w", tenants.ErrNotConsented, err)
	case graph.Retryable(err):
		return fmt.Errorf("%w: %w", tenants.ErrMicrosoftUnavailable, err)
	}
	return err
}
