package tables

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Table Storage keeps DateTime with 100 ns precision between 1601-01-01 and 9999-12-31 (UTC).
const timeLayout = "2006-01-02T15:04:05.0000000Z"

var minTableTime = time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// encoder collects an entity's properties in the JSON shape aztables sends (values plus @odata.type
// annotations for types JSON cannot express). The first error sticks, so encode methods read as a plain
// list of fields.
type encoder struct {
	ctx   context.Context
	seal  func(ctx context.Context, plaintext []byte) ([]byte, error)
	props map[string]any
	err   error
}

func newEncoder(ctx context.Context, seal func(context.Context, []byte) ([]byte, error)) *encoder {
	return &encoder{ctx: ctx, seal: seal, props: make(map[string]any, 16)}
}

func (e *encoder) fail(name string, err error) {
	if e.err == nil {
		e.err = fmt.Errorf("encode %s: %w", name, err)
	}
}

func (e *encoder) str(name, v string) {
	if v != "" {
		e.props[name] = v
	}
}

func (e *encoder) int(name string, v int64) {
	if v != 0 {
		e.props[name] = strconv.FormatInt(v, 10)
		e.props[name+"@odata.type"] = "Edm.Int64"
	}
}

func (e *encoder) bool(name string, v bool) {
	if v {
		e.props[name] = true
	}
}

func (e *encoder) time(name string, v time.Time) {
	if v.IsZero() {
		return
	}
	if v.Before(minTableTime) {
		e.fail(name, fmt.Errorf("time before 1601-01-01"))
		return
	}
	e.props[name] = formatTime(v)
	e.props[name+"@odata.type"] = "Edm.DateTime"
}

func (e *encoder) bytes(name string, v []byte) {
	if len(v) != 0 {
		e.props[name] = base64.StdEncoding.EncodeToString(v)
		e.props[name+"@odata.type"] = "Edm.Binary"
	}
}

// sealed stores v encrypted under the tenant's data key, bound to this table, tenant and row key.
func (e *encoder) sealed(name, v string) {
	if v == "" || e.err != nil {
		return
	}
	if e.seal == nil {
		e.fail(name, fmt.Errorf("personal field but the store has no Sealer"))
		return
	}
	ct, err := e.seal(e.ctx, []byte(v))
	if err != nil {
		e.fail(name, err)
		return
	}
	e.bytes(name, ct)
}

// decoder reads properties back. Missing properties give zero values; properties of the wrong type fail.
type decoder struct {
	ctx   context.Context
	open  func(ctx context.Context, sealed []byte) ([]byte, error)
	props map[string]json.RawMessage
	err   error
}

// envelope fields that are not entity properties.
var systemProps = map[string]bool{"PartitionKey": true, "RowKey": true, "Timestamp": true,
	"odata.etag": true, "odata.metadata": true, "odata.type": true, "odata.id": true, "odata.editLink": true}

func parseEntity(raw []byte) (pk, rk string, props map[string]json.RawMessage, err error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&props); err != nil {
		return "", "", nil, fmt.Errorf("parse entity: %w", err)
	}
	if err := json.Unmarshal(props["PartitionKey"], &pk); err != nil {
		return "", "", nil, fmt.Errorf("parse entity: PartitionKey: %w", err)
	}
	if err := json.Unmarshal(props["RowKey"], &rk); err != nil {
		return "", "", nil, fmt.Errorf("parse entity: RowKey: %w", err)
	}
	return pk, rk, props, nil
}

func (d *decoder) fail(name string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("decode %s: %w", name, err)
	}
}

func (d *decoder) raw(name string) (json.RawMessage, bool) {
	v, ok := d.props[name]
	if !ok || d.err != nil || string(v) == "null" {
		return nil, false
	}
	return v, true
}

func (d *decoder) str(name string) string {
	v, ok := d.raw(name)
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		d.fail(name, err)
	}
	return s
}

// int accepts both a quoted Edm.Int64 and a bare JSON number (Edm.Int32 written by another tool).
func (d *decoder) int(name string) int64 {
	v, ok := d.raw(name)
	if !ok {
		return 0
	}
	var s string
	if len(v) > 0 && v[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			d.fail(name, err)
			return 0
		}
	} else {
		s = string(v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.fail(name, err)
	}
	return n
}

func (d *decoder) bool(name string) bool {
	v, ok := d.raw(name)
	if !ok {
		return false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		d.fail(name, err)
	}
	return b
}

func (d *decoder) time(name string) time.Time {
	s := d.str(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(name, err)
	}
	return t.UTC()
}

func (d *decoder) bytes(name string) []byte {
	s := d.str(name)
	if s == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		d.fail(name, err)
	}
	return b
}

func (d *decoder) sealed(name string) string {
	ct := d.bytes(name)
	if len(ct) == 0 || d.err != nil {
		return ""
	}
	if d.open == nil {
		d.fail(name, fmt.Errorf("personal field but the store has no Sealer"))
		return ""
	}
	pt, err := d.open(d.ctx, ct)
	if err != nil {
		d.fail(name, err)
		return ""
	}
	return string(pt)
}

