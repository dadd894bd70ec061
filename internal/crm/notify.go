package crm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
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

// MailClient is what MailNotifier needs of a tenant's app-only Graph client: users' addresses
// (User.Read.All) and sendMail (Mail.Send).
type MailClient interface {
	GetUser(ctx context.Context, id string) (graph.User, error)
	SendMail(ctx context.Context, mailbox string, m graph.Mail) error
}

var _ MailClient = (*graph.Client)(nil)

// MailNotifier e-mails a failure notice to the user and the admin through Graph sendMail, from a
// mailbox of ConnectHub's own tenant (From, with the client of SenderTenant). The recipients'
// addresses are read from the customer tenant's directory when the notice is sent and kept nowhere.
type MailNotifier struct {
	Clients      func(ctx context.Context, tenant core.TenantID) (MailClient, error)
	SenderTenant core.TenantID
	From         string
}

// SyncFailing sends the notice. A recipient Graph does not know (an admin who left) is passed over;
// with no recipient left nothing is sent and the notice counts as given.
func (m MailNotifier) SyncFailing(ctx context.Context, tenant core.TenantID, n FailureNotice) error {
	dir, err := m.Clients(ctx, tenant)
	if err != nil {
		return fmt.Errorf("graph client: %w", err)
	}
	var to []string
	seen := map[string]bool{}
	for _, id := range []string{n.UserID, n.AdminID} {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		u, err := dir.GetUser(ctx, id)
		if errors.Is(err, graph.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read recipient: %w", err)
		}
		if a := cmp.Or(u.Mail, u.UserPrincipalName); a != "" {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return nil
	}
	sender, err := m.Clients(ctx, m.SenderTenant)
	if err != nil {
		return fmt.Errorf("sender's graph client: %w", err)
	}
	subject, body := noticeText(n)
	if err := sender.SendMail(ctx, m.From, graph.Mail{To: to, Subject: subject, Body: body}); err != nil {
		return fmt.Errorf("send notice: %w", err)
	}
	return nil
}

// noticeText is the notice as plain text: what fails, what to do, and each failing record by name.
// Names come from mailboxes: control characters are taken out so a name cannot forge lines.
func noticeText(n FailureNotice) (subject, body string) {
	subject = "ConnectHub: your mailbox sync with Salesforce has failed " + strconv.Itoa(n.FailedRuns) + " times in a row"
	var b strings.Builder
	fmt.Fprintf(&b, "The sync of your contacts and calendar with Salesforce has not completed in its last %d runs.\n\n", n.FailedRuns)
	if n.Action != "" {
		fmt.Fprintf(&b, "What to do: %s.\n\n", n.Action)
	}
	if len(n.Records) > 0 {
		b.WriteString("Records that do not sync:\n")
		for _, r := range n.Records {
			what := r.Code
			if r.Fields != "" {
				what += ", " + r.Fields
			}
			fmt.Fprintf(&b, "- %s (%s): %s\n", clean(r.DisplayName), what, r.Action)
		}
		b.WriteString("\n")
	}
	b.WriteString("The sync runs every 15 minutes and picks the records up once they are fixed. Your administrator sees the sync's state in ConnectHub (CRM sync health).\n")
	return subject, b.String()
}

func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if s = strings.TrimSpace(s); s == "" {
		return "(no name)"
	}
	return s
}
