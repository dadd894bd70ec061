package sftest

import (
	"testing"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
)

// FuzzQuoteRoundTrip: whatever a mailbox holds, the client's quoted literal reads back, by the SOQL
// escape rules the fake applies, as exactly that value with nothing after it — no value can end the
// literal and add a clause.
func FuzzQuoteRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a@example.com", "o'neal@x.example", `\' OR Email != \'`, "tab\there\nline", `"quoted"`, "\b\f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		v, rest, err := literal(salesforce.Quote(s) + " AND x = true")
		if err != nil || v != s || rest != " AND x = true" {
			t.Fatalf("Quote(%q) reads back as %q, rest %q, %v", s, v, rest, err)
		}
	})
}
