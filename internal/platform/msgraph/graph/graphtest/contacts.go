package graphtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Outlook contacts and their delta query, as Graph serves them (each behaviour with its source):
//
//   - GET /users/{id}/contactFolders/{folderId}/contacts/delta (GH api-reference/v1.0/api/contact-delta.md;
//     the folder form is the one documented) takes $select; the first call enumerates the folder, each
//     page ends with @odata.nextLink or, on the last, @odata.deltaLink; a resumed call returns what
//     changed since (delta-query-overview.md);
//   - a deleted contact comes as {"id", "@removed": {"reason": "deleted"}}, and one moved out of the
//     folder with reason "changed" (delta-query-overview.md, "Resource representation in the delta
//     query response");
//   - an expired delta token is 410 Gone with syncStateNotFound: start over (§3.1);
//   - every edit gives the contact a new changeKey and lastModifiedDateTime (contact.md);
//   - without $select the whole contact comes back, personal notes, birthday and home address included:
//     a client that forgets $select gets them;
//   - ids are base64 strings that carry "=", "-" and "_" (Outlook item ids);
//   - POST …/contacts creates a contact (201 with the contact), PATCH …/contacts/{id} changes the
//     properties the body names and answers 200 with the contact, DELETE answers 204; an unknown id is
//     404 ErrorItemNotFound (contactfolder-post-contacts.md, contact-update.md, contact-delete.md);
//   - a body's singleValueExtendedProperties [{"id":"String {guid} Name X","value":"…"}] are stored
//     with the item; they come back only when asked for with
//     $expand=singleValueExtendedProperties($filter=id eq '…'), never in the POST or PATCH answer, and
//     $filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…') finds the items
//     that carry a value (singlevaluelegacyextendedproperty-get.md, -post-singlevalueextendedproperties.md;
//     the property id is matched case-insensitively, as Exchange names properties);
//   - $filter=emailAddresses/any(a:a/address eq '…') finds contacts by address, case-insensitively
//     (user-list-contacts.md, example 2); any other filter is 400 ErrorInvalidUrlQueryFilter; a string
//     literal doubles its quotes (OData ABNF, SQUOTE-in-string);
//   - a list answers $top items (10 by default) and @odata.nextLink with $skip for the next page.

// Contact is an Outlook contact as the fake holds it.
type Contact struct {
	ID              string
	GivenName       string
	Surname         string
	DisplayName     string
	Emails          []string
	JobTitle        string
	CompanyName     string
	Department      string
	BusinessPhones  []string
	MobilePhone     string
	BusinessCity    string
	BusinessStreet  string
	BusinessState   string
	BusinessPostal  string
	BusinessCountry string
	PersonalNotes   string
	Birthday        string
	HomeCity        string
	// Properties are the single-value extended properties, by id as written.
	Properties map[string]string

	changeKey string
	modified  time.Time
}

type contactFolder struct {
	tenant, mailbox, name string
	contacts              map[string]*Contact
	log                   []userChange // version, id
	version               int
	minDelta              int
	removed               map[string]string // id → reason
}

func (g *Graph) folder(tenant, mailbox, folder string) *contactFolder {
	if g.contacts == nil {
		g.contacts = map[string]map[string]*contactFolder{}
	}
	if g.contacts[tenant] == nil {
		g.contacts[tenant] = map[string]*contactFolder{}
	}
	k := strings.ToLower(mailbox) + "/" + strings.ToLower(folder)
	f := g.contacts[tenant][k]
	if f == nil {
		f = &contactFolder{tenant: tenant, mailbox: mailbox, name: folder, contacts: map[string]*Contact{}, removed: map[string]string{}}
		g.contacts[tenant][k] = f
	}
	return f
}

func outlookID(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.URLEncoding.EncodeToString(b[:]) + "="
}

// PutContact creates (empty ID) or changes a contact in mailbox's folder and returns its id.
func (g *Graph) PutContact(tenant, mailbox, folder string, c Contact) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(tenant, mailbox, folder)
	if c.ID == "" {
		c.ID = outlookID("AAMkADc")
	}
	if old := f.contacts[c.ID]; old != nil && c.Properties == nil {
		c.Properties = old.Properties // a user's edit in Outlook keeps the item's extended properties
	}
	g.storeContact(f, &c)
	return c.ID
}

