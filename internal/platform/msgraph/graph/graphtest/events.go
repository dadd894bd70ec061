package graphtest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A mailbox's calendar through calendarView delta, as Graph serves it (each behaviour with its source):
//
//   - GET /users/{id}/calendarView/delta?startDateTime=…&endDateTime=… enumerates the instances in the
//     window — single instances, occurrences and exceptions of series, never a series master — and each
//     page ends with @odata.nextLink ($skiptoken) or, on the last, @odata.deltaLink ($deltatoken); the
//     window goes only in the first call and is baked into the tokens (GH api-reference/v1.0/api/
//     event-delta.md; next-capabilities §1.4);
//   - $select is not supported there, nor $expand, $filter, $orderby or $search: 400 (event-delta.md);
//   - a resumed call returns the instances of the events changed since; an instance deleted, or one
//     that changed and now lies outside the window, comes as {"id", "@removed": {"reason": "deleted"}}
//     — the two cannot be told apart from the delta (event-delta.md, "@removed … deleted");
//   - an expired delta token is 410 Gone with syncStateNotFound: start over (delta-query-overview.md);
//   - Prefer: outlook.body-content-type="text" gives the body as text, else HTML; times are UTC unless
//     Prefer: outlook.timezone names another zone (event-get.md);
//   - GET /users/{id}/events/{id} reads one event or occurrence; an unknown id is 404 ErrorItemNotFound;
//   - POST /users/{id}/events creates a single event (201); a POST whose transactionId an earlier one
//     carried creates nothing and answers the event that one created ("A custom identifier specified by
//     a client app for the server to avoid redundant POST operations in case of client retries to
//     create the same event", GH v1.0/resources/event.md); PATCH …/events/{id} changes what the body
//     names (on an occurrence it makes an exception: the fake keeps only its new times), DELETE answers
//     204 (on an occurrence it deletes that occurrence); singleValueExtendedProperties are stored with
//     the item and found with $filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value
//     eq '…') on GET …/events, as for contacts (singlevaluelegacyextendedproperty-get.md).

func (c *calendar) logChange(id string) {
	c.version++
	c.log = append(c.log, userChange{version: c.version, id: id})
}

// remove deletes an event and keeps the ids of its instances for the @removed items (g.mu held).
func (c *calendar) remove(id string) {
	e, ok := c.events[id]
	if !ok {
		return
	}
	if c.gone == nil {
		c.gone = map[string][]string{}
	}
	for _, in := range expand(e) {
		c.gone[id] = append(c.gone[id], in.id)
	}
	delete(c.events, id)
	c.logChange(id)
}

// Event returns a copy of an event (series master or single) of mailbox's calendar.
func (g *Graph) Event(tenant, mailbox, id string) (CalEvent, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.cal(tenant, mailbox).events[id]
	if !ok {
		return CalEvent{}, false
	}
	return *e, true
}

// Events lists the events (series masters and singles) of mailbox's calendar, by id.
func (g *Graph) Events(tenant, mailbox string) []CalEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []CalEvent
	for _, e := range g.cal(tenant, mailbox).events {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExpireEventDeltaLinks makes every calendarView delta link of the mailbox answer 410 syncStateNotFound.
func (g *Graph) ExpireEventDeltaLinks(tenant, mailbox string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cal(tenant, mailbox)
	c.version++ // links given from now on are valid again
	c.minDelta = c.version
}

func preferText(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		if strings.Contains(strings.ToLower(v), `outlook.body-content-type="text"`) {
			return true
		}
	}
	return false
}

