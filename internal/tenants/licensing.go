package tenants

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Directory reads users from a tenant's directory (Microsoft Graph, app-only). internal/app adapts
// internal/platform/msgraph/graph to it.
type Directory interface {
	// User reads one user's profile; ErrUserNotFound if the directory has no such user.
	User(ctx context.Context, tenant core.TenantID, id string) (DirectoryUser, error)
	// UsersDelta calls fn for every user changed since link ("" enumerates all users) and returns the
	// link to resume from next time; ErrDeltaExpired when link is too old.
	UsersDelta(ctx context.Context, tenant core.TenantID, link string, fn func(DirectoryChange) error) (string, error)
}

// DirectoryUser is a user's profile: exactly the fields the data inventory allows for users.
type DirectoryUser struct {
	ID                string
	DisplayName       string
	UserPrincipalName string
	Mail              string
	Phone             string
	Department        string
	JobTitle          string
	Enabled           bool
}

// DirectoryChange is one entry of a users delta: who changed, and whether the user is gone or disabled.
// Delta pages may carry only the changed properties, so profiles are re-read with User.
type DirectoryChange struct {
	ID       string
	Removed  bool
	Disabled bool
}

var (
	// ErrUserNotFound: the directory has no user with that id.
	ErrUserNotFound = errors.New("user not found in the directory")
	// ErrDeltaExpired: the delta link is too old; start again with "".
	ErrDeltaExpired = errors.New("directory delta link expired")
)

// UserLedgerResource is the ledger resource under which the presence sync records a user's records.
// Unassigning the user deletes that resource, and the retention job deletes user-shaped resources of
// users who hold no license.
func UserLedgerResource(userID string) string { return userID }

// License is one assignment as an operator sees it.
type License struct {
	UserID     string
	AssignedAt time.Time
	AssignedBy string
	Purchased  int
	Assigned   int
}

// ParseUserID validates an Entra object id from a request and returns it canonical (lowercase).
func ParseUserID(s string) (string, error) {
	id, err := core.ParseObjectID(s)
	if err != nil || id == string(registry.OperatorPartition) {
		return "", apperr.New(apperr.Invalid, "user id must be an Entra object id (GUID)", err)
	}
	return id, nil
}

// Assign licenses a user of an active tenant: the profile is read from the directory (the inventory's
// fields only), sealed with the tenant key and stored. It never assigns more licenses than purchased:
// count and insert happen under a per-tenant lease (see insertLicense). Assigning a licensed user again
// only repairs a missing profile.
func (s *Service) Assign(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) (License, error) {
	uid, err := ParseUserID(userID)
	if err != nil {
		return License{}, err
	}
	t, err := s.getTenant(ctx, tenant)
	if err != nil {
		return License{}, err
	}
	lic, err := s.assign(ctx, a, t, uid)
	if err := s.audit(ctx, tenant, a, "license.assign", "user", uid, err); err != nil {
		return License{}, err
	}
	s.log.InfoContext(ctx, "license assigned", "assigned", lic.Assigned, "purchased", lic.Purchased)
	return lic, nil
}

func (s *Service) assign(ctx context.Context, a core.Actor, t registry.Tenant, uid string) (License, error) {
	switch {
	case t.State == registry.TenantDeleting:
		return License{}, errDeleting
	case t.State != registry.TenantActive:
		return License{}, apperr.New(apperr.Conflict, fmt.Sprintf("licenses can be assigned in an active tenant only (this one is %s)", t.State), nil)
	case s.dir == nil:
		return License{}, apperr.New(apperr.Unavailable, "the directory is not connected", nil)
	}
	rk, err := LicenseKey(Product, uid)
	if err != nil {
		return License{}, apperr.New(apperr.Invalid, "user id must be an Entra object id (GUID)", err)
	}
	existing, err := s.data.Licenses.Get(ctx, t.ID, rk)
	licensed := err == nil
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		return License{}, fmt.Errorf("read license: %w", err)
	}
	if licensed {
		if _, err := s.st.Users.Get(ctx, t.ID, uid); err == nil {
			return s.licenseView(ctx, t, existing)
		}
	} else {
		assigned, err := s.assignedUsers(ctx, t.ID)
		if err != nil {
			return License{}, err
		}
		if len(assigned) >= t.PurchasedLicenses {
			return License{}, errAllAssigned(t.PurchasedLicenses)
		}
	}

	du, err := s.dir.User(ctx, t.ID, uid)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return License{}, apperr.New(apperr.NotFound, "the user is not in the tenant's directory", nil)
	case err != nil:
		return License{}, apperr.New(apperr.Unavailable, "the tenant's directory could not be read; try again", err)
	case !du.Enabled:
		return License{}, apperr.New(apperr.Conflict, "the user's account is disabled in the directory", nil)
	}

	now := s.now()
	if !licensed {
		existing = Assignment{Product: Product, UserID: uid, AssignedAt: now, AssignedBy: a.ID}
		if err := s.insertLicense(ctx, t, existing); err != nil {
			return License{}, err
		}
	}
	if err := s.writeProfile(ctx, t.ID, du, now); err != nil {
		return License{}, err
	}
	return s.licenseView(ctx, t, existing)
}

