package tables

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testRecord is the engine's own entity: a composite key with a foreign id, and one field of every kind
// the codec stores.
type testRecord struct {
	Owner string `table:"key,personal"`
	Ref   string `table:"key"`
	Name  string `table:"sealed"`
	Label string
	Count int64
	Small int
	Flag  bool
	At    time.Time `table:"personal"`
	Blob  []byte
}

func (r *testRecord) RowKey() (string, error) {
	if err := ValidateKeyPart("owner", r.Owner); err != nil {
		return "", err
	}
	id, err := EncodeForeignID("ref", r.Ref)
	if err != nil {
		return "", err
	}
	return JoinKey(r.Owner, id), nil
}

func (r *testRecord) SetRowKey(rk string) error {
	parts, err := SplitKey("record key", rk, 2)
	if err != nil {
		return err
	}
	r.Owner = parts[0]
	r.Ref, err = DecodeForeignID("ref", parts[1])
	return err
}

func TestSchemaFromTags(t *testing.T) {
	t.Parallel()
	got := FieldsOf[testRecord]()
	want := []Field{
		{Name: "Owner", Key: true, Personal: true}, {Name: "Ref", Key: true},
		{Name: "Name", Personal: true, Sealed: true}, {Name: "Label"}, {Name: "Count"}, {Name: "Small"},
		{Name: "Flag"}, {Name: "At", Personal: true}, {Name: "Blob"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("fields = %+v\nwant %+v", got, want)
	}
	spec := SpecOf[testRecord]("records", "test", RetainTenantData)
	if p := spec.Personal(); !slices.Equal(p, []string{"Owner", "Name", "At"}) {
		t.Errorf("personal = %v", p)
	}
	if spec.Entity != "testRecord" {
		t.Errorf("entity = %q", spec.Entity)
	}
}

func TestSchemaRefusesWhatItCannotStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"unknown option", reflect.TypeFor[struct {
			A string `table:"secret"`
		}](), "unknown table tag option"},
		{"sealed int", reflect.TypeFor[struct {
			A int `table:"sealed"`
		}](), "only a string property can be sealed"},
		{"sealed key", reflect.TypeFor[struct {
			A string `table:"key,sealed"`
		}](), "only a string property can be sealed"},
		{"float", reflect.TypeFor[struct{ A float64 }](), "cannot be stored"},
		{"map", reflect.TypeFor[struct{ A map[string]string }](), "cannot be stored"},
	}
	for _, tc := range tests {
		if _, err := schemaFor(tc.typ); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSchemaRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSchema(reflect.TypeFor[testRecord]())
	in := testRecord{Owner: "u1", Ref: "AAMk/+=", Name: "Ada Lovelace", Label: "x", Count: 1 << 40, Small: -3,
		Flag: true, At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Blob: []byte{0, 1}}
	var sealedSeen []string
	seal := func(_ context.Context, pt []byte) ([]byte, error) {
		sealedSeen = append(sealedSeen, string(pt))
		return append([]byte("ct:"), pt...), nil
	}
	e := newEncoder(context.Background(), seal)
	s.encode(e, reflect.ValueOf(&in).Elem())
	if e.err != nil {
		t.Fatal(e.err)
	}
	if !slices.Equal(sealedSeen, []string{"Ada Lovelace"}) {
		t.Errorf("sealed %q, want only the sealed field", sealedSeen)
	}
	if got := e.props["Name"]; got != base64.StdEncoding.EncodeToString([]byte("ct:Ada Lovelace")) {
		t.Errorf("Name at rest = %v, want the ciphertext", got)
	}
	for _, key := range []string{"Owner", "Ref"} {
		if _, ok := e.props[key]; ok {
			t.Errorf("key field %s stored as a property", key)
		}
	}
	open := func(_ context.Context, ct []byte) ([]byte, error) { return ct[len("ct:"):], nil }
	d := roundTrip(t, e.props)
	d.open = open
	out := testRecord{Owner: in.Owner, Ref: in.Ref}
	s.decode(d, reflect.ValueOf(&out).Elem())
	if d.err != nil {
		t.Fatal(d.err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip = %+v\nwant %+v", out, in)
	}

}

// BenchmarkSchemaEncode is the codec's share of every write (a presence upsert is one).
func BenchmarkSchemaEncode(b *testing.B) {
	s := mustSchema(reflect.TypeFor[testRecord]())
	in := testRecord{Owner: "u1", Ref: "AAMk", Label: "x", Count: 42, Small: 3, Flag: true,
		At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Blob: []byte{0, 1}}
	v := reflect.ValueOf(&in).Elem()
	b.ReportAllocs()
	for b.Loop() {
		e := newEncoder(context.Background(), nil)
		s.encode(e, v)
	}
}

// BenchmarkSchemaDecode is its share of every read.
func BenchmarkSchemaDecode(b *testing.B) {
	s := mustSchema(reflect.TypeFor[testRecord]())
	in := testRecord{Owner: "u1", Ref: "AAMk", Label: "x", Count: 42, Small: 3, Flag: true,
		At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Blob: []byte{0, 1}}
	e := newEncoder(context.Background(), nil)
	s.encode(e, reflect.ValueOf(&in).Elem())
	raw, _ := json.Marshal(e.props)
	b.ReportAllocs()
	for b.Loop() {
		_, _, props, _ := parseEntity(raw)
		var out testRecord
		s.decode(&decoder{ctx: context.Background(), props: props}, reflect.ValueOf(&out).Elem())
	}
}

func TestRecordIsPlainJSON(t *testing.T) {
	t.Parallel()
	tbl := &Table[testRecord, *testRecord]{raw: &raw{name: "records"}, schema: mustSchema(reflect.TypeFor[testRecord]())}
	rec, err := tbl.Record(testRecord{Owner: "u1", Ref: "AAMk/+=", Name: "Ada", Count: 7, Flag: true,
		At: time.Date(2026, 12, 2, 10, 0, 0, 0, time.FixedZone("CET", 3600)), Blob: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"table":"records","key":"u1|QUFNay8rPQ","fields":{"At":"2026-12-02T09:00:00Z","Blob":"AQI=","Count":7,` +
		`"Flag":true,"Label":"","Name":"Ada","Owner":"u1","Ref":"AAMk/+=","Small":0}}`
	if string(b) != want {
		t.Errorf("record = %s\nwant     %s", b, want)
	}
}