// Field describes one field of an entity, as its `table` struct tag declares it:
//
//	table:"key"       the field is (part of) the RowKey or PartitionKey, not a property
//	table:"sealed"    a personal field, sealed with the tenant's data key before it leaves the process
//	table:"personal"  identifies or describes a person (an object id, a presence state), stored in clear
//
// Options combine (`table:"key,personal"`). A sealed field is personal too. The catalogue reads these
// declarations: the data inventory test, and the test that every table holding personal fields has a
// module answering for it in a person's export and erasure.
type Field struct {
	Name     string
	Key      bool
	Personal bool
	Sealed   bool
}

type fieldKind uint8

const (
	kindString fieldKind = iota
	kindInt
	kindBool
	kindTime
	kindBytes
)

type codecField struct {
	Field
	index int
	kind  fieldKind
}

// schema is an entity type's codec, worked out once from its struct tags.
type schema struct {
	fields []Field      // every exported field, in declaration order
	props  []codecField // the non-key fields: the row's properties
	names  map[string]bool
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	bytesType   = reflect.TypeFor[[]byte]()
	schemaCache sync.Map // reflect.Type → *schema
)

// schemaFor returns the codec of struct type rt, or why the type cannot be stored.
func schemaFor(rt reflect.Type) (*schema, error) {
	if s, ok := schemaCache.Load(rt); ok {
		return s.(*schema), nil
	}
	if rt.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s is not a struct", rt)
	}
	s := &schema{names: map[string]bool{}}
	for i := range rt.NumField() {
		sf := rt.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := codecField{Field: Field{Name: sf.Name}, index: i}
		if tag, ok := sf.Tag.Lookup("table"); ok {
			for opt := range strings.SplitSeq(tag, ",") {
				switch opt {
				case "key":
					f.Key = true
				case "personal":
					f.Personal = true
				case "sealed":
					f.Sealed, f.Personal = true, true
				default:
					return nil, fmt.Errorf("%s.%s: unknown table tag option %q", rt.Name(), sf.Name, opt)
				}
			}
		}
		switch {
		case sf.Type == timeType:
			f.kind = kindTime
		case sf.Type == bytesType:
			f.kind = kindBytes
		case sf.Type.Kind() == reflect.String:
			f.kind = kindString
		case sf.Type.Kind() == reflect.Int || sf.Type.Kind() == reflect.Int64:
			f.kind = kindInt
		case sf.Type.Kind() == reflect.Bool:
			f.kind = kindBool
		default:
			return nil, fmt.Errorf("%s.%s: type %s cannot be stored", rt.Name(), sf.Name, sf.Type)
		}
		if f.Sealed && (f.kind != kindString || f.Key) {
			return nil, fmt.Errorf("%s.%s: only a string property can be sealed", rt.Name(), sf.Name)
		}
		s.fields = append(s.fields, f.Field)
		if !f.Key {
			s.props = append(s.props, f)
			s.names[f.Name] = true
		}
	}
	actual, _ := schemaCache.LoadOrStore(rt, s)
	return actual.(*schema), nil
}

// mustSchema is schemaFor for table construction: an entity that cannot be stored is a programming
// error, and the handler should stop at start rather than at the first write.
func mustSchema(rt reflect.Type) *schema {
	s, err := schemaFor(rt)
	if err != nil {
		panic("tables: " + err.Error())
	}
	return s
}

// encode writes the properties of v (an addressable struct value).
func (s *schema) encode(e *encoder, v reflect.Value) {
	for _, f := range s.props {
		fv := v.Field(f.index)
		switch f.kind {
		case kindString:
			if f.Sealed {
				e.sealed(f.Name, fv.String())
			} else {
				e.str(f.Name, fv.String())
			}
		case kindInt:
			e.int(f.Name, fv.Int())
		case kindBool:
			e.bool(f.Name, fv.Bool())
		case kindTime:
			e.time(f.Name, *fv.Addr().Interface().(*time.Time))
		case kindBytes:
			e.bytes(f.Name, fv.Bytes())
		}
	}
}

// decode reads the properties into v (an addressable struct value).
func (s *schema) decode(d *decoder, v reflect.Value) {
	for _, f := range s.props {
		fv := v.Field(f.index)
		switch f.kind {
		case kindString:
			if f.Sealed {
				fv.SetString(d.sealed(f.Name))
			} else {
				fv.SetString(d.str(f.Name))
			}
		case kindInt:
			n := d.int(f.Name)
			if fv.OverflowInt(n) {
				d.fail(f.Name, fmt.Errorf("out of range"))
				continue
			}
			fv.SetInt(n)
		case kindBool:
			fv.SetBool(d.bool(f.Name))
		case kindTime:
			fv.Set(reflect.ValueOf(d.time(f.Name)))
		case kindBytes:
			fv.SetBytes(d.bytes(f.Name))
		}
	}
}
