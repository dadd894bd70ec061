package graphtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CalEvent is an event of a room mailbox's calendar as the fake holds it, with what a room's copy of a
// meeting carries in Exchange: the subject (by default the organizer's name, AddOrganizerToSubject —
// practical365.com/room-mailbox-meeting-organizer), the organizer, the attendees and the body. A cache
// that asks for them gets them.
type CalEvent struct {
	ID          string
	ICalUID     string
	Subject     string
	Organizer   string // e-mail address
	Attendees   []string
	Body        string
	Location    string // "Room" unless set
	Sensitivity string // normal unless set
	Start, End  time.Time
	IsAllDay    bool
	ShowAs      string // busy unless set
	IsCancelled bool
	// A series: Count occurrences every EveryDays days from Start. Exceptions change one occurrence
	// (by index) or delete it (Deleted: Graph's calendarView then leaves it out).
	EveryDays  int
	Count      int
	Exceptions map[int]Exception
	Modified   time.Time
	// Properties are the single-value extended properties, by id as written (events.go).
	Properties map[string]string
}

// Exception is one changed or deleted occurrence of a series.
type Exception struct {
	Start, End time.Time
	Deleted    bool
}

type calendar struct {
	tenant, mailbox string // as the calendar was first named (an address or an object id)
	mailboxID       string // the room mailbox's object id: notifications name it, not the address
	events          map[string]*CalEvent
	// The delta log of calendarView delta (events.go): each change by event id, and the instance ids a
	// deleted event had, which its @removed items name.
	log      []userChange
	version  int
	minDelta int
	gone     map[string][]string
	txns     map[string]string // transactionId → the event a POST created
}

// roomEventsResource matches a subscription to a mailbox's events (Learn, outlook-change-notifications-
// overview: resource /users/{id}/events; a calendarView cannot be subscribed to).
var roomEventsResource = regexp.MustCompile(`(?i)^/?users/([^/?]+)/events$`)

// MaxOutlookLifetime is the longest expiry of a subscription to Outlook events without resource data:
// 10,080 minutes (GH concepts/includes/change-notifications-subscription-lifetime.md, ms.date 11/07/2024;
// older copies that say 4,230 are stale).
const MaxOutlookLifetime = 10080 * time.Minute

func mailboxID(tenant, email string) string {
	h := sha256.Sum256([]byte(tenant + "/" + strings.ToLower(email)))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

func (g *Graph) cal(tenant, room string) *calendar {
	if g.calendars == nil {
		g.calendars = map[string]map[string]*calendar{}
	}
	if g.calendars[tenant] == nil {
		g.calendars[tenant] = map[string]*calendar{}
	}
	k := strings.ToLower(room)
	c := g.calendars[tenant][k]
	if c == nil {
		c = &calendar{tenant: tenant, mailbox: room, mailboxID: mailboxID(tenant, room), events: map[string]*CalEvent{}}
		g.calendars[tenant][k] = c
	}
	return c
}

// PutEvent creates or changes an event in room's calendar and returns the change notifications Graph
// would post (created or updated) to the subscriptions on the room's events; Send delivers them.
func (g *Graph) PutEvent(tenant, room string, e CalEvent) []Delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cal(tenant, room)
	change := "updated"
	if _, ok := c.events[e.ID]; !ok {
		change = "created"
	}
	if e.ICalUID == "" {
		e.ICalUID = "040000008200E00074C5B7101A82E008" + hex.EncodeToString([]byte(e.ID))
	}
	now := time.Now
	if g.EventClock != nil {
		now = g.EventClock
	}
	e.Modified = now().UTC()
	c.events[e.ID] = &e
	c.logChange(e.ID)
	return g.eventNotifications(tenant, room, c, change, e.ID)
}

// DeleteEvent deletes an event (a whole series with its master) and returns the deleted notifications.
func (g *Graph) DeleteEvent(tenant, room, id string) []Delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cal(tenant, room)
	c.remove(id)
	return g.eventNotifications(tenant, room, c, "deleted", id)
}

// eventNotifications are basic notifications (no resource data): the resource names the mailbox by
// object id and the event by id (Learn, outlook-change-notifications-overview, "Example notification").
func (g *Graph) eventNotifications(tenant, room string, c *calendar, change, id string) []Delivery {
	var out []Delivery
	for _, s := range g.subs {
		m := roomEventsResource.FindStringSubmatch(s.Resource)
		if s.Tenant != tenant || m == nil || !strings.EqualFold(m[1], room) && !strings.EqualFold(m[1], c.mailboxID) {
			continue
		}
		res := "Users/" + c.mailboxID + "/Events/" + id
		item := map[string]any{"subscriptionId": s.ID, "subscriptionExpirationDateTime": s.ExpiresAt.Format("2006-01-02T15:04:05.0000000Z"),
			"changeType": change, "resource": res, "clientState": s.ClientState, "tenantId": tenant,
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Event", "@odata.id": res,
				"@odata.etag": etag(id), "id": id}}
		body, _ := json.Marshal(map[string]any{"value": []any{item}})
		out = append(out, Delivery{URL: s.NotificationURL, Body: body})
	}
	return out
}

