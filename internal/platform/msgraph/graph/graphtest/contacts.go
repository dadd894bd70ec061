package graphtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
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
//   - ids are base64 strings that carry "=", "-" and "_" (Outlook item ids).

// Contact is an Outlook contact as the fake holds it.
type Contact struct {
	ID             string
	GivenName      string
	Surname        string
	DisplayName    string
	Emails         []string
	JobTitle       string
	CompanyName    string
	Department     string
	BusinessPhones []string
	MobilePhone    string
	BusinessCity   string
	PersonalNotes  string
	Birthday       string
	HomeCity       string

	changeKey string
	modified  time.Time
}

type contactFolder struct {
	contacts map[string]*Contact
	log      []userChange // version, id
	version  int
	minDelta int
	removed  map[string]string // id → reason
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
		f = &contactFolder{contacts: map[string]*Contact{}, removed: map[string]string{}}
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
	c.changeKey = outlookID("EQAAABY")[:24]
	c.modified = time.Now().UTC().Truncate(time.Second)
	f.contacts[c.ID] = &c
	delete(f.removed, c.ID)
	f.version++
	f.log = append(f.log, userChange{version: f.version, id: c.ID})
	return c.ID
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
}

// ExpireContactDeltaLinks makes every delta link of the folder answer 410 syncStateNotFound.
func (g *Graph) ExpireContactDeltaLinks(tenant, mailbox, folder string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.folder(tenant, mailbox, folder)
	f.minDelta = f.version + 1
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
		"businessAddress": map[string]any{"city": c.BusinessCity}, "homeAddress": map[string]any{"city": c.HomeCity},
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

// routeContacts serves /users/{id}/contactFolders/{folder}/contacts/delta and …/contacts/{id}.
func (g *Graph) routeContacts(r *http.Request, who Identity, parts []string) (reply, bool) {
	if r.Method != http.MethodGet || len(parts) != 6 || parts[0] != "users" || !strings.EqualFold(parts[2], "contactFolders") ||
		!strings.EqualFold(parts[4], "contacts") {
		return reply{}, false
	}
	if parts[5] == "delta" || parts[5] == "delta()" {
		return g.contactsDelta(r, who, parts[1], parts[3]), true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.folder(who.Tenant, parts[1], parts[3]).contacts[parts[5]]
	if !ok {
		return graphError(http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store."), true
	}
	m := selected(c.wire(), selectOf(r))
	m["@odata.context"] = g.context("users('" + parts[1] + "')/contactFolders('" + parts[3] + "')/contacts/$entity")
	return reply{status: http.StatusOK, body: m}, true
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