// assignLock is the job name whose lease serialises license assignments within a tenant.
const assignLock = "license-assign"

// insertLicense counts and inserts under the tenant's assignment lease, so concurrent assignments take
// turns and the count cannot be overtaken. Should the lease be lost meanwhile (a pause longer than its
// lifetime), it counts again and withdraws its own license if that one is over the limit.
func (s *Service) insertLicense(ctx context.Context, t registry.Tenant, l Assignment) error {
	owner := jobs.NewOwner("")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.leases.AcquireLease(ctx, t.ID, assignLock, owner, 30*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, jobs.ErrLeaseHeld) {
			return fmt.Errorf("acquire assignment lease: %w", err)
		}
		if time.Now().After(deadline) {
			return apperr.New(apperr.Conflict, "another license change is in progress; try again", nil)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(5+mathrand.IntN(20)) * time.Millisecond):
		}
	}
	err := func() error {
		assigned, err := s.assignedUsers(ctx, t.ID)
		if err != nil {
			return err
		}
		if len(assigned) >= t.PurchasedLicenses {
			return errAllAssigned(t.PurchasedLicenses)
		}
		if _, err := s.data.Licenses.Insert(ctx, t.ID, l); err != nil && !errors.Is(err, tables.ErrExists) {
			return fmt.Errorf("write license: %w", err)
		}
		return nil
	}()
	_, rerr := s.leases.Release(context.WithoutCancel(ctx), t.ID, assignLock, owner, "")
	if err != nil || !errors.Is(rerr, jobs.ErrLeaseLost) {
		return err
	}
	assigned, cerr := s.assignedUsers(ctx, t.ID)
	if cerr != nil {
		return cerr
	}
	if len(assigned) > t.PurchasedLicenses {
		rk, _ := LicenseKey(l.Product, l.UserID)
		if err := s.data.Licenses.Delete(ctx, t.ID, rk); err != nil && !errors.Is(err, tables.ErrNotFound) {
			return fmt.Errorf("withdraw over-limit license: %w", err)
		}
		return errAllAssigned(t.PurchasedLicenses)
	}
	return nil
}

func errAllAssigned(purchased int) error {
	return apperr.New(apperr.Conflict, fmt.Sprintf("all %d purchased licenses are assigned: unassign one or buy more", purchased), nil)
}

func (s *Service) licenseView(ctx context.Context, t registry.Tenant, l Assignment) (License, error) {
	assigned, err := s.assignedUsers(ctx, t.ID)
	if err != nil {
		return License{}, err
	}
	return License{UserID: l.UserID, AssignedAt: l.AssignedAt, AssignedBy: l.AssignedBy,
		Purchased: t.PurchasedLicenses, Assigned: len(assigned)}, nil
}

// ProfileFields are the user fields copied from Microsoft 365: corrected there, refreshed here.
var ProfileFields = []string{"displayName", "userPrincipalName", "mail", "phone", "department", "jobTitle"}

// RefreshProfile reads a licensed user's profile from the tenant's directory again and stores it: how
// ConnectHub corrects what it copied from Microsoft 365 (the correction itself is made there).
func (s *Service) RefreshProfile(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error {
	err := s.refreshProfile(ctx, tenant, userID)
	return s.audit(ctx, tenant, a, "user.profile.refresh", "user", userID, err)
}

func (s *Service) refreshProfile(ctx context.Context, tenant core.TenantID, userID string) error {
	if s.dir == nil {
		return apperr.New(apperr.Unavailable, "the directory is not connected", nil)
	}
	if _, err := s.st.Users.Get(ctx, tenant, userID); errors.Is(err, tables.ErrNotFound) {
		return apperr.New(apperr.NotFound, "no such user: only licensed users' data is kept", nil)
	} else if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	du, err := s.dir.User(ctx, tenant, userID)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return apperr.New(apperr.NotFound, "the user is not in the tenant's directory", nil)
	case err != nil:
		return apperr.New(apperr.Unavailable, "the tenant's directory could not be read; try again", err)
	}
	return s.writeProfile(ctx, tenant, du, s.now())
}

