package crm_test

import (
	"context"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

func tenantsOf(f *syncFixture, ids ...core.TenantID) func(context.Context) iter.Seq2[registry.Tenant, error] {
	return func(ctx context.Context) iter.Seq2[registry.Tenant, error] {
		return func(yield func(registry.Tenant, error) bool) {
			for _, id := range ids {
				t, err := f.env.Store.Tenants.Get(ctx, id)
				if !yield(t, err) {
					return
				}
			}
		}
	}
}

// The SyncCRM timer runs every mapped user of every connected tenant; one user's failure is reported
// and the others still sync; a tenant without a connection is passed over. Health then shows each
// user's last run (a mailbox Graph refuses named as such) and the failing records by name with what
// to do.
func TestSyncJobAndHealth(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t)
	bob := f.licensed(t, f.tenant, "11111111-0000-4000-8000-00000000000b", "bob@contoso.example", true)
	f.sf.AddUser(sftest.User{Username: "bob@contoso.example.crm", Email: "bob@contoso.example"})
	if _, err := f.svc.SetUserMapping(ctx, admin, f.tenant, bob, crm.MappingInput{Contacts: crm.DirectionBoth}); err != nil {
		t.Fatal(err)
	}
	off := f.licensed(t, f.tenant, "11111111-0000-4000-8000-00000000000c", "cy@contoso.example", true)
	f.sf.AddUser(sftest.User{Username: "cy@contoso.example.crm", Email: "cy@contoso.example"})
	if _, err := f.svc.SetUserMapping(ctx, admin, f.tenant, off, crm.MappingInput{Contacts: crm.DirectionOff}); err != nil {
		t.Fatal(err)
	}
	bare := f.fixture.tenant(t, registry.TenantActive) // no connection
	f.put(graphtest.Contact{GivenName: "Grace", Surname: "Hopper", Emails: []string{"grace@navy.example"}})
	f.graph.PutContact(string(f.tenant), bob, "contacts", graphtest.Contact{GivenName: "Linus", Surname: "Pauling", Emails: []string{"linus@caltech.example"}})
	f.graph.PutContact(string(f.tenant), bob, "contacts", graphtest.Contact{GivenName: "Prince", DisplayName: "Prince"})
	f.graph.PutContact(string(f.tenant), off, "contacts", graphtest.Contact{GivenName: "Not", Surname: "Synced"})

	job := crm.NewSyncJob(f.syncer, tenantsOf(f, f.tenant, bare), jobs.OpenLeases(f.env.Store.DB()), 0, nil)
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.sf.Contacts()) != 2 || len(f.byEmail("grace@navy.example")) != 1 || len(f.byEmail("linus@caltech.example")) != 1 {
		t.Fatalf("after the run: %v", f.sf.Contacts())
	}

	// Bob's mailbox cannot be read (Graph refuses); Ada's new contact still goes.
	f.graph.Fail("GET", "/users/"+bob+"/contactFolders", graphtest.Failure{Status: 403, Code: "ErrorAccessDenied"})
	f.put(graphtest.Contact{GivenName: "Alan", Surname: "Turing", Emails: []string{"alan@bletchley.example"}})
	err := job.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), bob) {
		t.Fatalf("a failing user: %v", err)
	}
	if len(f.byEmail("alan@bletchley.example")) != 1 {
		t.Fatal("one user's failure held up another's")
	}

	h, err := f.svc.SyncHealth(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Connected || len(h.Users) != 3 || h.FailingRecords != 1 || h.FailingUsers != 1 {
		t.Fatalf("health %+v", h)
	}
	for _, u := range h.Users {
		switch u.UserID {
		case f.ada:
			if u.LastSuccessAt.IsZero() || u.LastCode != "" || len(u.Failing) != 0 {
				t.Errorf("ada %+v", u)
			}
		case bob:
			// The last run could not read the mailbox (and says what to do); the record refused
			// before still shows by name.
			if u.LastCode != crm.CodeMailboxDenied || !strings.Contains(u.Action, "Contacts.ReadWrite") || len(u.Failing) != 1 || u.Failing[0].DisplayName != "Prince" ||
				u.Failing[0].Code != "REQUIRED_FIELD_MISSING" || !strings.Contains(u.Failing[0].Action, "last name") {
				t.Errorf("bob %+v", u)
			}
		case off:
			if !u.LastRunAt.IsZero() || u.Contacts != crm.DirectionOff {
				t.Errorf("cy %+v", u)
			}
		}
	}
	if h, err := f.svc.SyncHealth(ctx, bare); err != nil || h.Connected || len(h.Users) != 0 {
		t.Fatalf("the bare tenant: %+v, %v", h, err)
	}
}

// A user whose mapping syncs events only is run by the timer too.
func TestSyncJobRunsEventOnlyUsers(t *testing.T) {
	t.Parallel()
	f, clk := newEventFixture(t, crm.DirectionToCRM)
	day := clk.Now().Add(24 * time.Hour).Truncate(time.Hour)
	f.putEvent(graphtest.CalEvent{Subject: "Planning", Start: day, End: day.Add(time.Hour)})
	job := crm.NewSyncJob(f.syncer, tenantsOf(f, f.tenant), jobs.OpenLeases(f.env.Store.DB()), 0, nil)
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.bySubject("Planning")) != 1 {
		t.Fatalf("events-only user not synced: %v", f.sf.Records("Event"))
	}
}
