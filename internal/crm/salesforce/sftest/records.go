package sftest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The records part of the fake org: Contact records, SOQL queries on User and Contact, and sObject
// Collections (create, update, delete). Each behaviour with its source:
//
//   - a query answers {totalSize, done, records[{attributes{type,url}, fields…}]} in batches, with
//     nextRecordsUrl while not done (REST API developer guide, "Execute a SOQL Query"); deleted records
//     are left out (only queryAll shows them); string comparisons with = and IN are case-insensitive
//     except on case-sensitive unique fields (SOQL reference, "Comparison Operators"); string literals
//     take backslash escapes (SOQL reference, "Quoted String Escape Sequences"); >= and < compare a date
//     field with an unquoted YYYY-MM-DD literal (SOQL reference, "Date Formats"); anything the fake does
//     not parse is 400 MALFORMED_QUERY, as a malformed query is;
//   - a collection holds at most 200 records, else the whole request is refused (400
//     EXCEEDED_ID_LIMIT, "record limit reached. cannot submit more than 200 records into this call");
//     a well-formed request answers 200 with one {id, success, errors[{statusCode, message, fields}]}
//     per record in order, even when records fail; allOrNone defaults to false; with allOrNone true a
//     failure rolls every record back (ALL_OR_NONE_OPERATION_ROLLED_BACK)
//     (resources_composite_sobjects_collections_create/_update/_delete; next-capabilities.md §3.4);
//   - Contact.LastName is required (REQUIRED_FIELD_MISSING "Required fields are missing: [LastName]",
//     the classic failure of contact sync, §3.7); Email must look like an address
//     (INVALID_EMAIL_ADDRESS); an update or delete of a deleted record is ENTITY_IS_DELETED, of an id
//     the org never had INVALID_CROSS_REFERENCE_KEY; a field the object does not have makes the request
//     malformed (400 INVALID_FIELD);
//   - Event (key prefix 00U) takes Subject (255), StartDateTime, EndDateTime, IsAllDayEvent,
//     ActivityDate, DurationInMinutes, Location (255), Description (32,000), ShowAs, IsPrivate (Object
//     reference, Event); a timed event needs StartDateTime and one of EndDateTime or DurationInMinutes
//     (REQUIRED_FIELD_MISSING), an all-day one ActivityDate, and the two must agree when both are given
//     (Object reference, Event: "Supplying values in both fields is allowed if the values add up to the
//     same amount of time"); an end before the start, or an event longer than 14 days (Salesforce Help,
//     "Multiday events can last up to 14 days"), is FIELD_INTEGRITY_EXCEPTION [inferred code]; a string
//     over its length is STRING_TOO_LONG (errorcodes);
//   - Sforce-Call-Options: client=<id> names the calling client on every write, and Salesforce reports
//     it as the change's origin in Change Data Capture only (changeOrigin
//     "com/salesforce/api/rest/<ver>;client=<id>", §3.5): the fake keeps it per record (Write.Client) for
//     tests, and, like the replication windows, never answers it to a REST reader.

// MaxCollection is the most records one sObject Collections request may carry.
const MaxCollection = 200

type record struct {
	object   string
	id       string
	fields   map[string]any
	deleted  bool
	modified time.Time
	origin   string // the client id of the last write ("" for a change made in Salesforce itself)
}

// Write is one record written through sObject Collections, for tests: what was done and by whom.
type Write struct {
	Op     string // create, update, delete
	Object string
	ID     string
	Client string // Sforce-Call-Options client, "" without the header
}

// contactFields are the Contact fields the fake knows (Object reference, Contact): a write naming
// another is malformed.
var contactFields = map[string]bool{
	"Id": true, "FirstName": true, "LastName": true, "Email": true, "Title": true, "Phone": true, "MobilePhone": true,
	"Department": true, "MailingStreet": true, "MailingCity": true, "MailingState": true, "MailingPostalCode": true,
	"MailingCountry": true, "OwnerId": true, "Description": true, "LastModifiedDate": true, "SystemModstamp": true,
	"IsDeleted": true, "Name": true,
}

