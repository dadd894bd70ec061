package presence_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/presence"
)

// The parsers read what admins type (mappings) and what we stored (subscription resources): they must
// never panic, and what they accept must round-trip.
func FuzzPresenceParsers(f *testing.F) {
	f.Add("Away=Available;*/InAMeeting=DND", "/communications/presences?$filter=id in ('a','b')")
	f.Add("busy/inacall = dnd, ", "communications/presences?$filter=id in ('x')")
	f.Add("=;==;/=Busy", "/communications/presences?$filter=id in ()")
	f.Fuzz(func(t *testing.T, mapping, resource string) {
		if m, err := presence.ParseMapping(presence.DefaultMapping(), mapping); err == nil {
			if st := m.State("Busy", "InACall"); !st.Valid() {
				t.Errorf("mapping %q gives invalid state %q", mapping, st)
			}
		}
		ids, err := presence.ParseResource(resource)
		if err != nil {
			return
		}
		for _, id := range ids {
			if strings.ContainsAny(id, "',") {
				t.Errorf("id %q keeps a delimiter", id)
			}
		}
		again, err := presence.ParseResource(presence.Resource(ids))
		if err != nil || !slices.Equal(again, ids) {
			t.Errorf("round trip of %q: %v, %v", resource, again, err)
		}
	})
}
