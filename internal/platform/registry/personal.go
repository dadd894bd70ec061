package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Export lists what the registry holds about one person: the user's row (profile, PBX mapping), the
// tenant's row where it names the person (the service user, who last set the connector), and the
// subscriptions created through the person's account or whose filter names the person.
func (s *Registry) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	var out []tables.Record
	u, err := s.Users.Get(ctx, tenant, userID)
	switch {
	case err == nil:
		rec, err := s.Users.Record(u)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	case !errors.Is(err, tables.ErrNotFound):
		return nil, fmt.Errorf("read user: %w", err)
	}
	t, err := s.Tenants.Get(ctx, tenant)
	switch {
	case err == nil && (t.ServiceUserID == userID || t.PBXConfiguredBy == userID):
		rec, err := s.Tenants.t.Record(t)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	case err != nil && !errors.Is(err, tables.ErrNotFound):
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	for sub, err := range s.Subscriptions.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		if sub.ServiceUserID == userID || strings.Contains(sub.Resource, userID) {
			rec, err := s.Subscriptions.Record(sub)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Erase deletes the user's row and the subscriptions created through the person's account (Graph
// drops them within the hour; the presence manager creates new ones through another service user),
// and takes the person's id out of the tenant's row. A subscription whose filter lists the person
// among others stays: deleting it would stop everyone else's sync, and the renewal rebuilds the filter
// from the licensed users once the person is unlicensed (the privacy erasure unassigns first).
func (s *Registry) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	n := tables.Erasure{TableUsers: {}, TableTenants: {}, TableSubscriptions: {}}
	switch err := s.Users.Delete(ctx, tenant, userID); {
	case err == nil:
		n.Add(TableUsers, 1, 0)
	case !errors.Is(err, tables.ErrNotFound):
		return n, fmt.Errorf("delete user: %w", err)
	}
	t, err := s.Tenants.Get(ctx, tenant)
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		return n, fmt.Errorf("read tenant: %w", err)
	}
	if err == nil && (t.ServiceUserID == userID || t.PBXConfiguredBy == userID) {
		if _, err := s.Tenants.Update(ctx, tenant, func(t *Tenant) error {
			if t.ServiceUserID == userID {
				t.ServiceUserID = ""
			}
			if t.PBXConfiguredBy == userID {
				t.PBXConfiguredBy = ""
			}
			return nil
		}); err != nil {
			return n, fmt.Errorf("update tenant: %w", err)
		}
		n.Add(TableTenants, 0, 1)
	}
	var mine, naming []string
	for sub, err := range s.Subscriptions.All(ctx, tenant, &tables.ListOptions{Select: []string{"ServiceUserID", "Resource"}}) {
		if err != nil {
			return n, fmt.Errorf("list subscriptions: %w", err)
		}
		switch {
		case sub.ServiceUserID == userID:
			mine = append(mine, sub.ID)
		case strings.Contains(sub.Resource, userID):
			naming = append(naming, sub.ID)
		}
	}
	m, err := s.Subscriptions.DeleteBatch(ctx, tenant, mine)
	n.Add(TableSubscriptions, m, 0)
	if err != nil {
		return n, fmt.Errorf("delete subscriptions: %w", err)
	}
	// A subscription shared with other users (a presence filter listing several ids) stays for them,
	// with the person's id replaced by a marker no id parser accepts: the capability that owns the
	// subscription then sees it as unusable at its next reconciliation, deletes it at Graph and makes
	// one without the person (presence: within ten minutes).
	for _, id := range naming {
		_, err := s.Subscriptions.Update(ctx, tenant, id, func(sub *Subscription) error {
			sub.Resource = strings.ReplaceAll(sub.Resource, userID, ErasedMarker)
			return nil
		})
		switch {
		case err == nil:
			n.Add(TableSubscriptions, 0, 1)
		case !errors.Is(err, tables.ErrNotFound):
			return n, fmt.Errorf("scrub subscription: %w", err)
		}
	}
	return n, nil
}

// ErasedMarker replaces an erased person's id in rows that stay for others.
const ErasedMarker = "[erased]"

// Answers names the tables a person's export and erasure cover here.
func (s *Registry) Answers() []string { return []string{TableUsers, TableSubscriptions, TableTenants} }

// SetRestriction restricts (on) or resumes the processing of one user's data: while restricted the
// data stays, and no worker, job or connector acts on it (presence's apply and reconciliation read the
// flag). A user the tenant has not licensed has no row and nothing is processed for them anyway.
func (s *Registry) SetRestriction(ctx context.Context, tenant core.TenantID, userID string, on bool, reason string, at time.Time) error {
	_, err := s.Users.Update(ctx, tenant, userID, func(u *User) error {
		u.ProcessingRestricted, u.RestrictionReason, u.RestrictedAt = on, reason, at
		if !on {
			u.RestrictionReason, u.RestrictedAt = "", time.Time{}
		}
		return nil
	})
	if errors.Is(err, tables.ErrNotFound) {
		return apperr.New(apperr.NotFound, "no such user: only licensed users' data is processed", nil)
	}
	return err
}

// RestrictedUsers counts the tenant's users whose processing is restricted (Health). The filter runs in
// the service over the tenant's partition: only the restricted rows come back.
func (s *Registry) RestrictedUsers(ctx context.Context, tenant core.TenantID) (int, error) {
	n := 0
	f := tables.Filter("PartitionKey eq ? and ProcessingRestricted eq ?", tenant, true)
	for _, err := range tables.Pages(func(o *tables.ListOptions) (tables.Page[User], error) {
		return s.Users.Query(ctx, tenant, f, o)
	}, &tables.ListOptions{Select: []string{"ProcessingRestricted"}}) {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
