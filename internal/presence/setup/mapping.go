package setup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

// MappingView is a tenant's presence mapping: its own overrides, and the effective rules every
// presence is mapped by (the defaults with the overrides applied), keyed "availability",
// "availability/activity" or "*/activity" in lower case.
type MappingView struct {
	Overrides map[string]string
	Effective map[string]string
}

// Graph's presence vocabulary (presence resource type, v1.0: availability and activity values). A rule
// naming anything else could never match, so it is refused rather than silently ignored.
var (
	availabilities = []string{"available", "availableidle", "away", "berightback", "busy", "busyidle", "donotdisturb",
		"offline", "presenceunknown"}
	activities = []string{"available", "away", "berightback", "busy", "donotdisturb", "inacall", "inaconferencecall",
		"inactive", "inameeting", "offline", "offwork", "outofoffice", "presenceunknown", "presenting",
		"urgentinterruptionsonly"}
)

// maxRules bounds a tenant's overrides: the vocabulary has fewer than 150 sensible keys.
const maxRules = 150

func rulesOf(m presence.Mapping) map[string]string {
	out := map[string]string{}
	for k, v := range m.Rules() {
		out[k] = string(v)
	}
	return out
}

func (s *Service) mappingView(stored string) (MappingView, error) {
	own, err := presence.ParseMapping(presence.Mapping{}, stored)
	if err != nil {
		return MappingView{}, fmt.Errorf("stored presence mapping: %w", err)
	}
	eff, err := presence.ParseMapping(s.o.DefaultMapping, stored)
	if err != nil {
		return MappingView{}, fmt.Errorf("stored presence mapping: %w", err)
	}
	return MappingView{Overrides: rulesOf(own), Effective: rulesOf(eff)}, nil
}

// GetMapping answers the tenant's overrides and the effective mapping.
func (s *Service) GetMapping(ctx context.Context, tenant core.TenantID) (MappingView, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return MappingView{}, err
	}
	v, err := s.mappingView(t.PresenceMap)
	if err != nil {
		// Written before validation existed: show it is broken rather than fail the admin who can fix it.
		return MappingView{}, apperr.New(apperr.Conflict, "the stored presence mapping is invalid; PUT a new one", err)
	}
	return v, nil
}

// canonical validates overrides ({"Away": "Available", "*/InAMeeting": "DND"}) and returns them in
// ParseMapping's syntax, sorted, so equal mappings are stored equally.
func canonical(overrides map[string]string) (string, error) {
	if len(overrides) > maxRules {
		return "", invalid(fmt.Sprintf("at most %d rules", maxRules))
	}
	var rules []string
	for k, v := range overrides {
		key := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(k), " ", ""))
		avail, act, hasAct := strings.Cut(key, "/")
		switch {
		case strings.ContainsAny(key, ";,="):
			return "", invalid(fmt.Sprintf("rule %q: a key is Availability, Availability/Activity or */Activity", k))
		case avail != "*" && !slices.Contains(availabilities, avail):
			return "", invalid(fmt.Sprintf("rule %q: unknown availability; Graph's are Available, AvailableIdle, Away, BeRightBack, Busy, BusyIdle, DoNotDisturb, Offline, PresenceUnknown", k))
		case avail == "*" && !hasAct:
			return "", invalid(fmt.Sprintf("rule %q: * needs an activity (*/Activity)", k))
		case hasAct && !slices.Contains(activities, act):
			return "", invalid(fmt.Sprintf("rule %q: unknown activity; Graph's are Available, Away, BeRightBack, Busy, DoNotDisturb, InACall, InAConferenceCall, Inactive, InAMeeting, Offline, OffWork, OutOfOffice, PresenceUnknown, Presenting, UrgentInterruptionsOnly", k))
		}
		st := connector.State("")
		for _, s := range []connector.State{connector.Available, connector.Busy, connector.DND, connector.Away, connector.Offline} {
			if strings.EqualFold(strings.TrimSpace(v), string(s)) {
				st = s
			}
		}
		if st == "" {
			return "", invalid(fmt.Sprintf("rule %q: the PBX state must be Available, Busy, DND, Away or Offline", k))
		}
		rules = append(rules, key+"="+string(st))
	}
	slices.Sort(rules)
	out := strings.Join(rules, ";")
	if _, err := presence.ParseMapping(presence.Mapping{}, out); err != nil {
		return "", apperr.New(apperr.Invalid, "the mapping does not parse", err)
	}
	return out, nil
}

// SetMapping replaces the tenant's overrides (an empty map restores the defaults) and answers the
// effective mapping.
func (s *Service) SetMapping(ctx context.Context, a core.Actor, tenant core.TenantID, overrides map[string]string) (MappingView, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return MappingView{}, err
	}
	fail := func(err error) (MappingView, error) {
		if errors.Is(err, errDeleting) {
			return MappingView{}, err
		}
		return MappingView{}, s.audit(ctx, tenant, a, "presence.mapping.set", "tenant", string(tenant), err)
	}
	if err := writable(t); err != nil {
		return fail(err)
	}
	stored, err := canonical(overrides)
	if err != nil {
		return fail(err)
	}
	t, err = s.o.Store.Tenants.Update(ctx, tenant, func(t *registry.Tenant) error {
		if err := writable(*t); err != nil {
			return err
		}
		t.PresenceMap, t.UpdatedAt = stored, s.o.Now()
		return nil
	})
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			err = apperr.New(apperr.Unavailable, errStoreFailed.Public, fmt.Errorf("update tenant: %w", err))
		}
		return fail(err)
	}
	if err := s.audit(ctx, tenant, a, "presence.mapping.set", "tenant", string(tenant), nil); err != nil {
		return MappingView{}, err
	}
	return s.mappingView(t.PresenceMap)
}