// eventFields are the Event fields the fake knows (Object reference, Event).
var eventFields = map[string]bool{
	"Id": true, "Subject": true, "StartDateTime": true, "EndDateTime": true, "ActivityDateTime": true, "IsAllDayEvent": true,
	"ActivityDate": true, "DurationInMinutes": true, "Location": true, "Description": true, "ShowAs": true, "IsPrivate": true,
	"OwnerId": true, "WhoId": true, "WhatId": true, "LastModifiedDate": true, "SystemModstamp": true, "IsDeleted": true,
}

// objects are the sObjects the fake holds: key prefix, fields and the checks a write must pass.
var objects = map[string]struct {
	prefix string
	fields map[string]bool
	check  func(merged map[string]any) *result
}{
	"Contact": {"003", contactFields, checkContact},
	"Event":   {"00U", eventFields, checkEvent},
}

// objectOf is the object an id's key prefix names ("" for none the fake holds).
func objectOf(id string) string {
	for name, o := range objects {
		if strings.HasPrefix(id, o.prefix) {
			return name
		}
	}
	return ""
}

func checkContact(merged map[string]any) *result {
	if ln, _ := merged["LastName"].(string); strings.TrimSpace(ln) == "" {
		r := fail("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", []string{"LastName"})
		return &r
	}
	if e, _ := merged["Email"].(string); e != "" && !emailRE.MatchString(e) {
		r := fail("INVALID_EMAIL_ADDRESS", "Email: invalid email address: "+e, []string{"Email"})
		return &r
	}
	return nil
}

// maxEventDuration is the longest event Salesforce accepts (Salesforce Help: multiday events last up
// to 14 days).
const maxEventDuration = 14 * 24 * time.Hour

func checkEvent(merged map[string]any) *result {
	bad := func(code, msg string, fields ...string) *result { r := fail(code, msg, fields); return &r }
	for f, n := range map[string]int{"Subject": 255, "Location": 255, "Description": 32000} {
		if v, _ := merged[f].(string); len([]rune(v)) > n {
			return bad("STRING_TOO_LONG", f+": data value too large", f)
		}
	}
	ts := func(f string) (time.Time, bool) {
		v, _ := merged[f].(string)
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.000-0700", v)
		}
		return t, err == nil
	}
	dur, hasDur := merged["DurationInMinutes"].(float64)
	if allDay, _ := merged["IsAllDayEvent"].(bool); allDay {
		if d, _ := merged["ActivityDate"].(string); d == "" {
			return bad("REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDate]", "ActivityDate")
		}
		if hasDur && time.Duration(dur)*time.Minute > maxEventDuration {
			return bad("FIELD_INTEGRITY_EXCEPTION", "Event duration can't exceed 14 days.", "DurationInMinutes")
		}
		return nil
	}
	start, ok := ts("StartDateTime")
	if !ok {
		return bad("REQUIRED_FIELD_MISSING", "Required fields are missing: [StartDateTime]", "StartDateTime")
	}
	end, hasEnd := ts("EndDateTime")
	switch {
	case !hasEnd && !hasDur:
		return bad("REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]", "DurationInMinutes")
	case !hasEnd:
		end = start.Add(time.Duration(dur) * time.Minute)
	case hasDur && !start.Add(time.Duration(dur)*time.Minute).Equal(end):
		return bad("FIELD_INTEGRITY_EXCEPTION", "Duration and end date don't match.", "DurationInMinutes", "EndDateTime")
	}
	if end.Before(start) {
		return bad("FIELD_INTEGRITY_EXCEPTION", "End Date Time can't be before Start Date Time.", "EndDateTime")
	}
	if end.Sub(start) > maxEventDuration {
		return bad("FIELD_INTEGRITY_EXCEPTION", "Event duration can't exceed 14 days.", "EndDateTime")
	}
	return nil
}

// newID makes an 18-character record id with the object's key prefix (003 Contact, 00U Event, 005 User).
func newID(prefix string) string { return prefix + randomID(15) }

// PutContact creates or changes a Contact as a user in Salesforce would (no client id): fields by API
// name; "Id" names the record to change. It returns the id.
func (s *Server) PutContact(fields map[string]any) string { return s.put("Contact", fields) }

// PutEvent creates or changes an Event as a user in Salesforce would, like PutContact.
func (s *Server) PutEvent(fields map[string]any) string { return s.put("Event", fields) }

