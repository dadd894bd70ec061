package presence

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// MaxUsersPerSubscription is Graph's limit of user ids in one presence subscription.
const MaxUsersPerSubscription = 650

// Plan says which licensed users each service user's subscription covers.
type Plan struct {
	// Members maps a service user to the users its subscription covers (sorted); service users without
	// members are absent and hold no subscription.
	Members map[string][]string
	// Needed is how many service users the tenant needs: ceil(licensed / 650).
	Needed int
	// Missing is how many more service users the admin must connect (Needed minus those connected).
	Missing int
	// Unassigned users are not covered for lack of service users.
	Unassigned []string
}

// Pack assigns licensed users to service users, at most MaxUsersPerSubscription each, one subscription
// per service user (Graph allows one presence subscription per app and delegated user). It is stable:
// users keep the service user whose subscription already covers them, so adding or removing a user
// changes one subscription, not all of them. New users fill the service users in order (existing
// subscriptions first). With enough service users nobody is left out: every service user is filled to
// the limit before the next is used.
func Pack(licensed, serviceUsers []string, current map[string][]string) Plan {
	want := make(map[string]bool, len(licensed))
	for _, u := range licensed {
		want[u] = true
	}
	p := Plan{Members: map[string][]string{}, Needed: (len(want) + MaxUsersPerSubscription - 1) / MaxUsersPerSubscription}
	p.Missing = max(0, p.Needed-len(serviceUsers))

	// Existing subscriptions keep their still-licensed members.
	assigned := make(map[string]bool, len(want))
	order := slices.Clone(serviceUsers)
	slices.SortStableFunc(order, func(a, b string) int { return boolCmp(len(current[b]) > 0, len(current[a]) > 0) })
	for _, su := range order {
		var keep []string
		for _, u := range current[su] {
			if want[u] && !assigned[u] && len(keep) < MaxUsersPerSubscription {
				keep = append(keep, u)
				assigned[u] = true
			}
		}
		if len(keep) > 0 {
			p.Members[su] = keep
		}
	}
	var rest []string
	for u := range want {
		if !assigned[u] {
			rest = append(rest, u)
		}
	}
	slices.Sort(rest)
	for _, su := range order {
		free := MaxUsersPerSubscription - len(p.Members[su])
		if free <= 0 || len(rest) == 0 {
			continue
		}
		n := min(free, len(rest))
		p.Members[su] = append(p.Members[su], rest[:n]...)
		rest = rest[n:]
	}
	for su := range p.Members {
		slices.Sort(p.Members[su])
	}
	p.Unassigned = rest
	return p
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Resource is the presence subscription resource for user ids, in Graph's documented form.
func Resource(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "'" + id + "'"
	}
	return "/communications/presences?$filter=id in (" + strings.Join(q, ",") + ")"
}

var resourceRE = regexp.MustCompile(`^/?communications/presences\?\$filter=id in \(([^)]*)\)$`)

// ParseResource returns the user ids of a presence subscription resource (sorted).
func ParseResource(resource string) ([]string, error) {
	m := resourceRE.FindStringSubmatch(resource)
	if m == nil {
		return nil, fmt.Errorf("not a presence subscription resource")
	}
	var ids []string
	for _, p := range strings.Split(m[1], ",") {
		p = strings.TrimSpace(p)
		if len(p) < 3 || p[0] != '\'' || p[len(p)-1] != '\'' {
			return nil, fmt.Errorf("presence resource: malformed id list")
		}
		id := p[1 : len(p)-1]
		if strings.IndexFunc(id, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			return nil, fmt.Errorf("presence resource: an id is not an object id")
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}
