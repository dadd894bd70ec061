package presence

import (
	"encoding/json"
	"strings"
)

// Directions of presence sync, per tenant (Tenant.PBXSettings "direction").
const (
	DirectionTeamsToPBX = "teams-to-pbx"
	DirectionPBXToTeams = "pbx-to-teams"
	DirectionBoth       = "both"
)

// Teams presence pairs a PBX call may set (setPresence accepts only these for a call; Busy/InACall does
// not trigger Teams' busy-on-busy, per Swyx/Enreach, so a tenant may prefer DoNotDisturb/Presenting as
// aurenz does: next-capabilities.md §2.1).
const (
	CallBusy = "Busy/InACall"
	CallDND  = "DoNotDisturb/Presenting"
	// DNDPair is what DND on the PBX sets in Teams.
	DNDPair = "DoNotDisturb/Presenting"
)

// SyncSettings are the tenant's choices about the two directions, kept in Tenant.PBXSettings beside the
// connector's non-secret settings (the set-up functions write them).
type SyncSettings struct {
	// Direction: teams-to-pbx (the default: the PBX → Teams direction writes into Teams and needs the
	// Presence.ReadWrite.All consent, which a tenant grants when it chooses it), pbx-to-teams or both.
	Direction string `json:"direction,omitempty"`
	// CallPresence is the Teams pair a PBX call sets: Busy/InACall (default) or DoNotDisturb/Presenting.
	CallPresence string `json:"callPresence,omitempty"`
}

// ParseSyncSettings reads the settings from Tenant.PBXSettings; anything missing or unknown is the
// default, so a tenant never syncs in a direction it did not choose.
func ParseSyncSettings(pbxSettings string) SyncSettings {
	var s SyncSettings
	if strings.TrimSpace(pbxSettings) != "" {
		_ = json.Unmarshal([]byte(pbxSettings), &s)
	}
	switch s.Direction {
	case DirectionPBXToTeams, DirectionBoth:
	default:
		s.Direction = DirectionTeamsToPBX
	}
	if s.CallPresence != CallDND {
		s.CallPresence = CallBusy
	}
	return s
}

// ToPBX reports whether Teams presence is pushed to the PBX.
func (s SyncSettings) ToPBX() bool { return s.Direction != DirectionPBXToTeams }

// ToTeams reports whether PBX presence is written into Teams.
func (s SyncSettings) ToTeams() bool { return s.Direction != DirectionTeamsToPBX }

// ValidDirection reports whether d names a direction.
func ValidDirection(d string) bool {
	return d == DirectionTeamsToPBX || d == DirectionPBXToTeams || d == DirectionBoth
}

// ValidCallPresence reports whether p is a pair a call may set.
func ValidCallPresence(p string) bool { return p == CallBusy || p == CallDND }
