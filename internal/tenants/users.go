package tenants

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// LicensedUser is a licensed user as their tenant's admins see them in the list: the profile copied from
// Microsoft 365 (sealed at rest) and whether processing is restricted.
type LicensedUser struct {
	ID          string
	DisplayName string
	Mail        string
	UPN         string
	Restricted  bool
}

// UserPage is one page of licensed users. With a search it may hold fewer than asked, even none, while
// Next leads on: the search reads the users it is given a page of, not the whole tenant at once.
type UserPage struct {
	Users []LicensedUser
	Next  string
}

// MaxUserPage bounds a page of ListLicensedUsers (and the rows one call reads).
const MaxUserPage = 500

// ListLicensed lists a page of the tenant's licensed users, those whose name, e-mail, sign-in name or
// object id contains search (case-insensitively) when search is given. The profile fields are sealed,
// so the search runs here after they are opened, over at most size rows per call.
func (s *Service) ListLicensed(ctx context.Context, tenant core.TenantID, search, token string, size int) (UserPage, error) {
	if size <= 0 || size > MaxUserPage {
		size = 100
	}
	if len(search) > 256 {
		return UserPage{}, apperr.New(apperr.Invalid, "search is at most 256 characters", nil)
	}
	if _, err := s.getTenant(ctx, tenant); err != nil {
		return UserPage{}, err
	}
	page, err := s.st.Users.List(ctx, tenant, &tables.ListOptions{PageSize: size, Token: token})
	if err != nil {
		if errors.Is(err, tables.ErrBadPageToken) {
			return UserPage{}, apperr.New(apperr.Invalid, "pageToken is not one this list gave", err)
		}
		return UserPage{}, fmt.Errorf("list users: %w", err)
	}
	needle := strings.ToLower(strings.TrimSpace(search))
	out := UserPage{Users: []LicensedUser{}, Next: page.Next}
	for _, u := range page.Items {
		if !u.Licensed {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(u.DisplayName+"\x00"+u.Mail+"\x00"+u.UserPrincipalName+"\x00"+u.ID), needle) {
			continue
		}
		out.Users = append(out.Users, LicensedUser{ID: u.ID, DisplayName: u.DisplayName, Mail: u.Mail, UPN: u.UserPrincipalName,
			Restricted: u.ProcessingRestricted})
	}
	return out, nil
}
