package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Direction says which way a record type syncs for a user.
type Direction string

// The directions, for contacts and for events alike.
const (
	DirectionOff     Direction = "off"
	DirectionToCRM   Direction = "to-crm"
	DirectionFromCRM Direction = "from-crm"
	DirectionBoth    Direction = "both"
)

func (d Direction) valid() bool {
	switch d {
	case DirectionOff, DirectionToCRM, DirectionFromCRM, DirectionBoth:
		return true
	}
	return false
}

// ToCRM reports whether changes in the mailbox go to the CRM.
func (d Direction) ToCRM() bool { return d == DirectionToCRM || d == DirectionBoth }

// FromCRM reports whether changes in the CRM go to the mailbox.
func (d Direction) FromCRM() bool { return d == DirectionFromCRM || d == DirectionBoth }

// How a mailbox was mapped to its Salesforce user.
const (
	MatchedByEmail    = "email"    // the one active Salesforce user with the mailbox's e-mail address
	MatchedByOverride = "override" // the admin named the Salesforce user
)

// How a ledger entry's two records were linked (LedgerEntry.MatchedBy; MatchedByEmail too).
const (
	MatchedCreated = "created"  // the mailbox's contact was created in Salesforce
	MatchedFromCRM = "from-crm" // the Salesforce Contact was created in the mailbox
	MatchedByCRMID = "crm-id"   // an Outlook contact carried the Salesforce id in CRMIDProperty
	// MatchedBySubjectTime: a new Outlook event had the subject, start and end of an unlinked
	// Salesforce Event of its owner.
	MatchedBySubjectTime = "subject-time"
)

// UserMapping is one licensed user's sync (table crmusers, row key the Entra object id): the Salesforce
// user the mailbox maps to, by id only (never the e-mail address it was found by), and the direction of
// each record type.
type UserMapping struct {
	UserID           string `table:"key,personal"` // Entra object id of the mailbox's user
	SalesforceUserID string `table:"personal"`     // the Salesforce User's id (005…): names a person in the org
	MatchedBy        string
	Contacts         Direction
	Events           Direction
	SetAt            time.Time
	SetBy            string `table:"personal"` // actor id who last set it
}

func (m *UserMapping) RowKey() (string, error)   { return tables.SimpleKey("user id", m.UserID) }
func (m *UserMapping) SetRowKey(rk string) error { m.UserID = rk; return nil }

// MappingInput is what an admin sends: an empty SalesforceUserID means "find the Salesforce user by the
// mailbox's e-mail address"; an empty direction is "off".
type MappingInput struct {
	SalesforceUserID string
	Contacts         Direction
	Events           Direction
}

// MappingPage is a page of mappings.
type MappingPage struct {
	Mappings []UserMapping
	Next     string
}

// Page sizes of ListUserMappings.
const (
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// userIDRE is the shape of a User id: key prefix 005, 15 or 18 characters (Object reference, User; the
// 18-character form is what the API returns).
var userIDRE = regexp.MustCompile(`^005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$`)

// GetUserMapping shows a user's mapping; ok false when the user has none.
func (s *Service) GetUserMapping(ctx context.Context, tenant core.TenantID, userID string) (UserMapping, bool, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return UserMapping{}, false, err
	}
	uid, err := core.ParseObjectID(userID)
	if err != nil {
		return UserMapping{}, false, invalid("userId must be the user's Entra object id (a GUID)")
	}
	m, err := s.o.Data.Users.Get(ctx, tenant, uid)
	if errors.Is(err, tables.ErrNotFound) {
		return UserMapping{UserID: uid}, false, nil
	}
	if err != nil {
		return UserMapping{}, false, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("read mapping: %w", err))
	}
	return m, true, nil
}

// ListUserMappings pages over the tenant's mappings in user id order.
func (s *Service) ListUserMappings(ctx context.Context, tenant core.TenantID, token string, pageSize int) (MappingPage, error) {
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return MappingPage{}, invalid(fmt.Sprintf("pageSize must be 1 to %d", MaxPageSize))
	}
	if _, err := s.tenant(ctx, tenant); err != nil {
		return MappingPage{}, err
	}
	p, err := s.o.Data.Users.List(ctx, tenant, &tables.ListOptions{PageSize: pageSize, Token: token})
	if err != nil {
		if token != "" {
			return MappingPage{}, apperr.New(apperr.Invalid, "pageToken is not one this listing gave", err)
		}
		return MappingPage{}, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("list mappings: %w", err))
	}
	out := MappingPage{Mappings: p.Items, Next: p.Next}
	if out.Mappings == nil {
		out.Mappings = []UserMapping{}
	}
	return out, nil
}

