package crm

import (
	"context"
	"fmt"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// NotifyAfter is how many runs of a user's sync in a row must fail before the user and the tenant's
// admin are told: the number the product documents (issue 17; SmartCloud Connect mails "after 10 sync
// failures in a row", next-capabilities.md §3.8). At SyncCRM's 15 minutes that is 2½ hours.
const NotifyAfter = 10

// Notifier tells people that a user's sync keeps failing. It knows nothing of Salesforce or of how the
// message travels: e-mail through Graph (MailNotifier) is one way.
type Notifier interface {
	SyncFailing(ctx context.Context, tenant core.TenantID, n FailureNotice) error
}

// FailureNotice is what the user and the admin are told, in memory only: whose sync fails, what the
// last run said and what to do, and the records that fail by name (opened from crmsyncerrors, which
// keeps them for this).
type FailureNotice struct {
	UserID     string // the mailbox's user (Entra object id)
	AdminID    string // who set up the CRM connection (Entra object id); "" when a function key did
	FailedRuns int
	Code       string // the last run's code (crmsyncstate.LastCode)
	Action     string // what to do about it
	Records    []FailingRecord
}

// maxNoticeRecords bounds the records a notice names; the health API lists them all.
const maxNoticeRecords = 50

// notify builds the notice of a user's failing sync and hands it to the Notifier.
func (s *Syncer) notify(ctx context.Context, tenant core.TenantID, st SyncState) error {
	n := FailureNotice{UserID: st.UserID, FailedRuns: st.FailedRuns, Code: st.LastCode, Action: action(st.LastCode)}
	if c, err := s.o.Data.Connections.Get(ctx, tenant, ProviderSalesforce); err == nil && c.ConfiguredBy != "function-key" {
		n.AdminID = c.ConfiguredBy
	}
	p, err := s.o.Data.SyncErrors.ListPrefix(ctx, tenant, st.UserID+tables.KeySep, &tables.ListOptions{PageSize: maxNoticeRecords})
	if err != nil {
		return fmt.Errorf("read sync errors: %w", err)
	}
	for _, e := range p.Items {
		n.Records = append(n.Records, FailingRecord{Type: e.Type, DisplayName: e.DisplayName, Code: e.Code, Fields: e.Fields,
			Attempts: e.Attempts, FirstFailedAt: e.FirstFailedAt, LastFailedAt: e.LastFailedAt, Action: action(e.Code)})
	}
	if err := s.o.Notifier.SyncFailing(ctx, tenant, n); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