func (s *Server) put(object string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := fields["Id"].(string)
	r := s.obj(object)[id]
	if r == nil {
		id = newID(objects[object].prefix)
		r = &record{object: object, id: id, fields: map[string]any{}}
		s.obj(object)[id] = r
	}
	for k, v := range fields {
		if k != "Id" {
			r.fields[k] = v
		}
	}
	if allDay, _ := r.fields["IsAllDayEvent"].(bool); object == "Event" && !allDay {
		if v, _ := r.fields["StartDateTime"].(string); len(v) >= 10 {
			r.fields["ActivityDate"] = v[:10] // as collection writes derive it
		}
	}
	r.modified, r.origin, r.deleted = s.now().UTC(), "", false
	return id
}

// DeleteContact deletes a Contact as a user would (to the Recycle Bin).
func (s *Server) DeleteContact(id string) { s.DeleteRecord(id) }

// DeleteRecord deletes a record of any object the fake holds as a user would (to the Recycle Bin).
func (s *Server) DeleteRecord(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.obj(objectOf(id))[id]; r != nil {
		r.deleted, r.modified, r.origin = true, s.now().UTC(), ""
	}
}

// Contact is a Contact's fields (with Id), and whether it exists and is not deleted.
func (s *Server) Contact(id string) (map[string]any, bool) { return s.Record(id) }

// Record is a record's fields (with Id), and whether it exists and is not deleted.
func (s *Server) Record(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.obj(objectOf(id))[id]
	if r == nil || r.deleted {
		return nil, false
	}
	return r.view(), true
}

// Contacts lists the live Contacts' fields, by id.
func (s *Server) Contacts() []map[string]any { return s.Records("Contact") }

// Records lists the live records of an object, by id.
func (s *Server) Records(object string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.obj(object) {
		if !r.deleted {
			out = append(out, r.view())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["Id"].(string) < out[j]["Id"].(string) })
	return out
}

// Writes lists the records written through sObject Collections, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Write(nil), s.writes...)
}

func (r *record) view() map[string]any {
	out := map[string]any{"Id": r.id}
	for k, v := range r.fields {
		out[k] = v
	}
	out["IsDeleted"] = r.deleted
	ts := r.modified.Format("2006-01-02T15:04:05.000+0000")
	out["LastModifiedDate"], out["SystemModstamp"] = ts, ts
	if r.object == "Contact" {
		out["Name"] = strings.TrimSpace(fmt.Sprint(or(r.fields["FirstName"]), " ", or(r.fields["LastName"])))
	}
	return out
}

func or(v any) any {
	if v == nil {
		return ""
	}
	return v
}

func (s *Server) obj(name string) map[string]*record {
	m := s.records[name]
	if m == nil {
		m = map[string]*record{}
		s.records[name] = m
	}
	return m
}

// routeRecords serves the records API; false when the path is not one of it.
func (s *Server) routeRecords(w http.ResponseWriter, r *http.Request, path string) bool {
	switch {
	case path == "/query" && r.Method == http.MethodGet:
		s.query(w, r.URL.Query().Get("q"))
	case strings.HasPrefix(path, "/query/") && r.Method == http.MethodGet:
		s.queryMore(w, strings.TrimPrefix(path, "/query/"))
	case path == "/composite/sobjects" && (r.Method == http.MethodPost || r.Method == http.MethodPatch):
		s.collection(w, r)
	case path == "/composite/sobjects" && r.Method == http.MethodDelete:
		s.collectionDelete(w, r)
	default:
		return false
	}
	return true
}

// ----- SOQL -----

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

var selectRE = regexp.MustCompile(`(?is)^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$`)

type cond struct {
	field  string
	op     string // "=" (and IN), ">=" or "<"
	values []any  // string, bool or date (a date literal); more than one for IN
}

// date is an unquoted date literal (YYYY-MM-DD), compared with a date field (SOQL reference, "Date
// Formats and Date Literals").
type date string

func malformed(w http.ResponseWriter, why string) {
	restError(w, http.StatusBadRequest, "MALFORMED_QUERY", why)
}

