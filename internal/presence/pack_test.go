package presence_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
	}
	return out
}

func sus(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("5e000000-0000-4000-8000-%012d", i)
	}
	return out
}

func sizes(p presence.Plan, order []string) []int {
	var out []int
	for _, su := range order {
		if n := len(p.Members[su]); n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func TestPackSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		licensed     int
		serviceUsers int
		wantSizes    []int
		wantNeeded   int
		wantMissing  int
		wantUncov    int
	}{
		{"1 user, 1 service user", 1, 1, []int{1}, 1, 0, 0},
		{"650 users fit one subscription", 650, 1, []int{650}, 1, 0, 0},
		{"650 users, a spare service user stays unused", 650, 2, []int{650}, 1, 0, 0},
		{"651 users need two service users", 651, 2, []int{650, 1}, 2, 0, 0},
		{"651 users with one service user: one missing", 651, 1, []int{650}, 2, 1, 1},
		{"2000 users need four", 2000, 4, []int{650, 650, 650, 50}, 4, 0, 0},
		{"2000 users with three: one missing, 50 uncovered", 2000, 3, []int{650, 650, 650}, 4, 1, 50},
		{"no service user at all", 1, 0, nil, 1, 1, 1},
		{"no licensed users", 0, 2, nil, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sus(tt.serviceUsers)
			p := presence.Pack(users(tt.licensed), s, nil)
			if got := sizes(p, s); !slices.Equal(got, tt.wantSizes) {
				t.Errorf("subscription sizes = %v, want %v", got, tt.wantSizes)
			}
			if p.Needed != tt.wantNeeded || p.Missing != tt.wantMissing || len(p.Unassigned) != tt.wantUncov {
				t.Errorf("needed/missing/uncovered = %d/%d/%d, want %d/%d/%d", p.Needed, p.Missing, len(p.Unassigned),
					tt.wantNeeded, tt.wantMissing, tt.wantUncov)
			}
			seen := map[string]bool{}
			for _, m := range p.Members {
				if len(m) > presence.MaxUsersPerSubscription {
					t.Errorf("a subscription holds %d users", len(m))
				}
				for _, u := range m {
					if seen[u] {
						t.Errorf("user %s in two subscriptions", u)
					}
					seen[u] = true
				}
			}
			if len(seen)+len(p.Unassigned) != tt.licensed {
				t.Errorf("covered %d + uncovered %d != licensed %d", len(seen), len(p.Unassigned), tt.licensed)
			}
		})
	}
}

// Adding and removing users touches only the subscriptions concerned.
func TestPackIsStable(t *testing.T) {
	t.Parallel()
	s := sus(3)
	all := users(1400)
	first := presence.Pack(all, s, nil)

	// User 10 (in the first subscription) leaves; a new user arrives.
	next := slices.Concat(all[:10], all[11:], []string{"ffffffff-0000-4000-8000-000000000000"})
	second := presence.Pack(next, s, first.Members)
	changed := 0
	for _, su := range s {
		if !slices.Equal(first.Members[su], second.Members[su]) {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d subscriptions changed, want 1 (the leaver's slot is reused by the newcomer)", changed)
	}
	// A service user that goes away hands its users to those with room, others stay put.
	third := presence.Pack(all, []string{s[0], s[2]}, first.Members)
	if !slices.Equal(third.Members[s[0]], first.Members[s[0]]) {
		t.Error("a full subscription was reshuffled")
	}
	if third.Missing != 1 || len(third.Unassigned) != 1400-1300 {
		t.Errorf("missing %d, uncovered %d", third.Missing, len(third.Unassigned))
	}
}

func TestResourceRoundTrip(t *testing.T) {
	t.Parallel()
	ids := users(3)
	r := presence.Resource(ids)
	if r != "/communications/presences?$filter=id in ('"+ids[0]+"','"+ids[1]+"','"+ids[2]+"')" {
		t.Errorf("resource = %s", r)
	}
	got, err := presence.ParseResource(r)
	if err != nil || !slices.Equal(got, ids) {
		t.Errorf("parse = %v, %v", got, err)
	}
	for _, bad := range []string{"/users", "/communications/presences?$filter=id in (a,b)", ""} {
		if _, err := presence.ParseResource(bad); err == nil {
			t.Errorf("ParseResource(%q) accepted", bad)
		}
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	def := presence.DefaultMapping()
	tests := []struct {
		availability, activity string
		want                   connector.State
	}{
		{"Available", "Available", connector.Available},
		{"AvailableIdle", "Available", connector.Available},
		{"Busy", "Busy", connector.Busy},
		{"Busy", "InACall", connector.Busy},
		{"Busy", "InAMeeting", connector.Busy},
		{"DoNotDisturb", "Presenting", connector.DND},
		{"DoNotDisturb", "DoNotDisturb", connector.DND},
		{"Busy", "Presenting", connector.DND},
		{"Away", "Away", connector.Away},
		{"BeRightBack", "BeRightBack", connector.Away},
		{"Offline", "OffWork", connector.Offline},
		{"PresenceUnknown", "PresenceUnknown", connector.Offline},
		{"SomethingNew", "Whatever", connector.Offline},
	}
	for _, tt := range tests {
		if got := def.State(tt.availability, tt.activity); got != tt.want {
			t.Errorf("%s/%s = %s, want %s", tt.availability, tt.activity, got, tt.want)
		}
	}

	m, err := presence.ParseMapping(def, "Away=Available; */InAMeeting=DND, busy/inacall = dnd")
	if err != nil {
		t.Fatal(err)
	}
	over := []struct {
		availability, activity string
		want                   connector.State
	}{
		{"Away", "Away", connector.Available},
		{"Busy", "InAMeeting", connector.DND},
		{"Busy", "InACall", connector.DND},
		{"Busy", "Busy", connector.Busy},
		{"BeRightBack", "BeRightBack", connector.Away},
	}
	for _, tt := range over {
		if got := m.State(tt.availability, tt.activity); got != tt.want {
			t.Errorf("override %s/%s = %s, want %s", tt.availability, tt.activity, got, tt.want)
		}
	}
	if def.State("Away", "Away") != connector.Away {
		t.Error("ParseMapping changed its base")
	}
	for _, bad := range []string{"Away", "Away=Sleeping", "=Busy", "*=Busy", "Busy/=DND"} {
		if _, err := presence.ParseMapping(def, bad); err == nil {
			t.Errorf("ParseMapping(%q) accepted", bad)
		}
	}
}
