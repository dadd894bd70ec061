package tables

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

// Record is one stored row as a person's export shows it: the table, the row key, and every field of
// the row by name, sealed fields opened (the typed read already opened them). Times are RFC 3339 in
// UTC and bytes base64, so the record is plain JSON another system can import.
type Record struct {
	Table  string         `json:"table"`
	Key    string         `json:"key"`
	Fields map[string]any `json:"fields"`
}

// Record describes e as its table stores it.
func (t *Table[E, P]) Record(e E) (Record, error) {
	rk, err := P(&e).RowKey()
	if err != nil {
		return Record{}, err
	}
	v := reflect.ValueOf(&e).Elem()
	fields := make(map[string]any, len(t.schema.fields))
	for _, f := range t.schema.fields {
		fv := v.FieldByName(f.Name)
		switch x := fv.Interface().(type) {
		case time.Time:
			if x.IsZero() {
				fields[f.Name] = nil
			} else {
				fields[f.Name] = x.UTC().Format(time.RFC3339Nano)
			}
		case []byte:
			fields[f.Name] = base64.StdEncoding.EncodeToString(x)
		default:
			if fv.Kind() == reflect.String {
				fields[f.Name] = fv.String() // named string types (states) as plain strings
			} else {
				fields[f.Name] = x
			}
		}
	}
	return Record{Table: t.name, Key: rk, Fields: fields}, nil
}

// ExportWhere lists, as records, the tenant's rows for which match holds: a module's answer to a
// person's export, with match naming the fields that can hold the person's id.
func (t *Table[E, P]) ExportWhere(ctx context.Context, tenant core.TenantID, match func(*E) bool) ([]Record, error) {
	var out []Record
	for e, err := range t.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t.name, err)
		}
		if match(&e) {
			rec, err := t.Record(e)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Erasure counts what a person's erasure did, per table: rows deleted, and rows that must stay (the
// audit trail, a tenant's settings, grants others hold) rewritten without the person.
type Erasure map[string]Erased

// Erased is one table's share of an Erasure.
type Erased struct {
	Deleted       int `json:"deleted"`
	Pseudonymised int `json:"pseudonymised"`
}

// Add counts rows of table; a table with nothing done is still named (it was looked at).
func (e Erasure) Add(table string, deleted, pseudonymised int) {
	c := e[table]
	c.Deleted += deleted
	c.Pseudonymised += pseudonymised
	e[table] = c
}

// Merge adds o's counts into e.
func (e Erasure) Merge(o Erasure) {
	for t, c := range o {
		e.Add(t, c.Deleted, c.Pseudonymised)
	}
}

// Rows is the number of rows deleted or rewritten.
func (e Erasure) Rows() int {
	n := 0
	for _, c := range e {
		n += c.Deleted + c.Pseudonymised
	}
	return n
}

// EraseWhere is a module's answer to a person's erasure: it deletes the tenant's rows for which remove
// holds, and rewrites those that must stay but name the person with scrub, which changes the row in
// place and reports whether it did (nil: nothing stays). It answers what it deleted and rewrote.
func (t *Table[E, P]) EraseWhere(ctx context.Context, tenant core.TenantID, remove func(*E) bool, scrub func(*E) bool) (Erasure, error) {
	out := Erasure{}
	out.Add(t.name, 0, 0)
	var gone, changed []string
	for e, err := range t.All(ctx, tenant, nil) {
		if err != nil {
			return out, fmt.Errorf("list %s: %w", t.name, err)
		}
		rk, err := P(&e).RowKey()
		if err != nil {
			return out, err
		}
		switch {
		case remove != nil && remove(&e):
			gone = append(gone, rk)
		case scrub != nil && scrub(&e):
			changed = append(changed, rk)
		}
	}
	n, err := t.DeleteBatch(ctx, tenant, gone)
	out.Add(t.name, n, 0)
	if err != nil {
		return out, fmt.Errorf("erase from %s: %w", t.name, err)
	}
	for _, rk := range changed {
		_, err := t.Update(ctx, tenant, rk, func(e *E) error { scrub(e); return nil })
		switch {
		case err == nil:
			out.Add(t.name, 0, 1)
		case !errors.Is(err, ErrNotFound): // a row deleted meanwhile needs no scrubbing
			return out, fmt.Errorf("erase from %s: %w", t.name, err)
		}
	}
	return out, nil
}
