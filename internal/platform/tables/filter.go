package tables

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

// Filter fills each ? in tmpl with the OData literal for the matching argument. tmpl is always a
// constant in this package: property names and operators never come from input, only values do, and
// every value is quoted here (strings with embedded ' doubled). It panics on a mismatch between
// placeholders and arguments because that is a programming error, never an input error.
func Filter(tmpl string, args ...any) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '?' {
			b.WriteByte(tmpl[i])
			continue
		}
		if n >= len(args) {
			panic("Filter: more placeholders than arguments")
		}
		b.WriteString(odataLiteral(args[n]))
		n++
	}
	if n != len(args) {
		panic("Filter: more arguments than placeholders")
	}
	return b.String()
}

func odataLiteral(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case core.TenantID:
		return "'" + strings.ReplaceAll(string(v), "'", "''") + "'"
	case int64:
		return strconv.FormatInt(v, 10) + "L"
	case int:
		return strconv.FormatInt(int64(v), 10) + "L"
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return "datetime'" + formatTime(v) + "'"
	default:
		panic(fmt.Sprintf("Filter: unsupported argument type %T", v))
	}
}

// PrefixUpperBound returns the smallest string greater than every string with the given prefix, for
// RowKey ge prefix and RowKey lt bound range scans. Prefixes here end in KeySep, so the last byte is ASCII.
func PrefixUpperBound(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}
