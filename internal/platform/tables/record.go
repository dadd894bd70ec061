package tables

import (
	"encoding/base64"
	"reflect"
	"time"
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
