package graphtest

import (
	"fmt"
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
//   - GET /users/{id}/events/{id} reads one event or occurrence; an unknown id is 404 ErrorItemNotFound.

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

// routeEvents serves /users/{id}/calendarView/delta and GET /users/{id}/events/{id}.
func (g *Graph) routeEvents(r *http.Request, who Identity, parts []string) (reply, bool) {
	if r.Method != http.MethodGet || len(parts) != 4 || parts[0] != "users" {
		return reply{}, false
	}
	switch {
	case strings.EqualFold(parts[2], "calendarView") && (parts[3] == "delta" || parts[3] == "delta()"):
		return g.eventsDelta(r, who, parts[1]), true
	case strings.EqualFold(parts[2], "events"):
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, e := range g.cal(who.Tenant, parts[1]).events {
			for _, in := range expand(e) {
				if in.id == parts[3] || e.ID == parts[3] {
					m := in.jsonAs(preferText(r))
					m["@odata.context"] = g.context("users('" + parts[1] + "')/events/$entity")
					return reply{status: http.StatusOK, body: m}, true
				}
			}
		}
		return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store."), true
	}
	return reply{}, false
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
			for _, x := range expand(e) {
				items = append(items, item{id: x.id, x: x, removed: !in(x)})
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