func (s *Server) query(w http.ResponseWriter, q string) {
	m := selectRE.FindStringSubmatch(q)
	if m == nil {
		malformed(w, "unexpected token")
		return
	}
	var fields []string
	for _, f := range strings.Split(m[1], ",") {
		fields = append(fields, strings.TrimSpace(f))
	}
	conds, err := parseWhere(m[3])
	if err != nil {
		malformed(w, err.Error())
		return
	}
	limit := -1
	if m[4] != "" {
		limit, _ = strconv.Atoi(m[4])
	}
	object := m[2]
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []map[string]any
	switch strings.ToLower(object) {
	case "user":
		object = "User"
		for name, u := range s.users {
			rows = append(rows, map[string]any{"Id": s.userIDs[name], "Username": u.Username, "Email": u.Email, "IsActive": !u.Inactive})
		}
	case "contact", "event":
		object = strings.ToUpper(object[:1]) + strings.ToLower(object[1:])
		for _, r := range s.obj(object) {
			if !r.deleted {
				rows = append(rows, r.view())
			}
		}
	default:
		restError(w, http.StatusBadRequest, "INVALID_TYPE", "sObject type '"+object+"' is not supported.")
		return
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i]["Id"].(string) < rows[j]["Id"].(string) })
	var out []map[string]any
	for _, row := range rows {
		if !matches(row, conds) {
			continue
		}
		rec := map[string]any{"attributes": map[string]any{"type": object, "url": "/services/data/" + APIVersion + "/sobjects/" + object + "/" + row["Id"].(string)}}
		for _, f := range fields {
			v, ok := lookup(row, f)
			if !ok && object != "User" && !objects[object].fields[f] {
				restError(w, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+f+"' on entity '"+object+"'.")
				return
			}
			rec[f] = v
		}
		out = append(out, rec)
		if limit >= 0 && len(out) == limit {
			break
		}
	}
	s.answerBatch(w, out, len(out))
}