// EventSubscriptions returns the live subscriptions to room's events.
func (g *Graph) EventSubscriptions(tenant, room string) []Subscription {
	var out []Subscription
	for _, s := range g.Subscriptions() {
		if m := roomEventsResource.FindStringSubmatch(s.Resource); m != nil && s.Tenant == tenant && strings.EqualFold(m[1], room) {
			out = append(out, s)
		}
	}
	return out
}

// etag is a new version tag for every change of the item, as an event's @odata.etag is (the change
// key): two changes of one event never share it, so a receiver's duplicate detection keeps both.
func etag(id string) string {
	h := sha256.Sum256([]byte(id + "/" + strconv.FormatInt(time.Now().UnixNano(), 10)))
	return `W/"` + base64.StdEncoding.EncodeToString(h[:12]) + `"`
}

type instance struct {
	id, typ    string
	start, end time.Time
	e          *CalEvent
}

// expand is what calendarView returns of one event: a single instance, or the occurrences and
// exceptions of a series (never the series master; deleted occurrences left out) — Learn,
// user-list-calendarview: "returns occurrences, exceptions, and single instances".
func expand(e *CalEvent) []instance {
	if e.EveryDays <= 0 || e.Count <= 0 {
		return []instance{{id: e.ID, typ: "singleInstance", start: e.Start, end: e.End, e: e}}
	}
	var out []instance
	for i := range e.Count {
		in := instance{id: fmt.Sprintf("%s_%d", e.ID, i), typ: "occurrence",
			start: e.Start.AddDate(0, 0, i*e.EveryDays), end: e.End.AddDate(0, 0, i*e.EveryDays), e: e}
		if x, ok := e.Exceptions[i]; ok {
			if x.Deleted {
				continue
			}
			in.typ, in.start, in.end = "exception", x.Start, x.End
		}
		out = append(out, in)
	}
	return out
}

func graphDateTime(t time.Time) map[string]any {
	return map[string]any{"dateTime": t.UTC().Format("2006-01-02T15:04:05.0000000"), "timeZone": "UTC"}
}

func (in instance) json() map[string]any { return in.jsonAs(false) }

// jsonAs is the instance's wire form; text: the body as plain text, as Prefer:
// outlook.body-content-type="text" asks (GH api-reference/v1.0/api/event-get.md, "Prefer:
// outlook.body-content-type"); else HTML, Graph's default.
func (in instance) jsonAs(text bool) map[string]any {
	e := in.e
	show := e.ShowAs
	if show == "" {
		show = "busy"
	}
	body := map[string]any{"contentType": "html", "content": "<html><body>" + e.Body + "</body></html>"}
	if text {
		body = map[string]any{"contentType": "text", "content": e.Body}
	}
	att := []any{}
	for _, a := range e.Attendees {
		att = append(att, map[string]any{"type": "required", "status": map[string]any{"response": "none"},
			"emailAddress": map[string]any{"name": a, "address": a}})
	}
	return map[string]any{"@odata.etag": `W/"` + strconv.FormatInt(e.Modified.UnixNano(), 36) + `"`,
		"id": in.id, "iCalUId": e.ICalUID, "subject": e.Subject, "bodyPreview": e.Body,
		"body": body, "changeKey": strconv.FormatInt(e.Modified.UnixNano(), 36),
		"organizer": map[string]any{"emailAddress": map[string]any{"name": e.Organizer, "address": e.Organizer}},
		"attendees": att, "start": graphDateTime(in.start), "end": graphDateTime(in.end), "isAllDay": e.IsAllDay,
		"showAs": show, "isCancelled": e.IsCancelled, "type": in.typ, "sensitivity": cmpOr(e.Sensitivity, "normal"),
		"lastModifiedDateTime": e.Modified.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"location":             map[string]any{"displayName": cmpOr(e.Location, "Room")}}
}

