package crm_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// fakeNotifier keeps the notices; fail makes the next calls fail.
type fakeNotifier struct {
	mu      sync.Mutex
	notices []crm.FailureNotice
	fail    int
}

func (n *fakeNotifier) SyncFailing(_ context.Context, _ core.TenantID, fn crm.FailureNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return errors.New("mail server down")
	}
	n.notices = append(n.notices, fn)
	return nil
}

func (n *fakeNotifier) count() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.notices) }

// Ten runs in a row that fail tell the user and the admin who connected Salesforce, once, naming the
// record and what to do; a notice that could not be sent is tried again the next run; a clean run ends
// the streak, and a new streak of ten is told again.
func TestSyncFailureNotice(t *testing.T) {
	t.Parallel()
	n := &fakeNotifier{}
	f := newSyncFixtureWith(t, crm.DirectionToCRM, nil, func(o *crm.SyncOptions) { o.Notifier = n })
	prince := f.put(graphtest.Contact{GivenName: "Prince", DisplayName: "Prince", Emails: []string{"prince@paisley.example"}})
	for i := 1; i < crm.NotifyAfter; i++ {
		if rep := f.sync(t); rep.Failed != 1 {
			t.Fatalf("run %d: %+v", i, rep)
		}
	}
	if n.count() != 0 {
		t.Fatalf("told after %d failed runs", crm.NotifyAfter-1)
	}
	n.fail = 1
	f.sync(t) // the tenth: the notice fails
	if st := f.state(t); st.FailedRuns != crm.NotifyAfter || !st.NotifiedAt.IsZero() {
		t.Fatalf("state after a notice that failed: %+v", st)
	}
	f.sync(t) // the eleventh: sent
	f.sync(t)
	f.sync(t)
	if n.count() != 1 {
		t.Fatalf("%d notices, want 1", n.count())
	}
	got := n.notices[0]
	if got.UserID != f.ada || got.AdminID != admin.ID || got.FailedRuns != crm.NotifyAfter+1 || got.Code != crm.CodeRecordsFailed ||
		got.Action == "" || len(got.Records) != 1 || got.Records[0].DisplayName != "Prince" || got.Records[0].Code != "REQUIRED_FIELD_MISSING" ||
		got.Records[0].Action == "" {
		t.Fatalf("notice %+v", got)
	}
	if st := f.state(t); st.NotifiedAt.IsZero() {
		t.Fatalf("the notice is not recorded: %+v", st)
	}

	// Fixed: the streak ends; a new one (Graph refusing the mailbox) is told again after ten runs.
	f.put(graphtest.Contact{ID: prince, GivenName: "Prince", Surname: "Nelson", Emails: []string{"prince@paisley.example"}})
	f.sync(t)
	if st := f.state(t); st.FailedRuns != 0 || !st.NotifiedAt.IsZero() || st.LastCode != "" {
		t.Fatalf("after a clean run: %+v", st)
	}
	for range crm.NotifyAfter {
		f.graph.Fail("GET", "/users/"+f.ada+"/contactFolders", graphtest.Failure{Status: http.StatusForbidden, Code: "ErrorAccessDenied"})
		if _, err := f.syncer.SyncUser(ctx, f.tenant, f.ada); err == nil {
			t.Fatal("a refused mailbox did not fail the run")
		}
	}
	if n.count() != 2 || n.notices[1].Code != crm.CodeMailboxDenied || len(n.notices[1].Records) != 0 {
		t.Fatalf("second streak: %+v", n.notices)
	}
	h, err := f.svc.SyncHealth(ctx, f.tenant)
	if err != nil || len(h.Users) != 1 || h.Users[0].LastCode != crm.CodeMailboxDenied || h.Users[0].Action == "" ||
		h.Users[0].FailedRuns != crm.NotifyAfter || h.Users[0].NotifiedAt.IsZero() {
		t.Fatalf("health: %+v, %v", h, err)
	}
}

// The e-mail notice goes through Graph sendMail from ConnectHub's own mailbox to the user and the admin
// (their addresses read from the customer's directory), in plain text naming each failing record and
// what to do, and is not kept in the sender's Sent Items; without Mail.Send Graph refuses and the
// notice is tried again the next run.
func TestMailNotifier(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	const operator = "0e0e0e0e-0000-4000-8000-0000000000ff"
	f.auth.GrantConsent(operator, clientID)
	f.graph.PutUser(string(f.tenant), graphtest.User{ID: f.ada, Mail: "ada@contoso.example", AccountEnabled: true})
	f.graph.PutUser(string(f.tenant), graphtest.User{ID: admin.ID, UserPrincipalName: "it-admin@contoso.example", AccountEnabled: true})
	mn := crm.MailNotifier{SenderTenant: operator, From: "noreply@connecthub.example",
		Clients: func(ctx context.Context, t core.TenantID) (crm.MailClient, error) { return f.mailboxes.client(ctx, t) }}
	notice := crm.FailureNotice{UserID: f.ada, AdminID: admin.ID, FailedRuns: 10, Code: crm.CodeRecordsFailed, Action: "fix them",
		Records: []crm.FailingRecord{{DisplayName: "Prince\r\nBcc: someone", Code: "REQUIRED_FIELD_MISSING", Fields: "LastName", Action: "give it a last name"}}}
	err := mn.SyncFailing(ctx, f.tenant, notice)
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusForbidden || len(f.graph.Sent()) != 0 {
		t.Fatalf("without Mail.Send: %v", err)
	}
	f.auth.AppRoles = append(f.auth.AppRoles, "Mail.Send")
	f.mailboxes.forget() // a new token carries the new role
	if err := mn.SyncFailing(ctx, f.tenant, notice); err != nil {
		t.Fatal(err)
	}
	sent := f.graph.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %+v", sent)
	}
	m := sent[0]
	if m.Tenant != operator || m.From != "noreply@connecthub.example" || strings.Join(m.To, ",") != "ada@contoso.example,it-admin@contoso.example" ||
		m.SaveToSentItems || !strings.EqualFold(m.ContentType, "text") || !strings.Contains(m.Subject, "10 times") {
		t.Fatalf("message %+v", m)
	}
	if !strings.Contains(m.Body, "- Prince  Bcc: someone (REQUIRED_FIELD_MISSING, LastName): give it a last name") || !strings.Contains(m.Body, "What to do: fix them.") {
		t.Fatalf("body:\n%s", m.Body)
	}
}