// routeEvents serves /users/{id}/calendarView/delta and /users/{id}/events[/{id}].
func (g *Graph) routeEvents(r *http.Request, body []byte, who Identity, parts []string) (reply, bool) {
	if len(parts) < 3 || len(parts) > 4 || parts[0] != "users" {
		return reply{}, false
	}
	if len(parts) == 4 && r.Method == http.MethodGet && strings.EqualFold(parts[2], "calendarView") && (parts[3] == "delta" || parts[3] == "delta()") {
		return g.eventsDelta(r, who, parts[1]), true
	}
	if !strings.EqualFold(parts[2], "events") {
		return reply{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cal(who.Tenant, parts[1])
	notFound := graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
	if len(parts) == 3 {
		switch r.Method {
		case http.MethodPost:
			return g.writeEvent(r, body, c, parts[1], nil, -1), true
		case http.MethodGet:
			m := propFilterRE.FindStringSubmatch(r.URL.Query().Get("$filter"))
			if m == nil || m[1] != m[2] || m[1] != m[4] {
				return graphError(http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."), true
			}
			id, val := unquote(m[3]), unquote(m[5])
			value := []any{}
			ids := make([]string, 0, len(c.events))
			for k := range c.events {
				ids = append(ids, k)
			}
			sort.Strings(ids)
			for _, k := range ids {
				e := c.events[k]
				for pk, v := range e.Properties {
					if strings.EqualFold(pk, id) && strings.EqualFold(v, val) {
						value = append(value, expand(e)[0].jsonAs(preferText(r)))
						break
					}
				}
			}
			return reply{status: http.StatusOK, body: map[string]any{"@odata.context": g.context("users('" + parts[1] + "')/events"), "value": value}}, true
		}
		return reply{}, false
	}
	e, idx := c.find(parts[3])
	if e == nil {
		return notFound, true
	}
	switch r.Method {
	case http.MethodGet:
		for _, in := range expand(e) {
			if in.id == parts[3] || e.ID == parts[3] {
				m := in.jsonAs(preferText(r))
				m["@odata.context"] = g.context("users('" + parts[1] + "')/events/$entity")
				return reply{status: http.StatusOK, body: m}, true
			}
		}
		return notFound, true
	case http.MethodPatch:
		return g.writeEvent(r, body, c, parts[1], e, idx), true
	case http.MethodDelete:
		if idx >= 0 {
			if e.Exceptions == nil {
				e.Exceptions = map[int]Exception{}
			}
			e.Exceptions[idx] = Exception{Deleted: true}
			if c.gone == nil {
				c.gone = map[string][]string{}
			}
			c.gone[e.ID] = append(c.gone[e.ID], parts[3])
			c.logChange(e.ID)
		} else {
			c.remove(e.ID)
		}
		g.pending = append(g.pending, g.eventNotifications(c.tenant, c.mailbox, c, "deleted", e.ID)...)
		return reply{status: http.StatusNoContent}, true
	}
	return reply{}, false
}

// find is the event an id names, and the occurrence's index when it names one (-1 otherwise).
func (c *calendar) find(id string) (*CalEvent, int) {
	if e, ok := c.events[id]; ok {
		return e, -1
	}
	for _, e := range c.events {
		for _, in := range expand(e) {
			if in.id == id && in.typ != "singleInstance" {
				n, _ := strconv.Atoi(id[strings.LastIndex(id, "_")+1:])
				return e, n
			}
		}
	}
	return nil, -1
}

// writeEvent creates (e nil) or changes an event from a Graph event body (g.mu held).
func (g *Graph) writeEvent(r *http.Request, body []byte, c *calendar, mailbox string, e *CalEvent, idx int) reply {
	var in struct {
		Subject       *string
		Body          *struct{ ContentType, Content string }
		Location      *struct{ DisplayName string }
		Start, End    *struct{ DateTime, TimeZone string }
		IsAllDay      *bool
		ShowAs        *string
		Sensitivity   *string
		TransactionID string                       `json:"transactionId"`
		Props         []struct{ ID, Value string } `json:"singleValueExtendedProperties"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "RequestBodyRead", "Cannot read the request body.")
	}
	if e == nil && in.TransactionID != "" {
		if id, ok := c.txns[in.TransactionID]; ok && c.events[id] != nil {
			m := expand(c.events[id])[0].jsonAs(preferText(r))
			return reply{status: http.StatusCreated, body: m}
		}
	}
	at := func(v *struct{ DateTime, TimeZone string }) (time.Time, bool) {
		if v == nil {
			return time.Time{}, false
		}
		if !strings.EqualFold(v.TimeZone, "UTC") {
			return time.Time{}, false // the fake takes UTC only
		}
		t, err := time.Parse("2006-01-02T15:04:05.9999999", v.DateTime)
		return t.UTC(), err == nil
	}
	start, okS := at(in.Start)
	end, okE := at(in.End)
	if (in.Start != nil && !okS) || (in.End != nil && !okE) {
		return graphError(http.StatusBadRequest, "ErrorInvalidRequest", "The dateTime or timeZone is invalid.")
	}
	if idx >= 0 { // an occurrence: an exception with its new times
		if e.Exceptions == nil {
			e.Exceptions = map[int]Exception{}
		}
		x := expand(e)
		var cur instance
		for _, i := range x {
			if strings.HasSuffix(i.id, fmt.Sprintf("_%d", idx)) {
				cur = i
			}
		}
		if okS {
			cur.start = start
		}
		if okE {
			cur.end = end
		}
		e.Exceptions[idx] = Exception{Start: cur.start, End: cur.end}
		e.Modified = g.eventNow()
		c.logChange(e.ID)
		return reply{status: http.StatusOK, body: cur.jsonAs(preferText(r))}
	}
	var ev CalEvent
	if e != nil {
		ev = *e
		ev.Properties = maps.Clone(e.Properties)
	} else {
		ev.ID = outlookID("AAMkAGI")
		if !okS || !okE {
			return graphError(http.StatusBadRequest, "ErrorInvalidRequest", "Start and End are required.")
		}
	}
	if in.Subject != nil {
		ev.Subject = *in.Subject
	}
	if in.Body != nil {
		ev.Body = in.Body.Content
	}
	if in.Location != nil {
		ev.Location = in.Location.DisplayName
	}
	if okS {
		ev.Start = start
	}
	if okE {
		ev.End = end
	}
	if in.IsAllDay != nil {
		ev.IsAllDay = *in.IsAllDay
	}
	if ev.IsAllDay && (!ev.Start.Equal(ev.Start.Truncate(24*time.Hour)) || !ev.End.Equal(ev.End.Truncate(24*time.Hour))) {
		// event.md: an all-day event's start and end must be midnights.
		return graphError(http.StatusBadRequest, "ErrorInvalidRequest", "An all-day event must start and end at midnight.")
	}
	if in.ShowAs != nil {
		ev.ShowAs = *in.ShowAs
	}
	if in.Sensitivity != nil {
		ev.Sensitivity = *in.Sensitivity
	}
	for _, p := range in.Props {
		if !strings.HasPrefix(p.ID, "String {") {
			return graphError(http.StatusBadRequest, "ErrorInvalidProperty", "The extended property id is invalid.")
		}
		if ev.Properties == nil {
			ev.Properties = map[string]string{}
		}
		ev.Properties[p.ID] = p.Value
	}
	if ev.ICalUID == "" {
		ev.ICalUID = "040000008200E00074C5B7101A82E008" + hex.EncodeToString([]byte(ev.ID))
	}
	ev.Modified = g.eventNow()
	c.events[ev.ID] = &ev
	c.logChange(ev.ID)
	// Graph notifies the app's own writes too (for TakeDeliveries), as it does anyone's.
	change := "updated"
	if e == nil {
		change = "created"
	}
	g.pending = append(g.pending, g.eventNotifications(c.tenant, c.mailbox, c, change, ev.ID)...)
	status := http.StatusOK
	if e == nil {
		status = http.StatusCreated
		if in.TransactionID != "" {
			if c.txns == nil {
				c.txns = map[string]string{}
			}
			c.txns[in.TransactionID] = ev.ID
		}
	}
	m := expand(&ev)[0].jsonAs(preferText(r))
	m["@odata.context"] = g.context("users('" + mailbox + "')/events/$entity")
	return reply{status: status, body: m}
}

func (g *Graph) eventNow() time.Time {
	if g.EventClock != nil {
		return g.EventClock().UTC()
	}
	return time.Now().UTC()
}

func (g *Graph) eventsDelta(r *http.Request, who Identity, mailbox string) reply {
	q := r.URL.Query()
	for _, k := range []string{"$select", "$expand", "$filter", "$orderby", "$search"} {
		if q.Has(k) {
			return graphError(http.StatusBadRequest, "ErrorInvalidUrlQuery", "The following parameters are not supported with change tracking over the 'CalendarView' resource: '"+k+"'.")
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cal(who.Tenant, mailbox)
	mode, since, upto, off := "e", 0, c.version, 0
	var start, end time.Time
	window := func(s, e string) bool {
		a, err1 := strconv.ParseInt(s, 10, 64)
		b, err2 := strconv.ParseInt(e, 10, 64)
		start, end = time.Unix(a, 0).UTC(), time.Unix(b, 0).UTC()
		return err1 == nil && err2 == nil
	}
	switch {
	case q.Get("$deltatoken") != "":
		tok := strings.Split(q.Get("$deltatoken"), ".")
		v, err := strconv.Atoi(tok[0])
		if len(tok) != 3 || err != nil || v < c.minDelta || !window(tok[1], tok[2]) {
			return graphError(http.StatusGone, "syncStateNotFound", "The sync state is no longer valid; resync.")
		}
		mode, since = "c", v
	case q.Get("$skiptoken") != "":
		tok := strings.Split(q.Get("$skiptoken"), ".")
		if len(tok) != 6 || !window(tok[4], tok[5]) {
			return graphError(http.StatusBadRequest, "BadRequest", "bad skiptoken")
		}
		mode = tok[0]
		since, _ = strconv.Atoi(tok[1])
		upto, _ = strconv.Atoi(tok[2])
		off, _ = strconv.Atoi(tok[3])
	default:
		var err1, err2 error
		start, err1 = time.Parse(time.RFC3339Nano, q.Get("startDateTime"))
		end, err2 = time.Parse(time.RFC3339Nano, q.Get("endDateTime"))
		if err1 != nil || err2 != nil {
			return graphError(http.StatusBadRequest, "ErrorInvalidParameter",
				"This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
		}
		start, end = start.UTC().Truncate(time.Second), end.UTC().Truncate(time.Second)
	}
	in := func(x instance) bool { return x.end.After(start) && x.start.Before(end) }
	type item struct {
		id      string
		x       instance
		removed bool
	}
	var items []item
	if mode == "e" {
		for _, e := range c.events {
			for _, x := range expand(e) {
				if in(x) {
					items = append(items, item{id: x.id, x: x})
				}
			}
		}
	} else {
		seen := map[string]bool{}
		for _, ch := range c.log {
			if ch.version <= since || ch.version > upto || seen[ch.id] {
				continue
			}
			seen[ch.id] = true
			e, ok := c.events[ch.id]
			if !ok {
				for _, id := range c.gone[ch.id] {
					items = append(items, item{id: id, removed: true})
				}
				continue
			}
			live := map[string]bool{}
			for _, x := range expand(e) {
				live[x.id] = true
				items = append(items, item{id: x.id, x: x, removed: !in(x)})
			}
			for _, id := range c.gone[ch.id] {
				if !live[id] { // a deleted occurrence of a series that is still there
					items = append(items, item{id: id, removed: true})
				}
			}
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	size := g.CalendarPageSize
	if size <= 0 {
		size = 10
	}
	off = min(off, len(items))
	stop := min(off+size, len(items))
	value := []any{}
	for _, it := range items[off:stop] {
		if it.removed {
			value = append(value, map[string]any{"@odata.type": "#microsoft.graph.event", "id": it.id,
				"@removed": map[string]any{"reason": "deleted"}})
			continue
		}
		value = append(value, it.x.jsonAs(preferText(r)))
	}
	base := fmt.Sprintf("%s/v1.0/users/%s/calendarView/delta", g.srv.URL, mailbox)
	body := map[string]any{"@odata.context": g.context("Collection(event)"), "value": value}
	if stop < len(items) {
		body["@odata.nextLink"] = fmt.Sprintf("%s?$skiptoken=%s.%d.%d.%d.%d.%d", base, mode, since, upto, stop, start.Unix(), end.Unix())
	} else {
		body["@odata.deltaLink"] = fmt.Sprintf("%s?$deltatoken=%d.%d.%d", base, upto, start.Unix(), end.Unix())
	}
	return reply{status: http.StatusOK, body: body}
}
