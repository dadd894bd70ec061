package tenants

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/retention"
)

var (
	ctx   = context.Background()
	start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

// fakeDirectory is a tenant directory in memory: the Directory contract, with a change feed for delta.
type fakeDirectory struct {
	mu      sync.Mutex
	users   map[string]DirectoryUser
	pending []DirectoryChange // changes since the last delta link
	gen     int               // delta links issued
	expired bool              // the next non-empty link is refused as expired
	calls   map[string]int
}

func newFakeDirectory(users ...DirectoryUser) *fakeDirectory {
	d := &fakeDirectory{users: map[string]DirectoryUser{}, calls: map[string]int{}}
	for _, u := range users {
		d.users[u.ID] = u
	}
	return d
}

func (d *fakeDirectory) User(_ context.Context, _ core.TenantID, id string) (DirectoryUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["user"]++
	u, ok := d.users[id]
	if !ok {
		return DirectoryUser{}, ErrUserNotFound
	}
	return u, nil
}

func (d *fakeDirectory) UsersDelta(_ context.Context, _ core.TenantID, link string, fn func(DirectoryChange) error) (string, error) {
	d.mu.Lock()
	d.calls["delta"]++
	var feed []DirectoryChange
	switch {
	case link != "" && d.expired:
		d.expired = false
		d.mu.Unlock()
		return "", ErrDeltaExpired
	case link == "":
		d.calls["full"]++
		for _, u := range d.users {
			feed = append(feed, DirectoryChange{ID: u.ID, Disabled: !u.Enabled})
		}
	default:
		feed = d.pending
	}
	d.pending = nil
	d.gen++
	next := "delta-" + string(rune('a'+d.gen))
	d.mu.Unlock()
	for _, c := range feed {
		if err := fn(c); err != nil {
			return "", err
		}
	}
	return next, nil
}

// change updates (or with nil removes) a user and records it in the delta feed.
func (d *fakeDirectory) change(id string, u *DirectoryUser) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u == nil {
		delete(d.users, id)
		d.pending = append(d.pending, DirectoryChange{ID: id, Removed: true})
		return
	}
	d.users[id] = *u
	d.pending = append(d.pending, DirectoryChange{ID: id, Disabled: !u.Enabled})
}

func (d *fakeDirectory) count(what string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[what]
}

type fixture struct {
	env   *storetest.Env
	st    *registry.Registry
	clock *clock.Fake
	svc   *Service
	dir   *fakeDirectory
}

var testPolicy = retention.Policy{CancelledRetention: 24 * time.Hour, SuspendedRetention: 7 * 24 * time.Hour,
	LicenseRetention: 30 * 24 * time.Hour, BillingRetention: 90 * 24 * time.Hour}

func newFixture(t *testing.T, dir *fakeDirectory) *fixture {
	t.Helper()
	clk := clock.NewFake(start)
	env := storetest.NewEnv(t, storetest.Options{Now: clk.Now})
	o := Options{Store: env.Store, Keys: env.Keys, Now: clk.Now, Policy: testPolicy,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		AppID: "11111111-2222-3333-4444-555555555555", RedirectURI: "https://connecthub.example.eu/api/onboarding/consent",
		ConsentTTL: 72 * time.Hour, Regions: map[string]bool{"westeurope": true, "northeurope": true}, BookingWindowDays: 21}
	pd := presence.OpenData(env.DB)
	o.UserData, o.Activity = []UserData{pd}, pd
	if dir != nil {
		o.Directory = dir
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, st: env.Store, clock: clk, svc: svc, dir: dir}
}

// activeTenant registers an active tenant with a data key and n purchased licenses.
func (f *fixture) activeTenant(t *testing.T, purchased int) core.TenantID {
	t.Helper()
	id := f.env.NewTenant(t)
	now := f.clock.Now()
	if err := f.st.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, PurchasedLicenses: purchased,
		HomeRegion: "westeurope", ConsentedAt: now, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return id
}

// auditTrail returns "action/outcome/actor" of every entry, oldest first.
func (f *fixture) auditTrail(t *testing.T, tenant core.TenantID) []string {
	t.Helper()
	var out []string
	opts := &tables.ListOptions{}
	for {
		page, err := audit.OpenLog(f.st.DB()).List(ctx, tenant, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			out = append(out, e.Action+"/"+e.Outcome+"/"+e.ActorID)
		}
		if page.Next == "" {
			break
		}
		opts.Token = page.Next
	}
	slices.Reverse(out) // the table lists newest first
	return out
}

func wantCode(t *testing.T, err error, want apperr.Code) {
	t.Helper()
	if err == nil || apperr.CodeOf(err) != want {
		t.Fatalf("err = %v (code %v), want code %v", err, apperr.CodeOf(err), want)
	}
}

func user(id, name string) DirectoryUser {
	return DirectoryUser{ID: id, DisplayName: name, UserPrincipalName: name + "@contoso.example", Mail: name + "@contoso.example",
		Phone: "+49 30 1234", Department: "Sales", JobTitle: "Rep", Enabled: true}
}