func (s *Server) answerBatch(w http.ResponseWriter, out []map[string]any, total int) {
	batch := s.QueryBatch
	if batch <= 0 {
		batch = 2000
	}
	body := map[string]any{"totalSize": total, "done": true}
	if len(out) > batch {
		cursor := "01g" + randomID(15)
		s.cursors[cursor] = out[batch:]
		out = out[:batch]
		body["done"] = false
		body["nextRecordsUrl"] = "/services/data/" + APIVersion + "/query/" + cursor + "-" + strconv.Itoa(batch)
	}
	if out == nil {
		out = []map[string]any{}
	}
	body["records"] = out
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) queryMore(w http.ResponseWriter, locator string) {
	cursor, _, _ := strings.Cut(locator, "-")
	s.mu.Lock()
	defer s.mu.Unlock()
	rest, ok := s.cursors[cursor]
	if !ok {
		// A query locator that expired or never was (errorcodes: INVALID_QUERY_LOCATOR).
		restError(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	delete(s.cursors, cursor)
	s.answerBatch(w, rest, len(rest))
}

func lookup(row map[string]any, field string) (any, bool) {
	for k, v := range row {
		if strings.EqualFold(k, field) {
			return v, true
		}
	}
	return nil, false
}

func matches(row map[string]any, conds []cond) bool {
	for _, c := range conds {
		v, _ := lookup(row, c.field)
		ok := false
		for _, want := range c.values {
			switch w := want.(type) {
			case date:
				got, _ := v.(string)
				switch c.op {
				case ">=":
					ok = ok || got != "" && got >= string(w)
				case "<":
					ok = ok || got != "" && got < string(w)
				}
			case string:
				got, _ := v.(string)
				ok = ok || strings.EqualFold(got, w)
			case bool:
				got, _ := v.(bool)
				ok = ok || got == w
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// parseWhere reads "F = 'x' AND G = true AND H IN ('a','b')".
func parseWhere(s string) ([]cond, error) {
	var out []cond
	for s = strings.TrimSpace(s); s != ""; {
		i := strings.IndexAny(s, " =")
		if i <= 0 {
			return nil, fmt.Errorf("unexpected token")
		}
		c := cond{field: s[:i], op: "="}
		s = strings.TrimSpace(s[i:])
		switch {
		case strings.HasPrefix(s, ">=") || strings.HasPrefix(s, "<") && !strings.HasPrefix(s, "<="):
			c.op = ">="
			if s[0] == '<' {
				c.op = "<"
			}
			s = strings.TrimSpace(s[len(c.op):])
			if len(s) < 10 || !dateRE.MatchString(s[:10]) {
				return nil, fmt.Errorf("unexpected token")
			}
			c.values, s = []any{date(s[:10])}, s[10:]
		case strings.HasPrefix(s, "="):
			v, rest, err := literal(strings.TrimSpace(s[1:]))
			if err != nil {
				return nil, err
			}
			c.values, s = []any{v}, rest
		case len(s) > 2 && strings.EqualFold(s[:2], "IN"):
			s = strings.TrimSpace(s[2:])
			if !strings.HasPrefix(s, "(") {
				return nil, fmt.Errorf("unexpected token")
			}
			s = strings.TrimSpace(s[1:])
			for {
				v, rest, err := literal(s)
				if err != nil {
					return nil, err
				}
				c.values = append(c.values, v)
				s = strings.TrimSpace(rest)
				if strings.HasPrefix(s, ",") {
					s = strings.TrimSpace(s[1:])
					continue
				}
				if !strings.HasPrefix(s, ")") {
					return nil, fmt.Errorf("unexpected token")
				}
				s = s[1:]
				break
			}
		default:
			return nil, fmt.Errorf("unexpected token")
		}
		out = append(out, c)
		s = strings.TrimSpace(s)
		if s == "" {
			break
		}
		if len(s) < 4 || !strings.EqualFold(s[:4], "AND ") {
			return nil, fmt.Errorf("unexpected token")
		}
		s = strings.TrimSpace(s[4:])
	}
	return out, nil
}

// literal reads a quoted string (with SOQL's backslash escapes) or true/false at the start of s.
func literal(s string) (any, string, error) {
	switch {
	case len(s) >= 4 && strings.EqualFold(s[:4], "true"):
		return true, s[4:], nil
	case len(s) >= 5 && strings.EqualFold(s[:5], "false"):
		return false, s[5:], nil
	case !strings.HasPrefix(s, "'"):
		return nil, "", fmt.Errorf("unexpected token")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return nil, "", fmt.Errorf("unterminated string")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '"', '\'', '\\':
				b.WriteByte(s[i])
			default:
				// "Invalid escape sequence" for any other backslash pair (SOQL reference).
				return nil, "", fmt.Errorf("invalid escape sequence")
			}
		default:
			b.WriteByte(c)
		}
	}
	return nil, "", fmt.Errorf("unterminated string")
}

// ----- sObject Collections -----

type result struct {
	ID      string     `json:"id,omitempty"`
	Success bool       `json:"success"`
	Errors  []recError `json:"errors"`
}

type recError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

func clientOf(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Sforce-Call-Options"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "client="); ok {
			return v
		}
	}
	return ""
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&body); err != nil {
		restError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "malformed request body")
		return
	}
	if len(body.Records) > MaxCollection {
		restError(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
		return
	}
	update := r.Method == http.MethodPatch
	// Malformed records refuse the whole request before any record is looked at.
	types := make([]string, len(body.Records))
	for i, rec := range body.Records {
		attrs, _ := rec["attributes"].(map[string]any)
		typ, _ := attrs["type"].(string)
		o, ok := objects[typ]
		if !ok {
			restError(w, http.StatusBadRequest, "INVALID_TYPE", "Must send a concrete entity type.")
			return
		}
		types[i] = typ
		for k := range rec {
			if k != "attributes" && k != "id" && !o.fields[k] {
				restError(w, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+k+"' on sobject of type "+typ)
				return
			}
		}
	}
	client := clientOf(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	results := make([]result, len(body.Records))
	type pending struct {
		i   int
		rec *record
		new bool
	}
	var apply []pending
	failed := false
	for i, rec := range body.Records {
		id, _ := rec["id"].(string)
		if id == "" {
			id, _ = rec["Id"].(string)
		}
		var target *record
		typ := types[i]
		if update {
			target = s.obj(typ)[id]
			switch {
			case id == "":
				results[i] = fail("MISSING_ARGUMENT", "Id not specified in an update call", nil)
			case target == nil:
				results[i] = fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil)
			case target.deleted:
				results[i] = fail("ENTITY_IS_DELETED", "entity is deleted", nil)
			}
		} else if id != "" {
			results[i] = fail("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", []string{"Id"})
		}
		if results[i].Errors != nil {
			failed = true
			continue
		}
		merged := map[string]any{}
		if target != nil {
			for k, v := range target.fields {
				merged[k] = v
			}
		}
		for k, v := range rec {
			if k != "attributes" && k != "id" && k != "Id" {
				merged[k] = v
			}
		}
		for k, v := range merged {
			if v == nil {
				delete(merged, k) // null clears the field
			}
		}
		if bad := objects[typ].check(merged); bad != nil {
			results[i] = *bad
			failed = true
			continue
		}
		for _, f := range []string{"StartDateTime", "EndDateTime"} {
			// Salesforce answers a dateTime in its own form whatever form it was written in (REST API
			// developer guide, "Valid Date Formats in Records": yyyy-MM-ddTHH:mm:ss.SSS+0000).
			if v, ok := merged[f].(string); ok && typ == "Event" {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					merged[f] = t.UTC().Format("2006-01-02T15:04:05.000+0000")
				}
			}
		}
		if allDay, _ := merged["IsAllDayEvent"].(bool); typ == "Event" && !allDay {
			// A timed Event's ActivityDate is its start's date (Object reference, Event: ActivityDate).
			if v, _ := merged["StartDateTime"].(string); len(v) >= 10 {
				merged["ActivityDate"] = v[:10]
			}
		}
		if target == nil {
			target = &record{object: typ, id: newID(objects[typ].prefix)}
		}
		apply = append(apply, pending{i: i, rec: &record{object: typ, id: target.id, fields: merged}, new: !update})
	}
	if body.AllOrNone && failed {
		for _, p := range apply {
			results[p.i] = fail("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header", nil)
		}
		writeJSON(w, http.StatusOK, results)
		return
	}
	op := "create"
	if update {
		op = "update"
	}
	for _, p := range apply {
		p.rec.modified, p.rec.origin = now, client
		s.obj(p.rec.object)[p.rec.id] = p.rec
		results[p.i] = result{ID: p.rec.id, Success: true, Errors: []recError{}}
		s.writes = append(s.writes, Write{Op: op, Object: p.rec.object, ID: p.rec.id, Client: client})
	}
	writeJSON(w, http.StatusOK, results)
}

