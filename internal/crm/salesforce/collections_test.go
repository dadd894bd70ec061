package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
)

// A collection answers per record: one bad record does not hold back the others, and its error names
// the status code and fields (not the message, which can quote the value).
func TestSavePerRecordResults(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	ctx := context.Background()
	res, h, err := c.Save(ctx, tenant, cred, "Contact", false, []map[string]any{
		{"LastName": "Hopper", "Email": "grace@navy.example"},
		{"FirstName": "Prince"},
		{"LastName": "Bad", "Email": "not an address"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].OK || !salesforce.ValidID(res[0].ID) || res[1].OK || res[1].Code != "REQUIRED_FIELD_MISSING" ||
		strings.Join(res[1].Fields, ",") != "LastName" || res[2].Code != "INVALID_EMAIL_ADDRESS" {
		t.Fatalf("results %+v", res)
	}
	if _, ok := salesforce.ParseLimitInfo(h); !ok {
		t.Error("no Sforce-Limit-Info")
	}
	if len(s.Contacts()) != 1 {
		t.Fatalf("contacts %v", s.Contacts())
	}
	// Update: a record deleted meanwhile says so; delete of an id the org never had names that.
	s.DeleteContact(res[0].ID)
	up, _, err := c.Save(ctx, tenant, cred, "Contact", true, []map[string]any{{"id": res[0].ID, "Title": "x"}})
	if err != nil || up[0].Code != "ENTITY_IS_DELETED" {
		t.Fatalf("update of a deleted record: %+v, %v", up, err)
	}
	del, _, err := c.Delete(ctx, tenant, cred, []string{"003000000000000AAA"})
	if err != nil || del[0].Code != "INVALID_CROSS_REFERENCE_KEY" {
		t.Fatalf("delete of an unknown id: %+v, %v", del, err)
	}
	// More than 200 records is refused by the client before any call; a request that names a field the
	// object does not have is refused as a whole.
	if _, _, err := c.Save(ctx, tenant, cred, "Contact", false, make([]map[string]any, 201)); err == nil {
		t.Error("201 records accepted")
	}
	_, _, err = c.Save(ctx, tenant, cred, "Contact", false, []map[string]any{{"LastName": "x", "Shoe_Size__c": 42}})
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.ErrorCode != "INVALID_FIELD" {
		t.Errorf("unknown field: %v", err)
	}
}

// With allOrNone the fake rolls every record back when one fails, as Salesforce does; over 200 records
// the whole request is refused.
func TestCollectionAllOrNoneAndLimit(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	ctx := context.Background()
	body := map[string]any{"allOrNone": true, "records": []map[string]any{
		{"attributes": map[string]string{"type": "Contact"}, "LastName": "Fine"},
		{"attributes": map[string]string{"type": "Contact"}},
	}}
	_, b, err := c.Do(ctx, tenant, cred, "create", http.MethodPost, "/composite/sobjects", body)
	if err != nil {
		t.Fatal(err)
	}
	var res []struct {
		Success bool
		Errors  []struct{ StatusCode string }
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res) != 2 || res[0].Success || res[0].Errors[0].StatusCode != "ALL_OR_NONE_OPERATION_ROLLED_BACK" {
		t.Fatalf("%s, %v", b, err)
	}
	if len(s.Contacts()) != 0 {
		t.Fatal("a record survived the rollback")
	}
	recs := make([]map[string]any, 201)
	for i := range recs {
		recs[i] = map[string]any{"attributes": map[string]string{"type": "Contact"}, "LastName": "x"}
	}
	_, _, err = c.Do(ctx, tenant, cred, "create", http.MethodPost, "/composite/sobjects", map[string]any{"records": recs})
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.ErrorCode != "EXCEEDED_ID_LIMIT" {
		t.Fatalf("201 records: %v", err)
	}
}

// Events: a timed event needs its start and an end, an all-day one its date, neither may last more than
// 14 days, and the getUpdated window of Event lists what was written.
func TestSaveEvents(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	ctx := context.Background()
	res, _, err := c.Save(ctx, tenant, cred, "Event", false, []map[string]any{
		{"Subject": "Review", "StartDateTime": "2026-03-02T09:00:00Z", "EndDateTime": "2026-03-02T10:00:00Z", "IsPrivate": true},
		{"Subject": "Offsite", "IsAllDayEvent": true, "ActivityDate": "2026-03-03", "DurationInMinutes": 1440},
		{"Subject": "No end", "StartDateTime": "2026-03-02T09:00:00Z"},
		{"Subject": "Too long", "StartDateTime": "2026-03-02T09:00:00Z", "EndDateTime": "2026-03-20T09:00:00Z"},
		{"Subject": "All day, no date", "IsAllDayEvent": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 || !res[0].OK || !strings.HasPrefix(res[0].ID, "00U") || !res[1].OK || res[2].Code != "REQUIRED_FIELD_MISSING" ||
		res[3].Code != "FIELD_INTEGRITY_EXCEPTION" || res[4].Code != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("results %+v", res)
	}
	if n := len(s.Records("Event")); n != 2 {
		t.Fatalf("events %d, want 2", n)
	}
	var subjects []string
	if _, err := c.Query(ctx, tenant, cred, "SELECT Id, Subject FROM Event WHERE Subject IN ('Review','Offsite')", func(raw json.RawMessage) error {
		var r struct{ Subject string }
		_ = json.Unmarshal(raw, &r)
		subjects = append(subjects, r.Subject)
		return nil
	}); err != nil || len(subjects) != 2 {
		t.Fatalf("query: %v, %v", subjects, err)
	}
	del, _, err := c.Delete(ctx, tenant, cred, []string{res[0].ID})
	if err != nil || !del[0].OK {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	if _, ok := s.Record(res[0].ID); ok {
		t.Error("deleted event still there")
	}
}

// Date literals compare with date fields, and a timed Event's ActivityDate is its start's date.
func TestQueryEventsByDate(t *testing.T) {
	t.Parallel()
	_, c, cred := setup(t)
	ctx := context.Background()
	if _, _, err := c.Save(ctx, tenant, cred, "Event", false, []map[string]any{
		{"Subject": "In", "StartDateTime": "2026-03-02T09:00:00Z", "EndDateTime": "2026-03-02T10:00:00Z"},
		{"Subject": "Day", "IsAllDayEvent": true, "ActivityDate": "2026-03-05"},
		{"Subject": "Out", "StartDateTime": "2026-05-02T09:00:00Z", "EndDateTime": "2026-05-02T10:00:00Z"},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := c.Query(ctx, tenant, cred, "SELECT Id, Subject FROM Event WHERE ActivityDate >= 2026-03-01 AND ActivityDate < 2026-04-01", func(raw json.RawMessage) error {
		var r struct{ Subject string }
		_ = json.Unmarshal(raw, &r)
		got = append(got, r.Subject)
		return nil
	}); err != nil || len(got) != 2 {
		t.Fatalf("%v, %v", got, err)
	}
}