// storeContact gives c a new changeKey and lastModifiedDateTime and logs the change (g.mu held).
func (g *Graph) storeContact(f *contactFolder, c *Contact) {
	c.changeKey = outlookID("EQAAABY")[:24]
	now := time.Now
	if g.ContactClock != nil {
		now = g.ContactClock
	}
	c.modified = now().UTC().Truncate(time.Second)
	change := "updated"
	if f.contacts[c.ID] == nil {
		change = "created"
	}
	f.contacts[c.ID] = c
	delete(f.removed, c.ID)
	f.version++
	f.log = append(f.log, userChange{version: f.version, id: c.ID})
	g.notifyContact(f, change, c.ID)
}

// contactsResource matches a subscription to a mailbox's default Contacts folder or to one folder's
// contacts (Learn, outlook-change-notifications-overview: /users/{id}/contacts,
// /users/{id}/contactFolders/{id}/contacts; next-capabilities.md §3.1).
var contactsResource = regexp.MustCompile(`(?i)^/?users/([^/?]+)/(?:contactFolders/([^/?]+)/)?contacts$`)

// notifyContact queues, for TakeDeliveries, the basic notification (no resource data) Graph posts to
// each subscription on the folder after a change — the app's own writes included, as Graph does
// (g.mu held). The resource names the mailbox and the contact the way Graph writes it
// ("Users/{id}/Contacts/{id}"), with the change's etag.
func (g *Graph) notifyContact(f *contactFolder, change, id string) {
	for _, s := range g.subs {
		m := contactsResource.FindStringSubmatch(s.Resource)
		if s.Tenant != f.tenant || m == nil || !strings.EqualFold(m[1], f.mailbox) {
			continue
		}
		if folder := cmpOr(m[2], "contacts"); !strings.EqualFold(folder, f.name) {
			continue
		}
		res := "Users/" + f.mailbox + "/Contacts/" + id
		item := map[string]any{"subscriptionId": s.ID, "subscriptionExpirationDateTime": s.ExpiresAt.Format("2006-01-02T15:04:05.0000000Z"),
			"changeType": change, "resource": res, "clientState": s.ClientState, "tenantId": f.tenant,
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Contact", "@odata.id": res,
				"@odata.etag": etag(id + "/" + strconv.Itoa(f.version)), "id": id}}
		body, _ := json.Marshal(map[string]any{"value": []any{item}})
		g.pending = append(g.pending, Delivery{URL: s.NotificationURL, Body: body})
		// Wake whoever pumps TakeDeliveries (the sandbox posts them as Graph would, by itself).
		g.signalWrite()
	}
}

// Contact returns a copy of a contact of mailbox's folder.
func (g *Graph) Contact(tenant, mailbox, folder, id string) (Contact, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.folder(tenant, mailbox, folder).contacts[id]
	if !ok {
		return Contact{}, false
	}
	return *c, true
}

