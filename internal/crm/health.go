package crm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
)

// Health is a tenant's sync as its admin sees it: per mapped user, how the last run went, the records
// that fail with what to do, and the connection's last test.
type Health struct {
	Connected      bool
	LastTestCode   string
	LastTestedAt   time.Time
	Users          []UserHealth
	FailingUsers   int
	FailingRecords int
}

// UserHealth is one mapped user's sync, contacts and events together: the latest run, the earliest
// last success of the two, the first problem's code, and the records and failed runs of both.
type UserHealth struct {
	UserID         string
	Contacts       Direction
	Events         Direction
	LastRunAt      time.Time
	LastSuccessAt  time.Time
	LastCode       string
	Synced, Failed int
	FailedRuns     int       // runs in a row that did not end clean
	NotifiedAt     time.Time // when the user and the admin were told of this streak; zero: not (yet)
	Action         string    // what to do about LastCode; "" when nothing is wrong
	Failing        []FailingRecord
}

// FailingRecord is a record that does not sync: its name (shown to the admin and the user so they can
// find it), Salesforce's code and fields, and what to do.
type FailingRecord struct {
	Type          string
	DisplayName   string
	Code          string
	Fields        string
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
	Action        string
}

// actions say what to do about a run's code or a record's Salesforce statusCode.
var actions = map[string]string{
	CodeDailyLimit:                      "the Salesforce org's daily API allocation is nearly used up; the sync resumes as the rolling 24 hours free requests, or raise the allocation",
	CodeCredentialMissing:               "the stored credential is missing; PUT the CRM connection again",
	CodeRecordsFailed:                   "some records were refused (by Salesforce, or by Outlook for contacts from Salesforce); fix them as listed",
	CodeMailboxDenied:                   "Microsoft Graph refused the user's mailbox: the tenant's admin grants the app Contacts.ReadWrite and Calendars.ReadWrite (the .Read ones for to-crm alone; Enterprise applications → ConnectHub → Permissions → Grant admin consent) and includes the mailbox in its RBAC for Applications scope",
	CodeSyncFailed:                      "Outlook, Salesforce or our storage failed during the run; it is tried again every run, and nothing is lost meanwhile",
	"REQUIRED_FIELD_MISSING":            "give the contact the field Salesforce requires (a last name) in Outlook",
	"INVALID_EMAIL_ADDRESS":             "correct the contact's e-mail address in Outlook",
	"STRING_TOO_LONG":                   "shorten the field Salesforce names",
	"FIELD_INTEGRITY_EXCEPTION":         "Salesforce refused the event's times (an end before the start, or longer than 14 days); shorten the event in Outlook",
	"INSUFFICIENT_ACCESS_OR_READONLY":   "give the integration user edit access to Contacts (and to the owner's records)",
	"DUPLICATES_DETECTED":               "a Salesforce duplicate rule blocked the record; merge the duplicates in Salesforce or relax the rule",
	"FIELD_CUSTOM_VALIDATION_EXCEPTION": "a validation rule of the org refused the record; fix the record or the rule",
}

func action(code string) string {
	if code == "" {
		return ""
	}
	if a, ok := actions[code]; ok {
		return a
	}
	if g, ok := strings.CutPrefix(code, CodeOutlookRefusedPrefix); ok {
		return "Outlook refused the contact from Salesforce (" + g + "); check its values in Salesforce (length, characters)"
	}
	return "Salesforce refused the record (" + code + "); check the record and the integration user's permissions"
}

// SyncHealth reads the tenant's sync health. The failing records' names are opened for the admin: that
// is what they are kept for.
func (s *Service) SyncHealth(ctx context.Context, tenant core.TenantID) (Health, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return Health{}, err
	}
	fail := func(what string, err error) (Health, error) {
		return Health{}, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("read %s: %w", what, err))
	}
	var h Health
	c, ok, err := s.connection(ctx, tenant)
	if err != nil {
		return Health{}, err
	}
	h.Connected, h.LastTestCode, h.LastTestedAt = ok, c.TestCode, c.TestedAt
	byUser := map[string]*UserHealth{}
	for m, err := range s.o.Data.Users.All(ctx, tenant, nil) {
		if err != nil {
			return fail("mappings", err)
		}
		byUser[m.UserID] = &UserHealth{UserID: m.UserID, Contacts: m.Contacts, Events: m.Events}
	}
	for st, err := range s.o.Data.SyncState.All(ctx, tenant, nil) {
		if err != nil {
			return fail("sync state", err)
		}
		u := byUser[st.UserID]
		if u == nil {
			continue // unmapped since: its state waits for a new mapping
		}
		// One row per stream (contacts, events): they add up.
		if st.LastRunAt.After(u.LastRunAt) {
			u.LastRunAt = st.LastRunAt
		}
		if u.LastSuccessAt.IsZero() || st.LastSuccessAt.Before(u.LastSuccessAt) {
			u.LastSuccessAt = st.LastSuccessAt
		}
		if u.LastCode == "" {
			u.LastCode = st.LastCode
		}
		u.Synced += st.Synced
		u.Failed += st.Failed
		u.FailedRuns = max(u.FailedRuns, st.FailedRuns)
		if st.NotifiedAt.After(u.NotifiedAt) {
			u.NotifiedAt = st.NotifiedAt
		}
		u.Action = action(u.LastCode)
	}
	for e, err := range s.o.Data.SyncErrors.All(ctx, tenant, nil) {
		if err != nil {
			return fail("sync errors", err)
		}
		u := byUser[e.UserID]
		if u == nil {
			continue
		}
		u.Failing = append(u.Failing, FailingRecord{Type: e.Type, DisplayName: e.DisplayName, Code: e.Code, Fields: e.Fields,
			Attempts: e.Attempts, FirstFailedAt: e.FirstFailedAt, LastFailedAt: e.LastFailedAt, Action: action(e.Code)})
		h.FailingRecords++
	}
	for _, u := range byUser {
		if len(u.Failing) > 0 || u.LastCode != "" {
			h.FailingUsers++
		}
		h.Users = append(h.Users, *u)
	}
	sort.Slice(h.Users, func(i, j int) bool { return h.Users[i].UserID < h.Users[j].UserID })
	return h, nil
}
