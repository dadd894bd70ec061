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

// Quote makes s a SOQL string literal: single quotes around it, and the characters SOQL reserves in a
// literal escaped with a backslash (SOQL and SOSL reference, "Quoted String Escape Sequences": \n \r \t
// \b \f \" \' \\). A value from a mailbox can never end the literal and add a clause.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// maxQueryPages bounds how many pages one Query follows (2,000 records a page by default: 400,000
// records), so a query that never ends cannot hold an invocation.
const maxQueryPages = 200

// Query runs a SOQL query and hands each record (its JSON, attributes included) to fn, following
// nextRecordsUrl until done (REST API developer guide, "Execute a SOQL Query": results come in batches,
// 2,000 by default, and nextRecordsUrl names the next one). It returns the last answer's headers, for
// Sforce-Limit-Info.
func (c *Client) Query(ctx context.Context, tenant core.TenantID, cred Credential, soql string, fn func(json.RawMessage) error) (http.Header, error) {
	path := "/query?q=" + url.QueryEscape(soql)
	prefix := "/services/data/" + APIVersion
	var h http.Header
	for page := 0; ; page++ {
		if page == maxQueryPages {
			return h, fmt.Errorf("salesforce query: more than %d pages", maxQueryPages)
		}
		var b []byte
		var err error
		h, b, err = c.Do(ctx, tenant, cred, "query", http.MethodGet, path, nil)
		if err != nil {
			return h, err
		}
		var res struct {
			Done           bool              `json:"done"`
			NextRecordsURL string            `json:"nextRecordsUrl"`
			Records        []json.RawMessage `json:"records"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return h, fmt.Errorf("salesforce query: answer: %w", err)
		}
		for _, r := range res.Records {
			if err := fn(r); err != nil {
				return h, err
			}
		}
		if res.Done || res.NextRecordsURL == "" {
			return h, nil
		}
		// nextRecordsUrl is a path on the same instance under the same version
		// ("/services/data/v66.0/query/01gD0000002HU6KIAW-2000"); anything else is refused.
		next, ok := strings.CutPrefix(res.NextRecordsURL, prefix)
		if !ok || !strings.HasPrefix(next, "/query/") {
			return h, fmt.Errorf("salesforce query: unexpected nextRecordsUrl")
		}
		path = next
	}
}
