package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
)

// MaxCollection is the most records one sObject Collections request may carry (§3.4: "≤200 records
// per request").
const MaxCollection = 200

// Result is Salesforce's answer for one record of a collection, in the order sent: the record's id, and
// when it failed the first error's statusCode and fields. The message is not kept: it can quote the
// record's values ("Email: invalid email address: …").
type Result struct {
	ID     string
	OK     bool
	Code   string
	Fields []string
}

type wireResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Errors  []struct {
		StatusCode string   `json:"statusCode"`
		Fields     []string `json:"fields"`
	} `json:"errors"`
}

func results(op string, b []byte, n int) ([]Result, error) {
	var wire []wireResult
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, fmt.Errorf("salesforce %s: answer: %w", op, err)
	}
	if len(wire) != n {
		return nil, fmt.Errorf("salesforce %s: %d results for %d records", op, len(wire), n)
	}
	out := make([]Result, n)
	for i, w := range wire {
		out[i] = Result{ID: w.ID, OK: w.Success}
		if !w.Success && len(w.Errors) > 0 {
			out[i].Code, out[i].Fields = w.Errors[0].StatusCode, w.Errors[0].Fields
		}
		if !w.Success && out[i].Code == "" {
			out[i].Code = "UNKNOWN_ERROR"
		}
	}
	return out, nil
}

// Save writes records of one object through sObject Collections with allOrNone false, so one bad record
// does not hold back the others: create (POST) when update is false, else update (PATCH; each record
// carries "id"). Records are field maps by API name; the attributes are added here. The answer holds one
// Result per record, in order; a refused request as a whole is an *APIError.
func (c *Client) Save(ctx context.Context, tenant core.TenantID, cred Credential, object string, update bool, recs []map[string]any) ([]Result, http.Header, error) {
	if len(recs) == 0 {
		return nil, nil, nil
	}
	if len(recs) > MaxCollection {
		return nil, nil, fmt.Errorf("salesforce save: %d records, at most %d per call", len(recs), MaxCollection)
	}
	type rec map[string]any
	body := struct {
		AllOrNone bool  `json:"allOrNone"`
		Records   []rec `json:"records"`
	}{Records: make([]rec, len(recs))}
	for i, r := range recs {
		x := rec{"attributes": map[string]string{"type": object}}
		for k, v := range r {
			x[k] = v
		}
		body.Records[i] = x
	}
	method, op := http.MethodPost, "create records"
	if update {
		method, op = http.MethodPatch, "update records"
	}
	h, b, err := c.Do(ctx, tenant, cred, op, method, "/composite/sobjects", body)
	if err != nil {
		return nil, h, err
	}
	res, err := results(op, b, len(recs))
	return res, h, err
}

// Delete deletes records by id through sObject Collections (DELETE ?ids=…&allOrNone=false).
func (c *Client) Delete(ctx context.Context, tenant core.TenantID, cred Credential, ids []string) ([]Result, http.Header, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	if len(ids) > MaxCollection {
		return nil, nil, fmt.Errorf("salesforce delete: %d records, at most %d per call", len(ids), MaxCollection)
	}
	for _, id := range ids {
		if !ValidID(id) {
			return nil, nil, fmt.Errorf("salesforce delete: not a record id")
		}
	}
	q := url.Values{"ids": {strings.Join(ids, ",")}, "allOrNone": {"false"}}
	h, b, err := c.Do(ctx, tenant, cred, "delete records", http.MethodDelete, "/composite/sobjects?"+q.Encode(), nil)
	if err != nil {
		return nil, h, err
	}
	res, err := results("delete records", b, len(ids))
	return res, h, err
}

// ValidID reports whether s has the shape of a Salesforce record id: 15 (case-sensitive) or 18
// (case-insensitive) letters and digits.
func ValidID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
