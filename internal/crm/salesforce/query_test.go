package salesforce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
)

// A query follows nextRecordsUrl through every batch, and each call carries our client id.
func TestQueryFollowsBatches(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	s.QueryBatch = 2
	for i := range 5 {
		s.AddUser(sftest.User{Username: fmt.Sprintf("u%d@example.com", i), Email: "team@example.com"})
	}
	var ids []string
	_, err := c.Query(context.Background(), tenant, cred, "SELECT Id FROM User WHERE Email = "+salesforce.Quote("TEAM@example.com"), func(raw json.RawMessage) error {
		var r struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil || len(ids) != 5 {
		t.Fatalf("ids %v, %v; want 5", ids, err)
	}
	if n := s.Calls("GET /query"); n != 1 {
		t.Errorf("first batches: %d", n)
	}
}

// Quote keeps a value inside its literal: a value built to close the string and add a clause matches
// only itself.
func TestQuoteKeepsValuesInTheLiteral(t *testing.T) {
	t.Parallel()
	s, c, cred := setup(t)
	s.AddUser(sftest.User{Username: "a@example.com", Email: "a@example.com"})
	s.AddUser(sftest.User{Username: "b@example.com", Email: `x\' OR Email != \'`})
	for _, tt := range []struct {
		value string
		want  int
	}{
		{"a@example.com", 1},
		{"a@example.com' OR Email != '", 0},
		{`x\' OR Email != \'`, 1},
		{"line\nbreak\t\"quoted\"", 0},
	} {
		n := 0
		_, err := c.Query(context.Background(), tenant, cred, "SELECT Id FROM User WHERE Email = "+salesforce.Quote(tt.value), func(json.RawMessage) error {
			n++
			return nil
		})
		if err != nil || n != tt.want {
			t.Errorf("%q: %d records, %v; want %d", tt.value, n, err, tt.want)
		}
	}
	if got := salesforce.Quote(`it's \ "x"`); got != `'it\'s \\ \"x\"'` {
		t.Errorf("Quote = %s", got)
	}
}