// SetUserMapping maps a licensed user's mailbox to a Salesforce user and sets the directions. The
// Salesforce user is checked (an override must be an active user of the org) or found by the mailbox's
// e-mail address (exactly one active user must have it), so it needs a working connection.
func (s *Service) SetUserMapping(ctx context.Context, a core.Actor, tenant core.TenantID, userID string, in MappingInput) (UserMapping, error) {
	const action = "crm.user.set"
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return UserMapping{}, err
	}
	uid, err := core.ParseObjectID(userID)
	if err != nil {
		return UserMapping{}, invalid("userId must be the user's Entra object id (a GUID)")
	}
	fail := func(err error) (UserMapping, error) {
		return UserMapping{}, s.userAudit(ctx, tenant, a, action, uid, err)
	}
	if err := writable(t); err != nil {
		if errors.Is(err, errDeleting) {
			return UserMapping{}, err
		}
		return fail(err)
	}
	if in.Contacts == "" {
		in.Contacts = DirectionOff
	}
	if in.Events == "" {
		in.Events = DirectionOff
	}
	if !in.Contacts.valid() || !in.Events.valid() {
		return fail(invalid("contacts and events must each be one of off, to-crm, from-crm, both"))
	}
	if in.SalesforceUserID != "" && !userIDRE.MatchString(in.SalesforceUserID) {
		return fail(invalid("salesforceUserId must be a Salesforce User id: 15 or 18 letters and digits starting with 005"))
	}
	u, err := s.o.Store.Users.Get(ctx, tenant, uid)
	switch {
	case errors.Is(err, tables.ErrNotFound) || err == nil && !u.Licensed:
		return fail(apperr.New(apperr.NotFound, "no licensed user with this id", nil))
	case err != nil:
		return fail(apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("read user: %w", err)))
	}
	if _, ok, err := s.connection(ctx, tenant); err != nil {
		return fail(err)
	} else if !ok {
		return fail(errNotConnected)
	}
	var cred salesforce.Credential
	if err := loadCredential(ctx, s.o.Secrets, s.o.Sealer, tenant, &cred); err != nil {
		if errors.Is(err, errNoCredential) {
			return fail(apperr.New(apperr.Conflict, "the stored credential is missing or unreadable; PUT the connection again", nil))
		}
		return fail(apperr.New(apperr.Unavailable, "the secret store is unavailable; retry", err))
	}
	m := UserMapping{UserID: uid, Contacts: in.Contacts, Events: in.Events, SetAt: s.o.Now(), SetBy: a.ID}
	var soql string
	if in.SalesforceUserID != "" {
		m.MatchedBy = MatchedByOverride
		soql = "SELECT Id FROM User WHERE Id = " + salesforce.Quote(in.SalesforceUserID) + " AND IsActive = true LIMIT 2"
	} else {
		m.MatchedBy = MatchedByEmail
		mail := u.Mail
		if mail == "" {
			mail = u.UserPrincipalName
		}
		if mail == "" {
			return fail(apperr.New(apperr.Conflict, "the mailbox has no e-mail address to match by; give salesforceUserId", nil))
		}
		soql = "SELECT Id FROM User WHERE Email = " + salesforce.Quote(mail) + " AND IsActive = true LIMIT 2"
	}
	var ids []string
	_, err = s.o.Salesforce.Query(ctx, tenant, cred, soql, func(raw json.RawMessage) error {
		var r struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		return fail(apperr.New(apperr.Unavailable, "Salesforce did not answer the user lookup; run the connection test", err))
	}
	switch {
	case len(ids) == 0 && m.MatchedBy == MatchedByOverride:
		return fail(invalid("salesforceUserId names no active user of the org"))
	case len(ids) == 0:
		return fail(apperr.New(apperr.Conflict, "no active Salesforce user has the mailbox's e-mail address; give salesforceUserId", nil))
	case len(ids) > 1:
		return fail(apperr.New(apperr.Conflict, "more than one active Salesforce user has the mailbox's e-mail address; give salesforceUserId", nil))
	}
	m.SalesforceUserID = ids[0]
	if _, err := s.o.Data.Users.Upsert(ctx, tenant, m); err != nil {
		return fail(apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("write mapping: %w", err)))
	}
	if err := s.userAudit(ctx, tenant, a, action, uid, nil); err != nil {
		return UserMapping{}, err
	}
	return m, nil
}

// DeleteUserMapping stops the user's sync. The ledger stays, so mapping the user again matches the
// records already synced instead of creating them twice; erasing the user removes it.
func (s *Service) DeleteUserMapping(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error {
	const action = "crm.user.delete"
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if t.State == registry.TenantDeleting {
		return errDeleting
	}
	uid, err := core.ParseObjectID(userID)
	if err != nil {
		return invalid("userId must be the user's Entra object id (a GUID)")
	}
	if err := s.o.Data.Users.Delete(ctx, tenant, uid); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return s.userAudit(ctx, tenant, a, action, uid, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("delete mapping: %w", err)))
	}
	return s.userAudit(ctx, tenant, a, action, uid, nil)
}

// userAudit records a mapping change against the user (by object id only).
func (s *Service) userAudit(ctx context.Context, tenant core.TenantID, a core.Actor, action, userID string, err error) error {
	return s.trail().Record(ctx, tenant, a, action, "user", userID, err)
}