// routeCalendars answers GET /users/{room}/calendarView. Graph requires both window parameters, reads
// the offset in each (no offset: UTC), returns the instances overlapping the window, 10 per page by
// default with an @odata.nextLink, and honours $select (Learn, user-list-calendarview).
func (g *Graph) routeCalendars(r *http.Request, who Identity, parts []string) (reply, bool) {
	if r.Method != http.MethodGet || len(parts) != 3 || !strings.EqualFold(parts[0], "users") || !strings.EqualFold(parts[2], "calendarView") {
		return reply{}, false
	}
	q := r.URL.Query()
	parse := func(s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		return time.Parse("2006-01-02T15:04:05", s)
	}
	start, err1 := parse(q.Get("startDateTime"))
	end, err2 := parse(q.Get("endDateTime"))
	if err1 != nil || err2 != nil {
		return graphError(http.StatusBadRequest, "ErrorInvalidParameter",
			"This request requires a time window specified by the query string parameters StartDateTime and EndDateTime."), true
	}
	if !who.AppOnly() && who.UserID == "" {
		return graphError(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again."), true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A mailbox is known as a room, by a calendar the fake holds, or as a user of the directory (an
	// existing user's empty calendar answers an empty list, not an error).
	if _, ok := g.places[who.Tenant][strings.ToLower(parts[1])]; !ok && g.calendars[who.Tenant][strings.ToLower(parts[1])] == nil &&
		g.users[who.Tenant][parts[1]] == nil {
		return graphError(http.StatusNotFound, "ErrorInvalidUser", "The requested user '"+parts[1]+"' is invalid."), true
	}
	c := g.cal(who.Tenant, parts[1])
	var ins []instance
	for _, e := range c.events {
		for _, in := range expand(e) {
			if in.end.After(start) && in.start.Before(end) {
				ins = append(ins, in)
			}
		}
	}
	sort.Slice(ins, func(i, j int) bool {
		if !ins[i].start.Equal(ins[j].start) {
			return ins[i].start.Before(ins[j].start)
		}
		return ins[i].id < ins[j].id
	})
	size := g.CalendarPageSize
	if size <= 0 {
		size = 10
	}
	if v, err := strconv.Atoi(q.Get("$top")); err == nil && v > 0 && g.CalendarPageSize <= 0 {
		size = min(v, 1000)
	}
	off := 0
	if s := q.Get("$skip"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			off = min(n, len(ins))
		}
	}
	stop := min(off+size, len(ins))
	sel := selectOf(r)
	expandProp, bad := expandOf(r)
	if bad {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid $expand clause."), true
	}
	value := []any{}
	for _, in := range ins[off:stop] {
		m := in.jsonAs(preferText(r))
		if len(sel) > 0 {
			out := map[string]any{"@odata.etag": m["@odata.etag"], "id": m["id"]}
			for _, s := range sel {
				if v, ok := m[s]; ok {
					out[s] = v
				}
			}
			m = out
		}
		if expandProp != nil {
			// The series' properties show on each of its instances (singlevaluelegacyextendedproperty-get.md).
			props := []any{}
			for id, v := range in.e.Properties {
				if strings.EqualFold(id, *expandProp) {
					props = append(props, map[string]any{"id": id, "value": v})
				}
			}
			m["singleValueExtendedProperties"] = props
		}
		value = append(value, m)
	}
	body := map[string]any{"@odata.context": g.context("users('" + parts[1] + "')/calendarView"), "value": value}
	if stop < len(ins) {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("$skip", strconv.Itoa(stop))
		body["@odata.nextLink"] = g.srv.URL + r.URL.Path + "?" + next.Encode()
	}
	return reply{status: http.StatusOK, body: body}, true
}

// checkEventSubscription applies Graph's rules to a subscription on a mailbox's events: app-only is
// allowed (Calendars.Read), the expiry may be at most 10,080 minutes ahead, and one under 45 minutes is
// raised to 45 (Learn, subscription resource type).
func checkEventSubscription(s *Subscription, exp time.Time) *reply {
	// Contacts have the lifetimes and change types of events (next-capabilities.md §3.1).
	if roomEventsResource.FindStringSubmatch(s.Resource) == nil && contactsResource.FindStringSubmatch(s.Resource) == nil {
		return nil
	}
	if exp.After(time.Now().Add(MaxOutlookLifetime + time.Minute)) {
		r := graphError(http.StatusBadRequest, "ExtensionError", "Subscription expiration can only be 10080 minutes in the future.")
		return &r
	}
	if s.IncludeResourceData && exp.After(time.Now().Add(1440*time.Minute+time.Minute)) {
		r := graphError(http.StatusBadRequest, "ExtensionError", "Subscription expiration can only be 1440 minutes in the future with resource data.")
		return &r
	}
	if !slices.ContainsFunc(strings.Split(s.ChangeType, ","), func(c string) bool {
		return c == "created" || c == "updated" || c == "deleted"
	}) {
		r := graphError(http.StatusBadRequest, "ExtensionError", "changeType must be created, updated or deleted")
		return &r
	}
	if min45 := time.Now().Add(45 * time.Minute); exp.Before(min45) {
		s.ExpiresAt = min45.UTC()
	}
	return nil
}
