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
