package app

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
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
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
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

// TestDataInventoryListsEveryField holds the inventory page and the tables' declarations together:
// every field of every catalogue table has its row, the Personal and Sealed columns say what the
// field's `table` tag says (the codec seals exactly the tagged fields), and key fields are the ones the
// page marks as key and really come back from the row key.
func TestDataInventoryListsEveryField(t *testing.T) {
	t.Parallel()
	structs, rows := parseInventory(t)
	known := map[string]bool{}
	for _, name := range catalogue.Names() {
		known[name] = true
	}
	for table := range rows {
		if !known[table] {
			t.Errorf("inventory lists table %s, which no module declares", table)
		}
	}

	for _, spec := range catalogue {
		doc, ok := rows[spec.Name]
		if !ok {
			t.Errorf("table %s (%s) is missing from docs/data-inventory.md", spec.Name, spec.Entity)
			continue
		}
		if structs[spec.Name] != spec.Entity {
			t.Errorf("inventory says table %s holds %s, the code says %s", spec.Name, structs[spec.Name], spec.Entity)
		}
		var names []string
		for _, f := range spec.Fields {
			names = append(names, f.Name)
			row, ok := doc[f.Name]
			if !ok {
				t.Errorf("%s.%s is not in docs/data-inventory.md: add a row (personal? sealed? purpose, retention)", spec.Name, f.Name)
				continue
			}
			if docPersonal := row.personal != "no"; docPersonal != f.Personal {
				t.Errorf("%s.%s: the tag says personal = %v, the inventory says %q", spec.Name, f.Name, f.Personal, row.personal)
			}
			if docSealed := row.sealed == "yes"; docSealed != f.Sealed {
				t.Errorf("%s.%s: the tag says sealed = %v, the inventory says %q", spec.Name, f.Name, f.Sealed, row.sealed)
			}
			if docKey := strings.HasPrefix(row.purpose, "key"); docKey != f.Key {
				t.Errorf("%s.%s: the tag says key = %v, the inventory's purpose %q", spec.Name, f.Name, f.Key, row.purpose)
			}
		}
		for f, row := range doc {
			if !slices.Contains(names, f) {
				t.Errorf("inventory lists %s.%s, which %s does not have", spec.Name, f, spec.Entity)
			}
			if !slices.Contains([]string{"yes", "id", "linked", "no"}, row.personal) || !slices.Contains([]string{"yes", "no"}, row.sealed) {
				t.Errorf("%s.%s: personal %q / sealed %q not in the legend", spec.Name, f, row.personal, row.sealed)
			}
			if row.personal == "yes" && row.sealed != "yes" {
				t.Errorf("%s.%s is personal text but not sealed", spec.Name, f)
			}
			if row.purpose == "" || row.retention == "" {
				t.Errorf("%s.%s: purpose and retention are required", spec.Name, f)
			}
		}

		// Key fields are not stored as properties: they must come back from the row key, or be lost.
		e := spec.NewEntity()
		fillAll(e)
		rk, err := e.RowKey()
		if err != nil {
			t.Fatalf("%s: row key: %v", spec.Name, err)
		}
		back := spec.NewEntity()
		if err := back.SetRowKey(rk); err != nil {
			t.Fatalf("%s: SetRowKey: %v", spec.Name, err)
		}
		if p, ok := back.(tables.Partitioned); ok {
			p.SetPartition("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
		}
		bv, ev := reflect.ValueOf(back).Elem(), reflect.ValueOf(e).Elem()
		for _, f := range spec.Fields {
			if f.Key && !reflect.DeepEqual(bv.FieldByName(f.Name).Interface(), ev.FieldByName(f.Name).Interface()) {
				t.Errorf("%s.%s is a key field but does not come back from the row key: it would be lost", spec.Name, f.Name)
			}
		}
	}
}
