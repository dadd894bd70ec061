package registry_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
)

var ctx = context.Background()

var tenantIDType = reflect.TypeFor[core.TenantID]()

// fill returns an E with every field set to a non-zero value derived from seed (key fields included,
// all key-safe), and core.TenantID fields set to tenant — what a decoded row of that tenant holds.
func fill[E any](seed string, tenant core.TenantID) E {
	var e E
	fillValue(reflect.ValueOf(&e).Elem(), seed, tenant)
	return e
}

// fillValue is fill on an addressable struct value.
func fillValue(v reflect.Value, seed string, tenant core.TenantID) {
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		h := fnv.New32a()
		h.Write([]byte(seed + "/" + sf.Name))
		n := int64(h.Sum32()%100_000) + 1
		switch {
		case sf.Type == tenantIDType:
			f.SetString(string(tenant))
		case sf.Type.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("%s-%s-%d", seed, strings.ToLower(sf.Name), n))
		case sf.Type.Kind() == reflect.Int || sf.Type.Kind() == reflect.Int64:
			f.SetInt(n)
		case sf.Type.Kind() == reflect.Bool:
			f.SetBool(true)
		case sf.Type == reflect.TypeFor[time.Time]():
			t := base.Add(time.Duration(n) * time.Second).Add(time.Duration(n) * time.Microsecond)
			if sf.Name == "Day" {
				t = t.Truncate(24 * time.Hour)
			}
			f.Set(reflect.ValueOf(t))
		case sf.Type == reflect.TypeFor[[]byte]():
			s := sha256.Sum256([]byte(seed + sf.Name))
			f.SetBytes(s[:])
		default:
			panic("fill: unsupported field type " + sf.Type.String())
		}
	}
}

// diff describes the first field where a and b differ (times compared as instants), or "".
func diff(a, b any) string {
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range av.NumField() {
		x, y := av.Field(i).Interface(), bv.Field(i).Interface()
		if tx, ok := x.(time.Time); ok {
			if !tx.Equal(y.(time.Time)) {
				return fmt.Sprintf("%s: %v != %v", av.Type().Field(i).Name, x, y)
			}
			continue
		}
		if !reflect.DeepEqual(x, y) {
			return fmt.Sprintf("%s: %v != %v", av.Type().Field(i).Name, x, y)
		}
	}
	return ""
}

// requestCounter counts requests by method and path suffix, e.g. "POST $batch".
type requestCounter struct {
	batches atomic.Int64
	total   atomic.Int64
}

func (c *requestCounter) Do(req *policy.Request) (*http.Response, error) {
	c.total.Add(1)
	if req.Raw().Method == http.MethodPost && strings.HasSuffix(req.Raw().URL.Path, "$batch") {
		c.batches.Add(1)
	}
	return req.Next()
}

func countingOptions(c *requestCounter) *aztables.ClientOptions {
	return &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{c}}}
}
