package tables

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func roundTrip(t *testing.T, props map[string]any) *decoder {
	t.Helper()
	b, err := json.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return &decoder{ctx: context.Background(), props: raw}
}

func TestCodecTypes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 30, 0, 123456789, time.UTC)
	e := newEncoder(context.Background(), nil)
	e.str("S", "hello")
	e.str("Empty", "")
	e.int("I", 1<<40)
	e.int("Neg", -3)
	e.bool("B", true)
	e.bool("F", false)
	e.time("T", at)
	e.time("Zero", time.Time{})
	e.bytes("Bin", []byte{0, 1, 2})
	if e.err != nil {
		t.Fatal(e.err)
	}
	for _, absent := range []string{"Empty", "F", "Zero"} {
		if _, ok := e.props[absent]; ok {
			t.Errorf("zero value %s was stored", absent)
		}
	}
	if got := e.props["I@odata.type"]; got != "Edm.Int64" {
		t.Errorf("int annotation = %v", got)
	}
	d := roundTrip(t, e.props)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string", d.str("S"), "hello"},
		{"missing string", d.str("Empty"), ""},
		{"int64", d.int("I"), int64(1 << 40)},
		{"negative", d.int("Neg"), int64(-3)},
		{"missing int", d.int("Nope"), int64(0)},
		{"bool", d.bool("B"), true},
		{"missing bool", d.bool("F"), false},
		{"time to 100ns", d.time("T"), at.Truncate(100 * time.Nanosecond)},
		{"missing time", d.time("Zero"), time.Time{}},
		{"bytes", string(d.bytes("Bin")), "\x00\x01\x02"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if d.err != nil {
		t.Errorf("decode err = %v", d.err)
	}
}

func TestCodecErrors(t *testing.T) {
	t.Parallel()
	e := newEncoder(context.Background(), nil)
	e.time("Old", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC))
	if e.err == nil {
		t.Error("time before 1601 accepted")
	}
	e = newEncoder(context.Background(), nil)
	e.sealed("Mail", "a@b")
	if e.err == nil || !strings.Contains(e.err.Error(), "no Sealer") {
		t.Errorf("sealed without sealer err = %v", e.err)
	}

	tests := []struct {
		name  string
		props map[string]any
		read  func(d *decoder)
	}{
		{"bool as string", map[string]any{"B": "yes"}, func(d *decoder) { d.bool("B") }},
		{"int not a number", map[string]any{"I": "x", "I@odata.type": "Edm.Int64"}, func(d *decoder) { d.int("I") }},
		{"int overflow", map[string]any{"I": "99999999999999999999", "I@odata.type": "Edm.Int64"}, func(d *decoder) { d.int("I") }},
		{"time garbage", map[string]any{"T": "yesterday"}, func(d *decoder) { d.time("T") }},
		{"bytes not base64", map[string]any{"X": "!!"}, func(d *decoder) { d.bytes("X") }},
		{"string as number", map[string]any{"S": 5}, func(d *decoder) { d.str("S") }},
	}
	for _, tc := range tests {
		d := roundTrip(t, tc.props)
		tc.read(d)
		if d.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
