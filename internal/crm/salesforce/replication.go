package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

// The replication windows (next-capabilities.md §3.3; REST API developer guide, "sObject Get Updated" and
// "sObject Get Deleted"; SOAP API, getUpdated()/getDeleted() "Rules and Guidelines"):
//   - GET sobjects/{SObject}/updated/?start=&end= answers {ids, latestDateCovered} for no more than 30
//     days back, GET …/deleted/ {deletedRecords[{id, deletedDate}], earliestDateAvailable,
//     latestDateCovered} for no more than 15 (less when the Recycle Bin was emptied);
//   - the seconds of start and end are dropped (12:30:15 is 12:30:00 UTC), so a window shorter than a
//     minute is empty and the next start must be latestDateCovered, never our own clock;
//   - start must precede end and lie within the window, else 400 INVALID_REPLICATION_DATE; more than
//     600,000 ids is EXCEEDED_ID_LIMIT;
//   - neither names who made a change: the client id of Sforce-Call-Options shows only in Change Data
//     Capture's changeOrigin (§3.5), so a reader of these windows cannot tell our writes by it.

// UpdatedWindow and DeletedWindow are how far back each window reaches.
const (
	UpdatedWindow = 30 * 24 * time.Hour
	DeletedWindow = 15 * 24 * time.Hour
)

// TimeLayout is how Salesforce writes a dateTime in JSON ("2013-05-07T22:07:19.000+0000").
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// ParseTime reads a Salesforce dateTime; the zero time when it is empty or malformed.
func ParseTime(s string) time.Time {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}
		}
	}
	return t.UTC()
}

// Updated is the answer of getUpdated.
type Updated struct {
	IDs               []string
	LatestDateCovered time.Time
}

// Deleted is the answer of getDeleted.
type Deleted struct {
	Records               []DeletedRecord
	EarliestDateAvailable time.Time
	LatestDateCovered     time.Time
}

// DeletedRecord is one deletion.
type DeletedRecord struct {
	ID          string
	DeletedDate time.Time
}

func windowPath(object, kind string, start, end time.Time) string {
	q := url.Values{"start": {start.UTC().Format(time.RFC3339)}, "end": {end.UTC().Format(time.RFC3339)}}
	return "/sobjects/" + url.PathEscape(object) + "/" + kind + "/?" + q.Encode()
}

// Updated lists the ids of object's records created or changed between start and end (UTC; Salesforce
// drops the seconds).
func (c *Client) Updated(ctx context.Context, tenant core.TenantID, cred Credential, object string, start, end time.Time) (Updated, http.Header, error) {
	h, b, err := c.Do(ctx, tenant, cred, "get updated", http.MethodGet, windowPath(object, "updated", start, end), nil)
	if err != nil {
		return Updated{}, h, err
	}
	var w struct {
		IDs    []string `json:"ids"`
		Latest string   `json:"latestDateCovered"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Updated{}, h, fmt.Errorf("salesforce get updated: answer: %w", err)
	}
	out := Updated{LatestDateCovered: ParseTime(w.Latest)}
	for _, id := range w.IDs {
		if ValidID(id) {
			out.IDs = append(out.IDs, id)
		}
	}
	if out.LatestDateCovered.IsZero() {
		return Updated{}, h, fmt.Errorf("salesforce get updated: answer has no latestDateCovered")
	}
	return out, h, nil
}

// Deleted lists object's records deleted between start and end.
func (c *Client) Deleted(ctx context.Context, tenant core.TenantID, cred Credential, object string, start, end time.Time) (Deleted, http.Header, error) {
	h, b, err := c.Do(ctx, tenant, cred, "get deleted", http.MethodGet, windowPath(object, "deleted", start, end), nil)
	if err != nil {
		return Deleted{}, h, err
	}
	var w struct {
		Records []struct {
			ID   string `json:"id"`
			Date string `json:"deletedDate"`
		} `json:"deletedRecords"`
		Earliest string `json:"earliestDateAvailable"`
		Latest   string `json:"latestDateCovered"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Deleted{}, h, fmt.Errorf("salesforce get deleted: answer: %w", err)
	}
	out := Deleted{EarliestDateAvailable: ParseTime(w.Earliest), LatestDateCovered: ParseTime(w.Latest)}
	for _, r := range w.Records {
		if ValidID(r.ID) {
			out.Records = append(out.Records, DeletedRecord{ID: r.ID, DeletedDate: ParseTime(r.Date)})
		}
	}
	if out.LatestDateCovered.IsZero() {
		return Deleted{}, h, fmt.Errorf("salesforce get deleted: answer has no latestDateCovered")
	}
	return out, h, nil
}
