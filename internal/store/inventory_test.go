package store

import (
	"bufio"
	"context"
	"encoding/base64"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

type inventoryRow struct {
	personal, sealed, purpose, retention string
}

var (
	sectionRE = regexp.MustCompile("^### `([a-z]+)` \\((\\w+)\\)")
	rowRE     = regexp.MustCompile("^\\| `(\\w+)` \\| ([^|]+) \\| ([^|]+) \\| ([^|]*) \\| ([^|]*) \\|$")
)

// parseInventory reads docs/data-inventory.md: per table, the struct name and the field rows.
func parseInventory(t *testing.T) (map[string]string, map[string]map[string]inventoryRow) {
	t.Helper()
	f, err := os.Open("../../docs/data-inventory.md")
	if err != nil {
		t.Fatalf("open data inventory: %v", err)
	}
	defer f.Close()
	structs := map[string]string{}
	rows := map[string]map[string]inventoryRow{}
	table := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "## ") {
			table = ""
		}
		if m := sectionRE.FindStringSubmatch(text); m != nil {
			table = m[1]
			if _, dup := structs[table]; dup {
				t.Errorf("inventory line %d: table %s listed twice", line, table)
			}
			structs[table] = m[2]
			rows[table] = map[string]inventoryRow{}
			continue
		}
		if table == "" || !strings.HasPrefix(text, "| `") {
			continue
		}
		m := rowRE.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("inventory line %d: malformed field row %q", line, text)
			continue
		}
		if _, dup := rows[table][m[1]]; dup {
			t.Errorf("inventory line %d: %s.%s listed twice", line, table, m[1])
		}
		rows[table][m[1]] = inventoryRow{personal: strings.TrimSpace(m[2]), sealed: strings.TrimSpace(m[3]),
			purpose: strings.TrimSpace(m[4]), retention: strings.TrimSpace(m[5])}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return structs, rows
}

// fillAll sets every field of e to a non-zero, key-safe value.
func fillAll(e any) {
	v := reflect.ValueOf(e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[core.TenantID]():
			f.SetString("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
		case f.Kind() == reflect.String:
			f.SetString("v")
		case f.Kind() == reflect.Int:
			f.SetInt(1)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)))
		case f.Type() == reflect.TypeFor[[]byte]():
			f.SetBytes([]byte{1, 2, 3})
		default:
			panic("fillAll: unsupported field type " + f.Type().String())
		}
	}
}

const sealMarker = "sealed-by-test"

func TestDataInventoryListsEveryField(t *testing.T) {
	t.Parallel()
	structs, rows := parseInventory(t)
	tables := map[string]bool{}
	for _, name := range allTables() {
		tables[name] = true
	}
	for table := range rows {
		if !tables[table] {
			t.Errorf("inventory lists table %s, which the store does not have", table)
		}
	}

	for _, spec := range Catalogue() {
		inv := struct {
			table string
			e     entity
		}{spec.Name, spec.newEntity()}
		rt := reflect.TypeOf(inv.e).Elem()
		doc, ok := rows[inv.table]
		if !ok {
			t.Errorf("table %s (%s) is missing from docs/data-inventory.md", inv.table, rt.Name())
			continue
		}
		if structs[inv.table] != rt.Name() {
			t.Errorf("inventory says table %s holds %s, the code says %s", inv.table, structs[inv.table], rt.Name())
		}
		var fields []string
		for i := range rt.NumField() {
			fields = append(fields, rt.Field(i).Name)
		}
		for _, f := range fields {
			if _, ok := doc[f]; !ok {
				t.Errorf("%s.%s is not in docs/data-inventory.md: add a row (personal? sealed? purpose, retention)", inv.table, f)
			}
		}
		for f, row := range doc {
			if !slices.Contains(fields, f) {
				t.Errorf("inventory lists %s.%s, which %s does not have", inv.table, f, rt.Name())
			}
			if !slices.Contains([]string{"yes", "id", "linked", "no"}, row.personal) || !slices.Contains([]string{"yes", "no"}, row.sealed) {
				t.Errorf("%s.%s: personal %q / sealed %q not in the legend", inv.table, f, row.personal, row.sealed)
			}
			if row.personal == "yes" && row.sealed != "yes" {
				t.Errorf("%s.%s is personal text but not sealed", inv.table, f)
			}
			if row.purpose == "" || row.retention == "" {
				t.Errorf("%s.%s: purpose and retention are required", inv.table, f)
			}
		}

		// What the code stores must match: every property is a listed field, and exactly the fields
		// marked sealed go through the Sealer.
		e := reflect.New(rt).Interface().(entity)
		fillAll(e)
		enc := newEncoder(context.Background(), func(context.Context, []byte) ([]byte, error) { return []byte(sealMarker), nil })
		e.encode(enc)
		if enc.err != nil {
			t.Fatalf("%s: encode: %v", inv.table, enc.err)
		}
		sealedMarker := base64.StdEncoding.EncodeToString([]byte(sealMarker))
		for prop, val := range enc.props {
			if strings.Contains(prop, "@odata.type") {
				continue
			}
			row, listed := doc[prop]
			if !listed {
				t.Errorf("%s stores property %s, which the inventory does not list", inv.table, prop)
				continue
			}
			if gotSealed := val == sealedMarker; gotSealed != (row.sealed == "yes") {
				t.Errorf("%s.%s: code seals it = %v, inventory says sealed %q", inv.table, prop, gotSealed, row.sealed)
			}
		}
		// Fields that are neither stored as properties nor key-derived would be silently lost.
		rk, err := e.rowKey()
		if err != nil {
			t.Fatalf("%s: row key: %v", inv.table, err)
		}
		back := reflect.New(rt).Interface().(entity)
		if err := back.setRowKey(rk); err != nil {
			t.Fatalf("%s: setRowKey: %v", inv.table, err)
		}
		if p, ok := back.(partitioned); ok {
			p.setPartition("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
		}
		bv, ev := reflect.ValueOf(back).Elem(), reflect.ValueOf(e).Elem()
		for _, f := range fields {
			_, stored := enc.props[f]
			fromKey := reflect.DeepEqual(bv.FieldByName(f).Interface(), ev.FieldByName(f).Interface())
			if !stored && !fromKey {
				t.Errorf("%s.%s is neither stored nor restored from the key: it would be lost", inv.table, f)
			}
		}
	}
}
