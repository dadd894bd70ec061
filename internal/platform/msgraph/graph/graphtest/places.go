package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// PlaceRoom is a room of the Places directory, with Graph's v1.0 property names
// (GH microsoft-graph-docs-contrib api-reference/v1.0/resources/room.md, ms.date 03/22/2024).
type PlaceRoom struct {
	ID                     string   `json:"id"` // not stable: Graph may change it with the mailbox configuration
	EmailAddress           string   `json:"emailAddress"`
	DisplayName            string   `json:"displayName"`
	Nickname               string   `json:"nickname,omitempty"`
	Capacity               *int     `json:"capacity"`
	Building               string   `json:"building,omitempty"`
	FloorLabel             string   `json:"floorLabel,omitempty"`
	FloorNumber            *int     `json:"floorNumber"`
	BookingType            string   `json:"bookingType"`
	IsWheelChairAccessible bool     `json:"isWheelChairAccessible"`
	Tags                   []string `json:"tags"`
	Phone                  string   `json:"phone,omitempty"`
	// HiddenFromGAL rooms are never returned by the Places list (Learn, place-list: "Rooms marked
	// Hidden from GAL are not returned").
	HiddenFromGAL bool `json:"-"`
}

// PlaceRoomList is a room list and the e-mail addresses of its rooms.
type PlaceRoomList struct {
	ID           string
	EmailAddress string
	DisplayName  string
	Rooms        []string
}

// PutRoom adds or replaces a room (by e-mail address) in tenant's Places directory.
func (g *Graph) PutRoom(tenant string, r PlaceRoom) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.places == nil {
		g.places = map[string]map[string]PlaceRoom{}
	}
	if g.places[tenant] == nil {
		g.places[tenant] = map[string]PlaceRoom{}
	}
	if r.ID == "" {
		r.ID = fmt.Sprintf("%08x-1111-4000-8000-%012x", len(g.places[tenant])+1, len(r.EmailAddress))
	}
	g.places[tenant][strings.ToLower(r.EmailAddress)] = r
}

// DeleteRoom removes a room from the directory.
func (g *Graph) DeleteRoom(tenant, email string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.places[tenant], strings.ToLower(email))
}

// PutRoomList adds or replaces a room list.
func (g *Graph) PutRoomList(tenant string, l PlaceRoomList) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.roomLists == nil {
		g.roomLists = map[string]map[string]PlaceRoomList{}
	}
	if g.roomLists[tenant] == nil {
		g.roomLists[tenant] = map[string]PlaceRoomList{}
	}
	if l.ID == "" {
		l.ID = fmt.Sprintf("%08x-2222-4000-8000-%012x", len(g.roomLists[tenant])+1, len(l.EmailAddress))
	}
	g.roomLists[tenant][strings.ToLower(l.EmailAddress)] = l
}

// placesPage answers one page of a Places list. Places pages 100 items by default and supports $top
// and $skip (beta place-list.md "Optional query parameters"); the next page is an @odata.nextLink
// carrying $skip, which the caller must follow as it is.
func (g *Graph) placesPage(r *http.Request, context string, items []map[string]any) reply {
	q := r.URL.Query()
	size := g.PlacesPageSize
	if size <= 0 {
		size = 100
	}
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return graphError(http.StatusBadRequest, "BadRequest", "Invalid $top.")
		}
		size = min(size, n)
	}
	off := 0
	if s := q.Get("$skip"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return graphError(http.StatusBadRequest, "BadRequest", "Invalid $skip.")
		}
		off = min(n, len(items))
	}
	end := min(off+size, len(items))
	sel := selectOf(r)
	value := []any{}
	for _, it := range items[off:end] {
		if len(sel) > 0 {
			out := map[string]any{"@odata.type": it["@odata.type"], "id": it["id"]}
			for _, s := range sel {
				out[s] = it[s]
			}
			it = out
		}
		value = append(value, it)
	}
	body := map[string]any{"@odata.context": g.context(context), "value": value}
	if end < len(items) {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("$skip", strconv.Itoa(end))
		body["@odata.nextLink"] = g.srv.URL + "/v1.0" + r.URL.Path[len("/v1.0"):] + "?" + next.Encode()
	}
	return reply{status: http.StatusOK, body: body}
}

func roomJSON(r PlaceRoom) map[string]any {
	raw, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["@odata.type"] = "#microsoft.graph.room"
	return m
}

// places routes GET /places/{microsoft.graph.room|microsoft.graph.roomList} and
// /places/{roomListEmail}/microsoft.graph.roomlist/rooms. The SDK writes the type cast as graph.room;
// Graph accepts both spellings.
func (g *Graph) routePlaces(r *http.Request, who Identity, parts []string) (reply, bool) {
	if r.Method != http.MethodGet || len(parts) < 2 || parts[0] != "places" {
		return reply{}, false
	}
	cast := func(s string) string { return strings.TrimPrefix(strings.ToLower(s), "microsoft.") }
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case len(parts) == 2 && cast(parts[1]) == "graph.room":
		var items []map[string]any
		for _, room := range g.places[who.Tenant] {
			if !room.HiddenFromGAL {
				items = append(items, roomJSON(room))
			}
		}
		sortByEmail(items)
		return g.placesPage(r, "places/microsoft.graph.room", items), true
	case len(parts) == 2 && cast(parts[1]) == "graph.roomlist":
		var items []map[string]any
		for _, l := range g.roomLists[who.Tenant] {
			items = append(items, map[string]any{"@odata.type": "#microsoft.graph.roomList", "id": l.ID,
				"emailAddress": l.EmailAddress, "displayName": l.DisplayName})
		}
		sortByEmail(items)
		return g.placesPage(r, "places/microsoft.graph.roomList", items), true
	case len(parts) == 4 && cast(parts[2]) == "graph.roomlist" && parts[3] == "rooms":
		key, _ := url.PathUnescape(parts[1])
		// The room list is addressed by its e-mail address; its id names nothing here (v1.0
		// place-list.md: "use the emailAddress of the room list, not its id").
		l, ok := g.roomLists[who.Tenant][strings.ToLower(key)]
		if !ok {
			return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store."), true
		}
		var items []map[string]any
		for _, e := range l.Rooms {
			if room, ok := g.places[who.Tenant][strings.ToLower(e)]; ok && !room.HiddenFromGAL {
				items = append(items, roomJSON(room))
			}
		}
		sortByEmail(items)
		return g.placesPage(r, "places('"+key+"')/microsoft.graph.roomList/rooms", items), true
	}
	return reply{}, false
}

func sortByEmail(items []map[string]any) {
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["emailAddress"]) < fmt.Sprint(items[j]["emailAddress"])
	})
}