// writeProfile stores the directory profile, sealed by the store, keeping the PBX mapping and
// restriction flags a previous row had.
func (s *Service) writeProfile(ctx context.Context, tenant core.TenantID, du DirectoryUser, now time.Time) error {
	_, err := s.st.Users.UpdateOrCreate(ctx, tenant, du.ID, func(u *registry.User, exists bool) error {
		if !exists {
			u.CreatedAt = now
		}
		u.DisplayName, u.UserPrincipalName, u.Mail = du.DisplayName, du.UserPrincipalName, du.Mail
		u.Phone, u.Department, u.JobTitle = du.Phone, du.Department, du.JobTitle
		u.Licensed = true
		u.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("write user profile: %w", err)
	}
	return nil
}

// Unassign takes the license from a user and deletes the user's presence, PBX mapping, profile and
// ledger rows.
func (s *Service) Unassign(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error {
	uid, err := ParseUserID(userID)
	if err != nil {
		return err
	}
	t, err := s.getTenant(ctx, tenant)
	if err != nil {
		return err
	}
	err = func() error {
		if t.State == registry.TenantDeleting {
			return errDeleting
		}
		removed, err := s.removeUserData(ctx, tenant, uid)
		if err != nil {
			return err
		}
		if !removed.License && removed.Rows == 0 {
			return apperr.New(apperr.NotFound, "the user has no license", nil)
		}
		return nil
	}()
	if err := s.audit(ctx, tenant, a, "license.unassign", "user", uid, err); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "license unassigned")
	return nil
}

// Removed says what RemoveUserData deleted.
type Removed struct {
	License bool // a license row existed
	Rows    int  // rows deleted in all tables, the license included
}

// removeUserData deletes everything the tenant holds about one user: the license first (so a crash
// midway leaves an unlicensed remainder that the retention job sweeps), then what each capability holds
// about the user (Options.UserData: presence sync's presence and ledger), then the user row with the
// profile and PBX mapping. Rows already gone are not an error.
func (s *Service) removeUserData(ctx context.Context, tenant core.TenantID, userID string) (Removed, error) {
	st := s.st
	var r Removed
	rk, err := LicenseKey(Product, userID)
	if err != nil {
		return r, err
	}
	del := func(what string, fn func() error) error {
		switch err := fn(); {
		case err == nil:
			r.Rows++
			return nil
		case errors.Is(err, tables.ErrNotFound):
			return nil
		default:
			return fmt.Errorf("delete %s: %w", what, err)
		}
	}
	if err := del("license", func() error { return s.data.Licenses.Delete(ctx, tenant, rk) }); err != nil {
		return r, err
	}
	r.License = r.Rows == 1
	for _, d := range s.o.UserData {
		n, err := d.Erase(ctx, tenant, userID)
		r.Rows += n.Rows()
		if err != nil {
			return r, err
		}
	}
	if err := del("user", func() error { return st.Users.Delete(ctx, tenant, userID) }); err != nil {
		return r, err
	}
	return r, nil
}

// assignedUsers returns the ids of the tenant's licensed users.
func (s *Service) assignedUsers(ctx context.Context, tenant core.TenantID) (map[string]bool, error) {
	return s.AssignedUsers(ctx, tenant)
}

// LicensedUsers returns the ids of the tenant's licensed users (for the retention job's sweep).
func (s *Service) LicensedUsers(ctx context.Context, tenant core.TenantID) (map[string]bool, error) {
	return s.AssignedUsers(ctx, tenant)
}

// RemoveUser deletes everything the tenant holds about one user and answers how many rows went (for the
// retention job's sweep of unlicensed remainders).
func (s *Service) RemoveUser(ctx context.Context, tenant core.TenantID, userID string) (int, error) {
	r, err := s.removeUserData(ctx, tenant, userID)
	return r.Rows, err
}

// AssignedUsers returns the ids of the tenant's licensed users (license rows of Product).
func (s *Service) AssignedUsers(ctx context.Context, tenant core.TenantID) (map[string]bool, error) {
	out := map[string]bool{}
	opts := &tables.ListOptions{Select: []string{"AssignedAt"}}
	for {
		page, err := s.data.Licenses.ListPrefix(ctx, tenant, Product+"|", opts)
		if err != nil {
			return nil, fmt.Errorf("list licenses: %w", err)
		}
		for _, l := range page.Items {
			out[strings.ToLower(l.UserID)] = true
		}
		if page.Next == "" {
			return out, nil
		}
		opts.Token = page.Next
	}
}