// Contacts lists a folder's contacts, by id.
func (g *Graph) Contacts(tenant, mailbox, folder string) []Contact {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Contact
	for _, c := range g.folder(tenant, mailbox, folder).contacts {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DeleteContact deletes a contact (reason "deleted"), or moves it out of the folder with reason
// "changed".
func (g *Graph) DeleteContact(tenant, mailbox, folder, id, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(tenant, mailbox, folder)
	delete(f.contacts, id)
	f.removed[id] = reason
	f.version++
	f.log = append(f.log, userChange{version: f.version, id: id})
	g.notifyContact(f, "deleted", id)
}

// ExpireContactDeltaLinks makes every delta link of the folder answer 410 syncStateNotFound.
func (g *Graph) ExpireContactDeltaLinks(tenant, mailbox, folder string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(tenant, mailbox, folder)
	f.version++ // links given from now on (a fresh full delta's) are valid again
	f.minDelta = f.version
}

func (c *Contact) wire() map[string]any {
	emails := []any{}
	for _, e := range c.Emails {
		emails = append(emails, map[string]any{"name": c.DisplayName, "address": e})
	}
	phones := append([]string{}, c.BusinessPhones...)
	var birthday any // null when unset, as Graph sends it
	if c.Birthday != "" {
		birthday = c.Birthday + "T11:59:00Z"
	}
	return map[string]any{
		"@odata.etag": `W/"` + c.changeKey + `"`, "id": c.ID, "changeKey": c.changeKey,
		"createdDateTime": c.modified.Format(time.RFC3339), "lastModifiedDateTime": c.modified.Format(time.RFC3339),
		"givenName": c.GivenName, "surname": c.Surname, "displayName": c.DisplayName, "emailAddresses": emails,
		"jobTitle": c.JobTitle, "companyName": c.CompanyName, "department": c.Department, "businessPhones": phones,
		"mobilePhone": c.MobilePhone, "personalNotes": c.PersonalNotes, "birthday": birthday,
		"businessAddress": map[string]any{"street": c.BusinessStreet, "city": c.BusinessCity, "state": c.BusinessState,
			"postalCode": c.BusinessPostal, "countryOrRegion": c.BusinessCountry}, "homeAddress": map[string]any{"city": c.HomeCity},
	}
}

func selected(m map[string]any, sel []string) map[string]any {
	if len(sel) == 0 {
		return m
	}
	out := map[string]any{"@odata.etag": m["@odata.etag"], "id": m["id"]}
	for _, s := range sel {
		if v, ok := m[s]; ok {
			out[s] = v
		}
	}
	return out
}

// routeContacts serves /users/{id}/contactFolders/{folder}/contacts (GET with $filter, POST), …/delta
// and …/contacts/{id} (GET, PATCH, DELETE).
func (g *Graph) routeContacts(r *http.Request, body []byte, who Identity, parts []string) (reply, bool) {
	if len(parts) < 5 || len(parts) > 6 || parts[0] != "users" || !strings.EqualFold(parts[2], "contactFolders") ||
		!strings.EqualFold(parts[4], "contacts") {
		return reply{}, false
	}
	if len(parts) == 5 {
		switch r.Method {
		case http.MethodGet:
			return g.listContacts(r, who, parts[1], parts[3]), true
		case http.MethodPost:
			return g.writeContact(r, body, who, parts[1], parts[3], ""), true
		}
		return reply{}, false
	}
	if r.Method == http.MethodGet && (parts[5] == "delta" || parts[5] == "delta()") {
		return g.contactsDelta(r, who, parts[1], parts[3]), true
	}
	switch r.Method {
	case http.MethodPatch:
		return g.writeContact(r, body, who, parts[1], parts[3], parts[5]), true
	case http.MethodDelete:
		g.mu.Lock()
		defer g.mu.Unlock()
		f := g.folder(who.Tenant, parts[1], parts[3])
		if _, ok := f.contacts[parts[5]]; !ok {
			return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store."), true
		}
		delete(f.contacts, parts[5])
		f.removed[parts[5]] = "deleted"
		f.version++
		f.log = append(f.log, userChange{version: f.version, id: parts[5]})
		g.notifyContact(f, "deleted", parts[5])
		return reply{status: http.StatusNoContent}, true
	case http.MethodGet:
	default:
		return reply{}, false
	}
	expand, bad := expandOf(r)
	if bad {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid $expand clause."), true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.folder(who.Tenant, parts[1], parts[3]).contacts[parts[5]]
	if !ok {
		return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store."), true
	}
	m := c.expanded(selectOf(r), expand)
	m["@odata.context"] = g.context("users('" + parts[1] + "')/contactFolders('" + parts[3] + "')/contacts/$entity")
	return reply{status: http.StatusOK, body: m}, true
}

// expanded is the contact's wire form with $select applied and, when expand names a property id, the
// singleValueExtendedProperties it matches.
func (c *Contact) expanded(sel []string, expand *string) map[string]any {
	m := selected(c.wire(), sel)
	if expand != nil {
		props := []any{}
		for id, v := range c.Properties {
			if strings.EqualFold(id, *expand) {
				props = append(props, map[string]any{"id": id, "value": v})
			}
		}
		m["singleValueExtendedProperties"] = props
	}
	return m
}

var (
	expandRE = regexp.MustCompile(`^singleValueExtendedProperties\(\$filter=id eq '((?:[^']|'')*)'\)$`)
	// The two filters the fake knows; the literals are OData strings ('' for a quote).
	propFilterRE  = regexp.MustCompile(`^singleValueExtendedProperties/[Aa]ny\((\w+):\s*(\w+)/id eq '((?:[^']|'')*)' and (\w+)/value eq '((?:[^']|'')*)'\)$`)
	emailFilterRE = regexp.MustCompile(`^emailAddresses/any\((\w+):\s*(\w+)/address eq '((?:[^']|'')*)'\)$`)
)

func unquote(s string) string { return strings.ReplaceAll(s, "''", "'") }

// expandOf reads $expand=singleValueExtendedProperties($filter=id eq '…'); bad when it is another.
func expandOf(r *http.Request) (*string, bool) {
	e := r.URL.Query().Get("$expand")
	if e == "" {
		return nil, false
	}
	m := expandRE.FindStringSubmatch(e)
	if m == nil {
		return nil, true
	}
	id := unquote(m[1])
	return &id, false
}

// listContacts answers GET …/contacts?$filter=…, the filters above only.
func (g *Graph) listContacts(r *http.Request, who Identity, mailbox, folder string) reply {
	filter := r.URL.Query().Get("$filter")
	expand, bad := expandOf(r)
	if bad {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid $expand clause.")
	}
	var match func(*Contact) bool
	if m := propFilterRE.FindStringSubmatch(filter); m != nil && m[1] == m[2] && m[1] == m[4] {
		id, val := unquote(m[3]), unquote(m[5])
		match = func(c *Contact) bool {
			for k, v := range c.Properties {
				if strings.EqualFold(k, id) && strings.EqualFold(v, val) {
					return true
				}
			}
			return false
		}
	} else if m := emailFilterRE.FindStringSubmatch(filter); m != nil && m[1] == m[2] {
		addr := unquote(m[3])
		match = func(c *Contact) bool {
			for _, e := range c.Emails {
				if strings.EqualFold(e, addr) {
					return true
				}
			}
			return false
		}
	} else if filter != "" {
		return graphError(http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
	}
	q := r.URL.Query()
	top, skip := 10, 0 // Outlook lists 10 items a page unless $top says otherwise (at most 1,000)
	if v, err := strconv.Atoi(q.Get("$top")); err == nil && v > 0 {
		top = min(v, 1000)
	}
	if v, err := strconv.Atoi(q.Get("$skip")); err == nil && v > 0 {
		skip = v
	}
	if g.ContactsPageSize > 0 {
		top = min(top, g.ContactsPageSize)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(who.Tenant, mailbox, folder)
	ids := make([]string, 0, len(f.contacts))
	for id := range f.contacts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var all []*Contact
	for _, id := range ids {
		if c := f.contacts[id]; match == nil || match(c) {
			all = append(all, c)
		}
	}
	value := []any{}
	for _, c := range all[min(skip, len(all)):min(skip+top, len(all))] {
		value = append(value, c.expanded(selectOf(r), expand))
	}
	body := map[string]any{"@odata.context": g.context("users('" + mailbox + "')/contactFolders('" + folder + "')/contacts"), "value": value}
	if skip+top < len(all) {
		// The next page repeats the query with $skip (Outlook's paging of item lists).
		q.Set("$skip", strconv.Itoa(skip+top))
		body["@odata.nextLink"] = g.srv.URL + "/v1.0/users/" + mailbox + "/contactFolders/" + folder + "/contacts?" + q.Encode()
	}
	return reply{status: http.StatusOK, body: body}
}

// writeContact creates (id "") or changes a contact from a Graph contact body.
func (g *Graph) writeContact(r *http.Request, body []byte, who Identity, mailbox, folder, id string) reply {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "RequestBodyRead", "Cannot read the request body.")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(who.Tenant, mailbox, folder)
	var c Contact
	if id == "" {
		c.ID = outlookID("AAMkADc")
	} else {
		old, ok := f.contacts[id]
		if !ok {
			return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		}
		c = *old
		c.Properties = maps.Clone(old.Properties)
	}
	str := func(k string, dst *string) {
		if raw, ok := in[k]; ok {
			var v *string
			_ = json.Unmarshal(raw, &v)
			*dst = ""
			if v != nil {
				*dst = *v
			}
		}
	}
	str("givenName", &c.GivenName)
	str("surname", &c.Surname)
	str("displayName", &c.DisplayName)
	str("jobTitle", &c.JobTitle)
	str("companyName", &c.CompanyName)
	str("department", &c.Department)
	str("mobilePhone", &c.MobilePhone)
	if raw, ok := in["businessPhones"]; ok {
		c.BusinessPhones = nil
		_ = json.Unmarshal(raw, &c.BusinessPhones)
	}
	if raw, ok := in["emailAddresses"]; ok {
		var es []struct {
			Address string `json:"address"`
		}
		_ = json.Unmarshal(raw, &es)
		c.Emails = nil
		for _, e := range es {
			c.Emails = append(c.Emails, e.Address)
		}
	}
	if raw, ok := in["businessAddress"]; ok {
		var a struct{ Street, City, State, PostalCode, CountryOrRegion string }
		_ = json.Unmarshal(raw, &a)
		c.BusinessStreet, c.BusinessCity, c.BusinessState, c.BusinessPostal, c.BusinessCountry = a.Street, a.City, a.State, a.PostalCode, a.CountryOrRegion
	}
	if raw, ok := in["singleValueExtendedProperties"]; ok {
		var ps []struct{ ID, Value string }
		if err := json.Unmarshal(raw, &ps); err != nil {
			return graphError(http.StatusBadRequest, "RequestBodyRead", "Cannot read the request body.")
		}
		for _, p := range ps {
			if !strings.HasPrefix(p.ID, "String {") {
				return graphError(http.StatusBadRequest, "ErrorInvalidProperty", "The extended property id is invalid.")
			}
			if c.Properties == nil {
				c.Properties = map[string]string{}
			}
			c.Properties[p.ID] = p.Value
		}
	}
	g.storeContact(f, &c)
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
	}
	m := c.wire()
	m["@odata.context"] = g.context("users('" + mailbox + "')/contactFolders('" + folder + "')/contacts/$entity")
	return reply{status: status, body: m}
}

func (g *Graph) contactsDelta(r *http.Request, who Identity, mailbox, folder string) reply {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(who.Tenant, mailbox, folder)
	q := r.URL.Query()
	sel := selectOf(r)
	mode, since, upto, off := "e", 0, f.version, 0
	switch {
	case q.Get("$deltatoken") != "":
		// The token carries the first call's query options: a resumed call selects what the first did
		// (delta-query-overview.md: "the state token … encodes the query parameters").
		ver, s, _ := strings.Cut(q.Get("$deltatoken"), ".")
		v, err := strconv.Atoi(ver)
		if err != nil || v < f.minDelta {
			return graphError(http.StatusGone, "syncStateNotFound", "The sync state is no longer valid; resync.")
		}
		mode, since, sel = "c", v, nil
		if s != "" {
			sel = strings.Split(s, ",")
		}
	case q.Get("$skiptoken") != "":
		tok := strings.SplitN(q.Get("$skiptoken"), ".", 5)
		if len(tok) != 5 {
			return graphError(http.StatusBadRequest, "BadRequest", "bad skiptoken")
		}
		mode = tok[0]
		since, _ = strconv.Atoi(tok[1])
		upto, _ = strconv.Atoi(tok[2])
		off, _ = strconv.Atoi(tok[3])
		sel = nil
		if tok[4] != "" {
			sel = strings.Split(tok[4], ",")
		}
	}
	var ids []string
	if mode == "e" {
		for id := range f.contacts {
			ids = append(ids, id)
		}
	} else {
		seen := map[string]bool{}
		for _, c := range f.log {
			if c.version > since && c.version <= upto && !seen[c.id] {
				seen[c.id] = true
				ids = append(ids, c.id)
			}
		}
	}
	sort.Strings(ids)
	size := g.ContactsPageSize
	if size <= 0 {
		size = 10
	}
	off = min(off, len(ids))
	end := min(off+size, len(ids))
	value := []any{}
	for _, id := range ids[off:end] {
		if c, ok := f.contacts[id]; ok {
			value = append(value, selected(c.wire(), sel))
			continue
		}
		value = append(value, map[string]any{"@odata.type": "#microsoft.graph.contact", "id": id,
			"@removed": map[string]any{"reason": cmpOr(f.removed[id], "deleted")}})
	}
	base := fmt.Sprintf("%s/v1.0/users/%s/contactFolders/%s/contacts/delta", g.srv.URL, mailbox, folder)
	body := map[string]any{"@odata.context": g.context("Collection(contact)"), "value": value}
	if end < len(ids) {
		body["@odata.nextLink"] = fmt.Sprintf("%s?$skiptoken=%s.%d.%d.%d.%s", base, mode, since, upto, end, strings.Join(sel, ","))
	} else {
		body["@odata.deltaLink"] = fmt.Sprintf("%s?$deltatoken=%d.%s", base, upto, strings.Join(sel, ","))
	}
	return reply{status: http.StatusOK, body: body}
}