func fail(code, msg string, fields []string) result {
	if fields == nil {
		fields = []string{}
	}
	return result{Success: false, Errors: []recError{{StatusCode: code, Message: msg, Fields: fields}}}
}

func (s *Server) collectionDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids := strings.Split(q.Get("ids"), ",")
	if q.Get("ids") == "" {
		restError(w, http.StatusBadRequest, "MISSING_ARGUMENT", "ids parameter is required")
		return
	}
	if len(ids) > MaxCollection {
		restError(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
		return
	}
	allOrNone := q.Get("allOrNone") == "true"
	client := clientOf(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]result, len(ids))
	var ok []int
	failed := false
	for i, id := range ids {
		rec := s.obj(objectOf(id))[id]
		switch {
		case rec == nil:
			results[i] = fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil)
			results[i].ID = id
			failed = true
		case rec.deleted:
			results[i] = fail("ENTITY_IS_DELETED", "entity is deleted", nil)
			results[i].ID = id
			failed = true
		default:
			ok = append(ok, i)
		}
	}
	if allOrNone && failed {
		for _, i := range ok {
			results[i] = fail("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header", nil)
			results[i].ID = ids[i]
		}
		writeJSON(w, http.StatusOK, results)
		return
	}
	now := s.now().UTC()
	for _, i := range ok {
		rec := s.obj(objectOf(ids[i]))[ids[i]]
		rec.deleted, rec.modified, rec.origin = true, now, client
		results[i] = result{ID: ids[i], Success: true, Errors: []recError{}}
		s.writes = append(s.writes, Write{Op: "delete", Object: rec.object, ID: ids[i], Client: client})
	}
	writeJSON(w, http.StatusOK, results)
}
