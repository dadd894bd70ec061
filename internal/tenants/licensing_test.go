package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
)

func uid(n int) string { return fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", n) }

// rawUser reads a users row as stored, without the store's decoding.
func rawUser(t *testing.T, f *fixture, tenant core.TenantID, id string) map[string]any {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storetest.ConnectionString(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := svc.NewClient(f.env.Prefix+registry.TableUsers).GetEntity(ctx, string(tenant), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Value, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAssign(t *testing.T) {
	t.Parallel()
	disabled := user(uid(9), "dora")
	disabled.Enabled = false
	dir := newFakeDirectory(user(uid(1), "ada"), user(uid(2), "bob"), user(uid(3), "cy"), disabled)
	f := newFixture(t, dir)
	id := f.activeTenant(t, 2)

	l, err := f.svc.Assign(ctx, operator, id, strings.ToUpper(uid(1)))
	if err != nil || l.UserID != uid(1) || l.Assigned != 1 || l.Purchased != 2 || l.AssignedBy != operator.ID || !l.AssignedAt.Equal(start) {
		t.Fatalf("Assign = %+v, %v", l, err)
	}
	u, err := f.st.Users.Get(ctx, id, uid(1))
	if err != nil || u.DisplayName != "ada" || u.Mail != "ada@contoso.example" || u.Phone != "+49 30 1234" || !u.Licensed {
		t.Errorf("stored user = %+v, %v", u, err)
	}
	raw := rawUser(t, f, id, uid(1))
	for _, k := range []string{"DisplayName", "UserPrincipalName", "Mail", "Phone", "Department", "JobTitle"} {
		if s, _ := raw[k].(string); s == "" || strings.Contains(s, "ada") || strings.Contains(s, "Sales") || strings.Contains(s, "+49") {
			t.Errorf("stored %s = %q: want a sealed value", k, s)
		}
	}

	f.clock.Advance(time.Second)
	if _, err := f.svc.Assign(ctx, operator, id, uid(1)); err != nil { // again: harmless
		t.Errorf("second Assign of the same user: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.svc.Assign(ctx, operator, id, uid(2)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	_, err = f.svc.Assign(ctx, operator, id, uid(3))
	wantCode(t, err, apperr.Conflict)
	if !strings.Contains(apperr.PublicMessage(err), "all 2 purchased licenses are assigned") {
		t.Errorf("over-limit message = %q, want a clear one", apperr.PublicMessage(err))
	}

	g := f.activeTenant(t, 10)
	for _, tc := range []struct {
		name string
		user string
		want apperr.Code
	}{
		{"not in the directory", uid(42), apperr.NotFound},
		{"disabled account", uid(9), apperr.Conflict},
		{"not a GUID", "ada@contoso.example", apperr.Invalid},
	} {
		_, err := f.svc.Assign(ctx, operator, g, tc.user)
		if apperr.CodeOf(err) != tc.want {
			t.Errorf("%s: err = %v, want code %v", tc.name, err, tc.want)
		}
	}
	if _, err := f.st.Users.Get(ctx, g, uid(9)); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("a refused user was stored: %v", err)
	}
	want := fmt.Sprint([]string{"license.assign/success/" + operator.ID, "license.assign/success/" + operator.ID,
		"license.assign/success/" + operator.ID, "license.assign/denied/" + operator.ID})
	if got := fmt.Sprint(f.auditTrail(t, id)); got != want {
		t.Errorf("audit = %s\nwant    %s", got, want)
	}

	suspended := f.activeTenant(t, 10)
	if _, err := f.svc.Suspend(ctx, operator, suspended); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Assign(ctx, operator, suspended, uid(1))
	wantCode(t, err, apperr.Conflict)

	noDir := newFixture(t, nil)
	_, err = noDir.svc.Assign(ctx, operator, noDir.activeTenant(t, 1), uid(1))
	wantCode(t, err, apperr.Unavailable)
}

// Concurrent assignments never exceed the purchased licenses.
func TestAssignRaceNeverExceedsPurchased(t *testing.T) {
	t.Parallel()
	var users []DirectoryUser
	for i := range 12 {
		users = append(users, user(uid(i), fmt.Sprintf("u%d", i)))
	}
	f := newFixture(t, newFakeDirectory(users...))
	id := f.activeTenant(t, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	okCount := 0
	for i := range 12 {
		wg.Go(func() {
			_, err := f.svc.Assign(ctx, operator, id, uid(i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				okCount++
			case apperr.CodeOf(err) != apperr.Conflict:
				t.Errorf("assign %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	assigned, err := f.svc.AssignedUsers(ctx, id)
	if err != nil || len(assigned) > 3 || len(assigned) != okCount {
		t.Errorf("assigned %d (%v), successes %d; want at most 3 and equal", len(assigned), err, okCount)
	}
	if okCount == 0 {
		t.Error("no assignment succeeded")
	}
}

func TestUnassignRemovesTheUsersData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newFakeDirectory(user(uid(1), "ada"), user(uid(2), "bob")))
	id := f.activeTenant(t, 5)
	for _, u := range []string{uid(1), uid(2)} {
		if _, err := f.svc.Assign(ctx, operator, id, u); err != nil {
			t.Fatal(err)
		}
		if _, err := presence.OpenData(f.st.DB()).Presence.Upsert(ctx, id, presence.Presence{UserID: u, Availability: "Busy", ChangedAt: start}); err != nil {
			t.Fatal(err)
		}
		if err := presence.OpenData(f.st.DB()).Ledger.InsertBatch(ctx, id, []presence.LedgerEntry{
			{Resource: UserLedgerResource(u), RecordID: "c1", LastModified: start},
			{Resource: UserLedgerResource(u), RecordID: "c2", LastModified: start},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := presence.OpenData(f.st.DB()).Ledger.InsertBatch(ctx, id, []presence.LedgerEntry{{Resource: "contacts", RecordID: "x", LastModified: start}}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if err := f.svc.Unassign(ctx, operator, id, uid(1)); err != nil {
		t.Fatal(err)
	}
	lk, _ := LicenseKey(Product, uid(1))
	gone := map[string]error{
		"license":  func() error { _, err := f.svc.data.Licenses.Get(ctx, id, lk); return err }(),
		"user":     func() error { _, err := f.st.Users.Get(ctx, id, uid(1)); return err }(),
		"presence": func() error { _, err := presence.OpenData(f.st.DB()).Presence.Get(ctx, id, uid(1)); return err }(),
	}
	for what, err := range gone {
		if !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("%s of the unassigned user: err = %v, want ErrNotFound", what, err)
		}
	}
	ledger := map[string]int{}
	for e, err := range presence.OpenData(f.st.DB()).Ledger.All(ctx, id, nil) {
		if err != nil {
			t.Fatal(err)
		}
		ledger[e.Resource]++
	}
	if fmt.Sprint(ledger) != fmt.Sprint(map[string]int{uid(2): 2, "contacts": 1}) {
		t.Errorf("ledger after unassign = %v; want only the other user's and the shared resource", ledger)
	}
	if _, err := f.st.Users.Get(ctx, id, uid(2)); err != nil {
		t.Errorf("other user lost: %v", err)
	}
	f.clock.Advance(time.Second)
	err := f.svc.Unassign(ctx, operator, id, uid(1))
	wantCode(t, err, apperr.NotFound)
	trail := f.auditTrail(t, id)
	if got := trail[len(trail)-2:]; fmt.Sprint(got) != fmt.Sprint([]string{"license.unassign/success/" + operator.ID, "license.unassign/denied/" + operator.ID}) {
		t.Errorf("audit tail = %v", got)
	}
}

// A user whose profile could not be written (crash midway) is repaired by assigning again.
func TestAssignRepairsMissingProfile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newFakeDirectory(user(uid(1), "ada")))
	id := f.activeTenant(t, 1)
	if _, err := f.svc.data.Licenses.Insert(ctx, id, Assignment{Product: Product, UserID: uid(1), AssignedAt: start.Add(-time.Hour), AssignedBy: "x"}); err != nil {
		t.Fatal(err)
	}
	l, err := f.svc.Assign(ctx, operator, id, uid(1))
	if err != nil || !l.AssignedAt.Equal(start.Add(-time.Hour)) || l.Assigned != 1 {
		t.Fatalf("Assign = %+v, %v; want the existing license kept", l, err)
	}
	if u, err := f.st.Users.Get(ctx, id, uid(1)); err != nil || u.DisplayName != "ada" {
		t.Errorf("profile = %+v, %v", u, err)
	}
}

// The list shows licensed users only, with their opened profile; a search matches name, e-mail or id
// case-insensitively; paging goes through every user; a forged token is refused.
func TestListLicensed(t *testing.T) {
	t.Parallel()
	dir := newFakeDirectory(user(uid(1), "ada"), user(uid(2), "bob"), user(uid(3), "cy"))
	f := newFixture(t, dir)
	id := f.activeTenant(t, 3)
	for _, n := range []int{1, 2, 3} {
		if _, err := f.svc.Assign(ctx, operator, id, uid(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Unassign(ctx, operator, id, uid(2)); err != nil {
		t.Fatal(err)
	}
	names := func(p UserPage) string {
		var s []string
		for _, u := range p.Users {
			s = append(s, u.DisplayName)
		}
		return strings.Join(s, ",")
	}
	all, err := f.svc.ListLicensed(ctx, id, "", "", 0)
	if err != nil || names(all) != "ada,cy" || all.Users[0].Mail != "ada@contoso.example" {
		t.Fatalf("list = %+v, %v", all, err)
	}
	for search, want := range map[string]string{"ADA": "ada", "cy@contoso": "cy", uid(3)[24:]: "cy", "nobody": ""} {
		p, err := f.svc.ListLicensed(ctx, id, search, "", 0)
		if err != nil || names(p) != want {
			t.Errorf("search %q = %q %v, want %q", search, names(p), err, want)
		}
	}
	var seen []string
	token := ""
	for i := 0; i < 5; i++ {
		p, err := f.svc.ListLicensed(ctx, id, "", token, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := names(p); n != "" {
			seen = append(seen, n)
		}
		if token = p.Next; token == "" {
			break
		}
	}
	if strings.Join(seen, ",") != "ada,cy" {
		t.Errorf("paged = %v", seen)
	}
	if _, err := f.svc.ListLicensed(ctx, id, "", "not-a-token!", 0); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("forged token: %v", err)
	}
}
