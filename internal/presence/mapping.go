package presence

import (
	"fmt"
	"maps"
	"strings"

	"github.com/connecthub/connecthub/internal/presence/connector"
)

// Mapping turns Teams presence (availability and activity) into a PBX state. Rules are keyed by
// "availability/activity", "*/activity" or "availability", most specific first; anything unknown is
// Offline (a PBX should never show someone reachable on a guess).
type Mapping struct {
	rules map[string]connector.State
}

// DefaultMapping is what a PBX user expects: Available → Available; Busy, in a call or a meeting → Busy;
// Do not disturb and presenting → DND; Away and Be right back → Away; Offline (and unknown) → Offline.
func DefaultMapping() Mapping {
	return Mapping{rules: map[string]connector.State{
		"available":                 connector.Available,
		"availableidle":             connector.Available,
		"busy":                      connector.Busy,
		"busyidle":                  connector.Busy,
		"donotdisturb":              connector.DND,
		"away":                      connector.Away,
		"berightback":               connector.Away,
		"offline":                   connector.Offline,
		"presenceunknown":           connector.Offline,
		"*/inacall":                 connector.Busy,
		"*/inaconferencecall":       connector.Busy,
		"*/inameeting":              connector.Busy,
		"*/presenting":              connector.DND,
		"*/urgentinterruptionsonly": connector.DND,
	}}
}

// ParseMapping applies overrides to base. Syntax: rules separated by ";" or ",", each
// "Availability=State", "Availability/Activity=State" or "*/Activity=State", with State one of
// Available, Busy, DND, Away, Offline (any letter case). Example: "Away=Available;*/InAMeeting=DND".
func ParseMapping(base Mapping, s string) (Mapping, error) {
	m := Mapping{rules: maps.Clone(base.rules)}
	if m.rules == nil {
		m.rules = map[string]connector.State{}
	}
	for _, rule := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		k, v, ok := strings.Cut(rule, "=")
		k = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(k), " ", ""))
		st, valid := parseState(strings.TrimSpace(v))
		avail, act, hasAct := strings.Cut(k, "/")
		switch {
		case !ok || k == "" || !valid:
			return Mapping{}, fmt.Errorf("presence mapping: rule %q: want Availability[/Activity]=Available|Busy|DND|Away|Offline", rule)
		case avail == "" || (hasAct && act == "") || (avail == "*" && !hasAct):
			return Mapping{}, fmt.Errorf("presence mapping: rule %q: empty availability or activity", rule)
		}
		m.rules[k] = st
	}
	return m, nil
}

func parseState(s string) (connector.State, bool) {
	for _, st := range []connector.State{connector.Available, connector.Busy, connector.DND, connector.Away, connector.Offline} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// State maps one presence.
func (m Mapping) State(availability, activity string) connector.State {
	a, act := strings.ToLower(availability), strings.ToLower(activity)
	for _, k := range []string{a + "/" + act, "*/" + act, a} {
		if st, ok := m.rules[k]; ok {
			return st
		}
	}
	return connector.Offline
}

// Rules returns a copy of the mapping's rules, keyed as ParseMapping stores them (lower case,
// "availability", "availability/activity" or "*/activity").
func (m Mapping) Rules() map[string]connector.State { return maps.Clone(m.rules) }
