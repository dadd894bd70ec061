package setup

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// UserExtension is the extension a licensed user maps to and how (connector.Match*). No personal data:
// the user's object id and the PBX's ids only.
type UserExtension struct {
	UserID          string
	ExtensionID     string // "" when unmatched
	ExtensionNumber string // when the PBX's directory lists the extension
	MatchedBy       string // override, email, phone, none
}

// ExtensionPage is one page of the listing.
type ExtensionPage struct {
	Kind string
	// Directory says whether the PBX's extension list was read: without one (no connector, a webhook
	// connector, or the PBX could not be reached) only overrides are known, and DirectoryError says why
	// in a stable code.
	Directory      bool
	DirectoryError string
	Users          []UserExtension
	Next           string
}

// Paging bounds of the listing.
const (
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// extensionIDRE bounds an override: RingCentral's are digits; other PBXs' user ids are short tokens.
var extensionIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$`)

// directory reads the PBX's extension list when the tenant's connector has one. A PBX that cannot be
// reached is reported, not fatal: overrides are still known.
func (s *Service) directory(ctx context.Context, t registry.Tenant) (*connector.Directory, string) {
	if t.PBXKind == "" {
		return nil, "pbx_not_configured"
	}
	l, ok := s.o.Connectors[t.PBXKind].(connector.Lister)
	if !ok {
		return nil, "pbx_no_directory"
	}
	dir, err := l.Directory(ctx, t.ID)
	if err != nil {
		code := connector.Code(err)
		s.o.Log.WarnContext(ctx, "pbx directory unavailable", "code", code)
		return nil, code
	}
	return dir, ""
}

func matchOf(u registry.User, dir *connector.Directory) UserExtension {
	m := dir.Match(connector.UserOf(u))
	return UserExtension{UserID: u.ID, ExtensionID: m.ExtensionID, ExtensionNumber: m.Number, MatchedBy: m.By}
}

// licensedUser reads a licensed user of the tenant; anyone else is NotFound.
func (s *Service) licensedUser(ctx context.Context, tenant core.TenantID, userID string) (registry.User, error) {
	uid, err := core.ParseTenantID(userID) // an object id is a GUID like a tenant id
	if err != nil {
		return registry.User{}, apperr.New(apperr.Invalid, "user id must be an Entra object id (GUID)", err)
	}
	u, err := s.o.Store.Users.Get(ctx, tenant, string(uid))
	if errors.Is(err, tables.ErrNotFound) {
		return registry.User{}, errNoUser
	}
	if err != nil {
		return registry.User{}, apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("read user: %w", err))
	}
	if !u.Licensed {
		return registry.User{}, errNoUser
	}
	return u, nil
}

// GetUserExtension answers the extension a licensed user maps to now, and how.
func (s *Service) GetUserExtension(ctx context.Context, tenant core.TenantID, userID string) (UserExtension, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return UserExtension{}, err
	}
	u, err := s.licensedUser(ctx, tenant, userID)
	if err != nil {
		return UserExtension{}, err
	}
	dir, _ := s.directory(ctx, t) // also for an override: it knows the extension's number
	return matchOf(u, dir), nil
}

// SetUserExtension sets an explicit override: the user's presence goes to extensionID whatever the
// e-mail and phone say. When the PBX lists its extensions, an id it does not list is refused.
func (s *Service) SetUserExtension(ctx context.Context, a core.Actor, tenant core.TenantID, userID, extensionID string) (UserExtension, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return UserExtension{}, err
	}
	u, err := s.licensedUser(ctx, tenant, userID)
	if err != nil {
		return UserExtension{}, err
	}
	fail := func(err error) (UserExtension, error) {
		if errors.Is(err, errDeleting) {
			return UserExtension{}, err
		}
		return UserExtension{}, s.audit(ctx, tenant, a, "user.extension.set", "user", u.ID, err)
	}
	if err := writable(t); err != nil {
		return fail(err)
	}
	if extensionID == "" {
		return fail(invalid("extensionId is required"))
	}
	if !extensionIDRE.MatchString(extensionID) {
		return fail(invalid("extensionId must be the PBX's id of the extension: letters, digits and . _ : @ + -, at most 128"))
	}
	dir, _ := s.directory(ctx, t)
	if dir != nil && !dir.Has(extensionID) {
		return fail(apperr.New(apperr.Invalid, "the PBX lists no enabled extension with this id (use the extension's id, not its number)", nil))
	}
	u, err = s.o.Store.Users.Update(ctx, tenant, u.ID, func(u *registry.User) error {
		if !u.Licensed {
			return errNoUser
		}
		u.PBXUserID, u.UpdatedAt = extensionID, s.o.Now()
		return nil
	})
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			err = apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("update user: %w", err))
		}
		return fail(err)
	}
	if err := s.audit(ctx, tenant, a, "user.extension.set", "user", u.ID, nil); err != nil {
		return UserExtension{}, err
	}
	return matchOf(u, dir), nil
}

// DeleteUserExtension removes the override: the user is matched by e-mail or phone again.
func (s *Service) DeleteUserExtension(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	u, err := s.licensedUser(ctx, tenant, userID)
	if err != nil {
		return err
	}
	if err := writable(t); err != nil {
		if errors.Is(err, errDeleting) {
			return err
		}
		return s.audit(ctx, tenant, a, "user.extension.delete", "user", u.ID, err)
	}
	_, err = s.o.Store.Users.Update(ctx, tenant, u.ID, func(u *registry.User) error {
		u.PBXUserID, u.UpdatedAt = "", s.o.Now()
		return nil
	})
	if err != nil {
		return s.audit(ctx, tenant, a, "user.extension.delete", "user", u.ID,
			apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("update user: %w", err)))
	}
	return s.audit(ctx, tenant, a, "user.extension.delete", "user", u.ID, nil)
}

// ListExtensions pages over the tenant's licensed users with the extension each maps to and how. A page
// holds at most pageSize users (fewer when unlicensed rows were skipped); Next continues.
func (s *Service) ListExtensions(ctx context.Context, tenant core.TenantID, token string, pageSize int) (ExtensionPage, error) {
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return ExtensionPage{}, invalid(fmt.Sprintf("pageSize must be 1 to %d", MaxPageSize))
	}
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return ExtensionPage{}, err
	}
	page, err := s.o.Store.Users.List(ctx, tenant, &tables.ListOptions{PageSize: pageSize, Token: token,
		Select: []string{"Mail", "UserPrincipalName", "Phone", "PBXUserID", "Licensed"}})
	if err != nil {
		if token != "" {
			return ExtensionPage{}, apperr.New(apperr.Invalid, "pageToken is not one this listing gave", err)
		}
		return ExtensionPage{}, apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("list users: %w", err))
	}
	out := ExtensionPage{Kind: t.PBXKind, Users: []UserExtension{}, Next: page.Next}
	dir, dirErr := s.directory(ctx, t)
	out.Directory, out.DirectoryError = dir != nil, dirErr
	for _, u := range page.Items {
		if u.Licensed {
			out.Users = append(out.Users, matchOf(u, dir))
		}
	}
	return out, nil
}
