package notification

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const samplesDir = "testdata/graph-samples"

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return b
}

// mustReplace applies one fix-up and fails if the fix did not apply, so a changed sample cannot silently skip it.
func mustReplace(t testing.TB, b []byte, re *regexp.Regexp, repl string) []byte {
	t.Helper()
	if !re.Match(b) {
		t.Fatalf("fix-up %q does not apply", re)
	}
	return re.ReplaceAll(b, []byte(repl))
}

// eventGridData extracts the changeNotification in a CloudEvents envelope and wraps it in a collection, the
// shape in which a webhook would receive it.
func eventGridData(t testing.TB, b []byte) []byte {
	t.Helper()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("decode cloud event: %v", err)
	}
	if len(env.Data) == 0 {
		t.Fatal("cloud event has no data")
	}
	return []byte(`{"value":[` + string(env.Data) + `]}`)
}

type sampleCase struct {
	name string
	// invalid says the sample as published is not JSON and fix must repair it.
	invalid bool
	fix     func(t testing.TB, b []byte) []byte
}

func sampleCases() []sampleCase {
	return []sampleCase{
		{name: "01-webhook-message-basic.json"},
		{name: "02-presence-basic.json", invalid: true, fix: func(t testing.TB, b []byte) []byte {
			// Fix: drop the trailing comma after organizationId.
			return mustReplace(t, b, regexp.MustCompile(`,(\s*\})`), "$1")
		}},
		{name: "03-presence-rich.json"},
		{name: "05-lifecycle-notification.json"},
		{name: "06-rich-validationtokens-two-tenants.json", invalid: true, fix: func(t testing.TB, b []byte) []byte {
			// Fix: drop the ", ..." that stands for the elided properties of each item.
			return mustReplace(t, b, regexp.MustCompile(`,\s*\.\.\.`), "")
		}},
		{name: "07-rich-chatmessage-encrypted-doc.json", invalid: true, fix: func(t testing.TB, b []byte) []byte {
			// Fix: delete the "// Other properties ..." comment line.
			return mustReplace(t, b, regexp.MustCompile(`(?m)^\s*//.*$`), "")
		}},
		{name: "09-outlook-message-rich.json", invalid: true, fix: func(t testing.TB, b []byte) []byte {
			// Fix: insert the missing comma between the value array and validationTokens.
			return mustReplace(t, b, regexp.MustCompile(`\](\s*"validationTokens")`), "],$1")
		}},
		{name: "11-outlook-message-basic-fragment.json", invalid: true, fix: func(t testing.TB, b []byte) []byte {
			// Fix: wrap the bare `"value": [...]` fragment in braces.
			return []byte("{" + string(b) + "}")
		}},
		{name: "12-eventhubs-validation-message.json"},
		{name: "13-eventgrid-user-updated.json", fix: eventGridData},
		{name: "14-eventgrid-user-deleted.json", fix: eventGridData},
		{name: "15-eventgrid-group-updated.json", fix: eventGridData},
		{name: "16-eventgrid-outlook-event-created.json", fix: eventGridData},
	}
}

func caseNamed(name string) sampleCase {
	for _, c := range sampleCases() {
		if c.name == name {
			return c
		}
	}
	panic("no sample case " + name)
}

func sampleBody(t testing.TB, c sampleCase) []byte {
	b := readSample(t, c.name)
	if c.fix != nil {
		b = c.fix(t, b)
	}
	return b
}

func TestParseSamples(t *testing.T) {
	t.Parallel()
	type want struct {
		items          int
		tokens         int
		subscriptionID string
		tenant         string
		changeType     string
		resourceID     string
		etag           string
		lifecycle      bool
		rich           bool
	}
	wants := map[string]want{
		"01-webhook-message-basic.json": {items: 1, subscriptionID: "{subscription_guid}",
			tenant: "84bd8158-6d4d-4958-8b9f-9d6445542f95", changeType: "created", resourceID: "{long_id_string}",
			etag: `W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"`},
		"02-presence-basic.json": {items: 1, subscriptionID: "{Subscription id}", tenant: "{Organization/Tenant id}",
			changeType: "updated", resourceID: "{User Id}"},
		"03-presence-rich.json": {items: 1, tokens: 1, subscriptionID: "{Subscription id}",
			tenant: "{Organization/Tenant id}", changeType: "updated", resourceID: "{User Id}", rich: true},
		"05-lifecycle-notification.json": {items: 1, subscriptionID: "<subscription_guid>", tenant: "<tenant_guid>",
			lifecycle: true},
		"06-rich-validationtokens-two-tenants.json": {items: 2, tokens: 2,
			subscriptionID: "76619225-ff6b-4489-96ca-4ef547e78b22", tenant: "aaaabbbb-0000-cccc-1111-dddd2222eeee",
			changeType: "created"},
		"07-rich-chatmessage-encrypted-doc.json": {items: 1, tokens: 1,
			subscriptionID: "76222963-cc7b-42d2-882d-8aaa69cb2ba3", changeType: "created", resourceID: "1565293727947",
			rich: true},
		"09-outlook-message-rich.json": {items: 1, tokens: 1, subscriptionID: "dfd11b2f-8222-4189-9545-4205c95d6235",
			tenant: "<<--TenantForWhichNotificationWasSent-->>", changeType: "created",
			resourceID: "AAMkAGUwNjQ4ZjIxLTQ3Y2Y8AAA=", etag: `W/"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAGDUR8n"`, rich: true},
		"11-outlook-message-basic-fragment.json": {items: 1, subscriptionID: "c6126aa3-0ed8-412f-a988-71e6cee627c4",
			tenant: "<<--TenantForWhichNotificationWasSent-->>", changeType: "created", resourceID: "AAMkAGUwNjQ4ZjIxAAA=",
			etag: `W/"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAGDUUXn"`},
		"12-eventhubs-validation-message.json": {items: 1, subscriptionID: "NA",
			changeType: "Validation: Testing client application reachability for subscription Request-Id: 522a8e7e-096a-494c-aaf1-ac0dcfca45b7",
			resourceID: "NA"},
		"13-eventgrid-user-updated.json": {items: 1, subscriptionID: "<microsoft-graph-subscription-id>",
			tenant: "<tenant-id>", changeType: "updated", resourceID: "<user-id>"},
		"14-eventgrid-user-deleted.json": {items: 1, subscriptionID: "<microsoft-graph-subscription-id>",
			tenant: "<tenant-id>", changeType: "deleted", resourceID: "<user-id>"},
		"15-eventgrid-group-updated.json": {items: 1, subscriptionID: "<microsoft-graph-subscription-id>",
			tenant: "<tenant-id>", changeType: "updated", resourceID: "<group-id>"},
		// PascalCase keys (ChangeType, Id) and no tenant at all in this legacy Outlook shape.
		"16-eventgrid-outlook-event-created.json": {items: 1,
			subscriptionID: "MTE1MTVlYTktMjVkZS00MjY3LWI1YzYtMjg0NzliZmRhYWQ2", changeType: "created",
			resourceID: "<event id>", etag: "<tag id>"},
	}
	for _, c := range sampleCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.invalid {
				if json.Valid(readSample(t, c.name)) {
					t.Fatal("sample marked invalid is valid JSON; drop its fix-up")
				}
			}
			col, err := Parse(sampleBody(t, c))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			w, ok := wants[c.name]
			if !ok {
				t.Fatal("no expectation for sample")
			}
			if got := len(col.Value); got != w.items {
				t.Fatalf("items = %d, want %d", got, w.items)
			}
			n := col.Value[0]
			got := want{
				items:          len(col.Value),
				tokens:         len(col.ValidationTokens),
				subscriptionID: n.SubscriptionID,
				tenant:         n.Tenant(),
				changeType:     n.ChangeType,
				resourceID:     n.ResourceData.ID,
				etag:           n.ResourceData.ODataEtag,
				lifecycle:      n.IsLifecycle(),
				rich:           n.IsRich(),
			}
			if got != w {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestParseSampleDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		c     sampleCase
		field func(Collection) string
		want  string
	}{
		{"presence top-level organizationId", caseNamed("02-presence-basic.json"), func(c Collection) string { return c.Value[0].OrganizationID },
			"{Organization/Tenant id}"},
		{"lifecycle event", sampleCase{name: "05-lifecycle-notification.json"},
			func(c Collection) string { return c.Value[0].LifecycleEvent }, "subscriptionRemoved or missed or reauthorizationRequired"},
		{"second tenant of a mixed POST", caseNamed("06-rich-validationtokens-two-tenants.json"), func(c Collection) string { return c.Value[1].Tenant() },
			"bbbbcccc-1111-dddd-2222-eeee3333ffff"},
		{"encryption certificate id", caseNamed("07-rich-chatmessage-encrypted-doc.json"),
			func(c Collection) string { return c.Value[0].EncryptedContent.EncryptionCertificateID },
			"MySelfSignedCert/DDC9651A-D7BC-4D74-86BC-A8923584B0AB"},
		{"data signature", caseNamed("09-outlook-message-rich.json"), func(c Collection) string { return c.Value[0].EncryptedContent.DataSignature },
			"Qw/9ubWeUYJPWWXvNiGgct2FkNG2MXTRm/BLUpJM66k="},
		{"event grid organizationId in resourceData", caseNamed("13-eventgrid-user-updated.json"),
			func(c Collection) string { return c.Value[0].ResourceData.OrganizationID }, "<tenant-id>"},
		{"event grid sequenceNumber", caseNamed("13-eventgrid-user-updated.json"),
			func(c Collection) string { return string(c.Value[0].ResourceData.SequenceNumber) }, "<sequence-number>"},
		{"PascalCase SubscriptionExpirationDateTime", caseNamed("16-eventgrid-outlook-event-created.json"),
			func(c Collection) string { return c.Value[0].SubscriptionExpirationDateTime }, "2019-02-14T23:56:30.1307708Z"},
		{"null Id leaves the id empty", caseNamed("16-eventgrid-outlook-event-created.json"), func(c Collection) string { return c.Value[0].ID }, ""},
		{"resource with odata type", caseNamed("16-eventgrid-outlook-event-created.json"), func(c Collection) string { return c.Value[0].ResourceData.ODataType },
			"#Microsoft.OutlookServices.Event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			col, err := Parse(sampleBody(t, tt.c))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.field(col); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseNotCollection(t *testing.T) {
	t.Parallel()
	fromSample := func(name string) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return readSample(t, name) }
	}
	literal := func(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }
	tests := []struct {
		name string
		body func(testing.TB) []byte
	}{
		{"decrypted presence resource", fromSample("04-presence-decrypted.json")},
		{"JWT claims with comments", fromSample("08-validation-token-claims-v2.jsonc")},
		{"JWT claims without comments", func(t testing.TB) []byte {
			return regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAll(readSample(t, "08-validation-token-claims-v2.jsonc"), nil)
		}},
		{"decrypted outlook message", fromSample("10-outlook-message-rich-decrypted.json")},
		{"bare encryptedContent", fromSample("17-sdk-testvector-encryptedContent.json")},
		{"decrypted chat message", fromSample("19-sdk-testvector-expected-plaintext.json")},
		{"cloud event envelope", fromSample("13-eventgrid-user-updated.json")},
		{"published fragment unfixed", fromSample("11-outlook-message-basic-fragment.json")},
		{"empty body", literal("")},
		{"whitespace", literal(" \n")},
		{"null", literal("null")},
		{"array", literal(`[{"subscriptionId":"s"}]`)},
		{"string", literal(`"value"`)},
		{"empty object", literal(`{}`)},
		{"null value", literal(`{"value":null}`)},
		{"value is an object", literal(`{"value":{"subscriptionId":"s"}}`)},
		{"value is a string", literal(`{"value":"x"}`)},
		{"item is a number", literal(`{"value":[1]}`)},
		{"subscriptionId is a number", literal(`{"value":[{"subscriptionId":5}]}`)},
		{"resourceData is a string", literal(`{"value":[{"resourceData":"x"}]}`)},
		{"sequenceNumber is an object", literal(`{"value":[{"resourceData":{"sequenceNumber":{}}}]}`)},
		{"validationTokens holds a number", literal(`{"value":[],"validationTokens":[1]}`)},
		{"trailing garbage", literal(`{"value":[]} x`)},
		{"truncated", literal(`{"value":[{"subscriptionId":"s"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.body(t))
			if !errors.Is(err, ErrNotCollection) {
				t.Errorf("Parse error = %v, want ErrNotCollection", err)
			}
		})
	}
}

func TestParseValidEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		items int
		subID string
	}{
		{"empty collection", `{"value":[]}`, 0, ""},
		{"item without subscriptionId is kept", `{"value":[{"changeType":"created"}]}`, 1, ""},
		{"null item is kept empty", `{"value":[null]}`, 1, ""},
		{"PascalCase top level", `{"Value":[{"SubscriptionId":"s1"}]}`, 1, "s1"},
		{"unknown fields ignored", `{"value":[{"subscriptionId":"s1","x":{"y":[1]}}],"@odata.context":"c"}`, 1, "s1"},
		{"numeric sequenceNumber", `{"value":[{"subscriptionId":"s1","resourceData":{"sequenceNumber":42}}]}`, 1, "s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			col, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := len(col.Value); got != tt.items {
				t.Fatalf("items = %d, want %d", got, tt.items)
			}
			if tt.items > 0 && col.Value[0].SubscriptionID != tt.subID {
				t.Errorf("subscriptionId = %q, want %q", col.Value[0].SubscriptionID, tt.subID)
			}
		})
	}
}

func TestParseAtMost(t *testing.T) {
	t.Parallel()
	items := func(n int, item string) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	tests := []struct {
		name    string
		body    string
		wantErr error // nil: parsed
	}{
		{"at the limit", `{"value":[` + items(3, `{"subscriptionId":"a,b"}`) + `]}`, nil},
		{"empty", `{"value":[]}`, nil},
		{"one over", `{"value":[` + items(4, `{}`) + `]}`, ErrTooManyItems},
		{"null items count", `{"value":[` + items(4, `null`) + `]}`, ErrTooManyItems},
		{"tokens over", `{"value":[],"validationTokens":[` + items(4, `"t"`) + `]}`, ErrTooManyItems},
		{"PascalCase key", `{"Value":[` + items(4, `{}`) + `]}`, ErrTooManyItems},
		{"escaped key", `{"\u0076alue":[` + items(4, `{}`) + `]}`, ErrTooManyItems},
		{"an ignored member", `{"value":[],"x":[` + items(4, `1`) + `]}`, ErrTooManyItems},
		{"commas in strings and objects do not count", `{"value":[{"resource":"a,b,c,d,e","resourceData":{"id":"x","@odata.id":"y","@odata.etag":"z"}},` +
			`{"clientState":"\",\",\",\",\\\\","changeType":"[,,,,]"}],"validationTokens":["a,b,c,d"]}`, nil},
		{"deeper arrays do not count", `{"value":[{"x":[` + items(10, `1`) + `]}]}`, nil},
		{"an object member's commas do not count", `{"value":[],"o":{"a":1,"b":2,"c":3,"d":4,"e":5}}`, nil},
		{"not a collection is still refused", `{"value":{"a":1}}`, ErrNotCollection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			col, err := ParseAtMost([]byte(tt.body), 3)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseAtMost = %v, want %v", err, tt.wantErr)
			}
			if len(col.Value) > 3 || len(col.ValidationTokens) > 3 {
				t.Errorf("%d items and %d tokens passed a limit of 3", len(col.Value), len(col.ValidationTokens))
			}
		})
	}
	// Without a limit, or within it, ParseAtMost is Parse.
	body := []byte(`{"value":[` + items(5, `{"subscriptionId":"s"}`) + `]}`)
	for _, limit := range []int{0, 5} {
		if col, err := ParseAtMost(body, limit); err != nil || len(col.Value) != 5 {
			t.Errorf("limit %d: %d items, %v", limit, len(col.Value), err)
		}
	}
}

func TestLooseStringNumber(t *testing.T) {
	t.Parallel()
	col, err := Parse([]byte(`{"value":[{"resourceData":{"sequenceNumber":-1.5e3}}]}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := string(col.Value[0].ResourceData.SequenceNumber), "-1.5e3"; got != want {
		t.Errorf("sequenceNumber = %q, want %q", got, want)
	}
}

func TestTenant(t *testing.T) {
	t.Parallel()
	const a, b = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
	tests := []struct {
		name string
		n    Notification
		want string
	}{
		{"tenantId only", Notification{TenantID: a}, a},
		{"organizationId only", Notification{OrganizationID: a}, a},
		{"resourceData organizationId only", Notification{ResourceData: ResourceData{OrganizationID: a}}, a},
		{"presence: both equal", Notification{TenantID: a, OrganizationID: a}, a},
		{"event grid: both equal", Notification{TenantID: a, ResourceData: ResourceData{OrganizationID: a}}, a},
		{"equal ignoring case keeps tenantId", Notification{TenantID: a, OrganizationID: strings.ToUpper(a)}, a},
		{"tenantId and organizationId disagree", Notification{TenantID: a, OrganizationID: b}, ""},
		{"tenantId and resourceData disagree", Notification{TenantID: a, ResourceData: ResourceData{OrganizationID: b}}, ""},
		{"organizationIds disagree", Notification{OrganizationID: a, ResourceData: ResourceData{OrganizationID: b}}, ""},
		{"none", Notification{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.n.Tenant(); got != tt.want {
				t.Errorf("Tenant() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsLifecycleAndRich(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		n         Notification
		lifecycle bool
		rich      bool
	}{
		{name: "change", n: Notification{ChangeType: "updated"}},
		{name: "lifecycle", n: Notification{LifecycleEvent: "missed"}, lifecycle: true},
		{name: "rich", n: Notification{EncryptedContent: EncryptedContent{Data: "x"}}, rich: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.n.IsLifecycle(); got != tt.lifecycle {
				t.Errorf("IsLifecycle() = %v, want %v", got, tt.lifecycle)
			}
			if got := tt.n.IsRich(); got != tt.rich {
				t.Errorf("IsRich() = %v, want %v", got, tt.rich)
			}
		})
	}
}

// base is a rich Outlook event notification; the key tests vary one field at a time.
func base() Notification {
	return Notification{
		ID:                             "n1",
		SubscriptionID:                 "76619225-ff6b-4489-96ca-4ef547e78b22",
		SubscriptionExpirationDateTime: "2026-01-01T00:00:00Z",
		ClientState:                    "secret",
		ChangeType:                     "updated",
		Resource:                       "Users/room1/Events/AAMkE1",
		TenantID:                       "aaaabbbb-0000-cccc-1111-dddd2222eeee",
		ResourceData: ResourceData{
			ODataType: "#Microsoft.Graph.Event",
			ODataID:   "Users/room1/Events/AAMkE1",
			ODataEtag: `W/"etag1"`,
			ID:        "AAMkE1",
		},
		EncryptedContent: EncryptedContent{Data: "ZGF0YQ==", DataKey: "a2V5", DataSignature: "sig1",
			EncryptionCertificateID: "cert1"},
	}
}

func presence(userID, signature string) Notification {
	return Notification{
		SubscriptionID: "sub-presence",
		ChangeType:     "updated",
		Resource:       "communications/presences/" + userID,
		TenantID:       "t1",
		ResourceData:   ResourceData{ODataID: "users/" + userID + "/presence", ID: userID},
		EncryptedContent: EncryptedContent{Data: "ZGF0YQ==", DataKey: "a2V5", DataSignature: signature,
			EncryptionCertificateID: "cert1"},
	}
}

func lifecycle(event, expiry string) Notification {
	return Notification{SubscriptionID: "sub1", TenantID: "t1", LifecycleEvent: event,
		SubscriptionExpirationDateTime: expiry}
}

func with(f func(*Notification)) Notification {
	n := base()
	f(&n)
	return n
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Notification
		same bool
	}{
		{"replay of the same notification", base(), base(), true},
		{"replay re-encrypted with another key keeps the etag", base(),
			with(func(n *Notification) { n.EncryptedContent.DataSignature = "sig2"; n.EncryptedContent.DataKey = "k2" }), true},
		{"clientState, tenant and expiry are not part of the change", base(), with(func(n *Notification) {
			n.ClientState = "other"
			n.TenantID = "other"
			n.SubscriptionExpirationDateTime = "2027-01-01T00:00:00Z"
			n.ResourceData.ODataType = "#other"
		}), true},
		{"new etag is a new change", base(), with(func(n *Notification) { n.ResourceData.ODataEtag = `W/"etag2"` }), false},
		{"other changeType", base(), with(func(n *Notification) { n.ChangeType = "deleted" }), false},
		{"other subscription", base(), with(func(n *Notification) { n.SubscriptionID = "other" }), false},
		{"other resource", base(), with(func(n *Notification) { n.Resource = "Users/room1/Events/AAMkE2" }), false},
		{"other resource id", base(), with(func(n *Notification) { n.ResourceData.ID = "AAMkE2" }), false},
		{"field boundaries are unambiguous",
			with(func(n *Notification) { n.SubscriptionID = "ab"; n.ChangeType = "c" }),
			with(func(n *Notification) { n.SubscriptionID = "a"; n.ChangeType = "bc" }), false},
		{"presence replay", presence("u1", "sigA"), presence("u1", "sigA"), true},
		{"presence change without etag differs by signature", presence("u1", "sigA"), presence("u1", "sigB"), false},
		{"presence of two users", presence("u1", "sigA"), presence("u2", "sigA"), false},
		{"basic notification versioned by sequenceNumber",
			Notification{SubscriptionID: "s", ChangeType: "updated", Resource: "Users/u1", ResourceData: ResourceData{ID: "u1", SequenceNumber: "1"}},
			Notification{SubscriptionID: "s", ChangeType: "updated", Resource: "Users/u1", ResourceData: ResourceData{ID: "u1", SequenceNumber: "2"}},
			false},
		{"basic notification versioned by notification id",
			Notification{ID: "n1", SubscriptionID: "s", ChangeType: "updated", Resource: "r"},
			Notification{ID: "n2", SubscriptionID: "s", ChangeType: "updated", Resource: "r"}, false},
		{"lifecycle replay", lifecycle("missed", "e1"), lifecycle("missed", "e1"), true},
		{"other lifecycle event", lifecycle("missed", "e1"), lifecycle("reauthorizationRequired", "e1"), false},
		{"lifecycle after renewal", lifecycle("reauthorizationRequired", "e1"), lifecycle("reauthorizationRequired", "e2"), false},
		{"lifecycle versus change of the same subscription", lifecycle("missed", "e1"),
			Notification{SubscriptionID: "sub1", TenantID: "t1", SubscriptionExpirationDateTime: "e1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, _ := MessageID(tt.a)
			b, _ := MessageID(tt.b)
			if got := a == b; got != tt.same {
				t.Errorf("MessageID equal = %v, want %v (%s vs %s)", got, tt.same, a, b)
			}
			for _, id := range []string{a, b} {
				if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
					t.Errorf("MessageID %q is not 64 lowercase hex characters", id)
				}
			}
		})
	}
}

// A change notification without etag, signature, sequence number or id has no version: MessageID says
// so instead of giving two changes of one resource the same key.
func TestMessageIDWithoutVersion(t *testing.T) {
	t.Parallel()
	basic := Notification{SubscriptionID: "s", ChangeType: "updated", TenantID: "t", Resource: "communications/presences/u1",
		ResourceData: ResourceData{ODataType: "#microsoft.graph.presence", ODataID: "users/u1/presence", ID: "u1"}}
	versioned := func(f func(*Notification)) Notification { n := basic; f(&n); return n }
	tests := []struct {
		name   string
		n      Notification
		wantOK bool
	}{
		{"basic presence notification as Graph sends it", basic, false},
		{"with an etag", versioned(func(n *Notification) { n.ResourceData.ODataEtag = "W/\"1\"" }), true},
		{"with a sequence number", versioned(func(n *Notification) { n.ResourceData.SequenceNumber = "7" }), true},
		{"with a notification id", versioned(func(n *Notification) { n.ID = "n1" }), true},
		{"rich, versioned by its signature", versioned(func(n *Notification) { n.EncryptedContent.DataSignature = "sig" }), true},
		{"lifecycle event without any", Notification{SubscriptionID: "s", TenantID: "t", LifecycleEvent: "missed"}, true},
	}
	for _, tt := range tests {
		if _, ok := MessageID(tt.n); ok != tt.wantOK {
			t.Errorf("%s: MessageID ok = %v, want %v", tt.name, ok, tt.wantOK)
		}
	}
}

// The keys are the same from one release to the next: a replay that arrives after a deployment must
// still meet its original's MessageId, and a resource's changes must keep their session.
func TestKeysStableAcrossReleases(t *testing.T) {
	t.Parallel()
	id, _ := MessageID(base())
	life, _ := MessageID(lifecycle("missed", "e1"))
	for _, tt := range []struct{ name, got, want string }{
		{"MessageID", id, "44ea3bbc27b382014a37de658eb049176bfbc86137f8a813ce6169ae6821874a"},
		{"lifecycle MessageID", life, "93507cc4d085d7c940b5d4285e18a81b0d8c55b95123881ca78f0acd5df721cb"},
		{"OrderingKey", OrderingKey(base()), "1cd79e4f0e2b973c194a400ff56ca831f72c22219abfcc16e36d9df992e0d268"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	long := with(func(n *Notification) { n.Resource = strings.Repeat("r", 2000) }) // past the stack buffer
	if a, _ := MessageID(long); a == id || len(a) != 64 {
		t.Errorf("MessageID of a long resource = %q", a)
	}
}

func TestKeysStableAcrossReencoding(t *testing.T) {
	t.Parallel()
	// A replay may be serialised differently (key case, whitespace, key order); the keys depend on values only.
	a := []byte(`{"value":[{"subscriptionId":"s1","changeType":"updated","resource":"Users/u/Events/e",
		"resourceData":{"@odata.etag":"W/\"x\"","id":"e"},"tenantId":"t"}]}`)
	b := []byte(`{ "value" : [ { "TenantId":"t", "ResourceData":{"Id":"e","@odata.etag":"W/\"x\""},
		"Resource":"Users/u/Events/e", "ChangeType":"updated", "SubscriptionId":"s1" } ] }`)
	ca, err := Parse(a)
	if err != nil {
		t.Fatalf("Parse a: %v", err)
	}
	cb, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse b: %v", err)
	}
	got, _ := MessageID(cb.Value[0])
	want, _ := MessageID(ca.Value[0])
	if got != want {
		t.Errorf("MessageID = %s, want %s", got, want)
	}
	if got, want := OrderingKey(cb.Value[0]), OrderingKey(ca.Value[0]); got != want {
		t.Errorf("OrderingKey = %s, want %s", got, want)
	}
}

func TestOrderingKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name string
		a, b Notification
		same bool
	}{
		{"replay", base(), base(), true},
		{"later change of the same event", base(), with(func(n *Notification) {
			n.ChangeType = "deleted"
			n.ResourceData.ODataEtag = `W/"etag9"`
			n.EncryptedContent = EncryptedContent{}
		}), true},
		{"one user's presence changes share a key", presence("u1", "sigA"), presence("u1", "sigB"), true},
		{"two users' presence do not", presence("u1", "sigA"), presence("u2", "sigA"), false},
		{"other event of the room", base(), with(func(n *Notification) {
			n.Resource = "Users/room1/Events/AAMkE2"
			n.ResourceData.ID = "AAMkE2"
		}), false},
		{"same resource under another subscription", base(), with(func(n *Notification) { n.SubscriptionID = "s2" }), false},
		{"resource used when resourceData has no id",
			Notification{SubscriptionID: "s", Resource: "Users/u1"}, Notification{SubscriptionID: "s", Resource: "Users/u2"}, false},
		{"lifecycle events of a subscription share a key", lifecycle("missed", "e1"), lifecycle("reauthorizationRequired", "e2"), true},
		{"lifecycle of two subscriptions", lifecycle("missed", "e1"),
			Notification{SubscriptionID: "sub2", LifecycleEvent: "missed"}, false},
		{"long resource ids", Notification{SubscriptionID: long, Resource: long + "1"},
			Notification{SubscriptionID: long, Resource: long + "2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := OrderingKey(tt.a), OrderingKey(tt.b)
			if got := a == b; got != tt.same {
				t.Errorf("OrderingKey equal = %v, want %v (%s vs %s)", got, tt.same, a, b)
			}
			for _, k := range []string{a, b} {
				if len(k) == 0 || len(k) > 128 {
					t.Errorf("OrderingKey length %d, want 1..128", len(k))
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range sampleCases() {
		f.Add(readSample(f, c.name))
		f.Add(sampleBody(f, c))
	}
	for _, s := range []string{`{"value":[]}`, `{"value":null}`, `{"value":[null]}`, `{"Value":[{"SubscriptionID":"a"}]}`,
		`{"value":[{"resourceData":{"sequenceNumber":1e9}}],"validationTokens":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		col, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrNotCollection) {
				t.Fatalf("Parse error %v does not wrap ErrNotCollection", err)
			}
			return
		}
		// The limit never lets a longer list through and changes nothing within it.
		const limit = 2
		capped, cerr := ParseAtMost(body, limit)
		switch {
		case cerr == nil && !reflect.DeepEqual(capped, col):
			t.Fatalf("ParseAtMost = %#v, Parse = %#v", capped, col)
		case cerr != nil && !errors.Is(cerr, ErrTooManyItems):
			t.Fatalf("ParseAtMost error %v on a body Parse accepts", cerr)
		case cerr != nil && len(col.Value) <= limit && len(col.ValidationTokens) <= limit && !bytes.Contains(body, []byte(",")):
			t.Fatalf("ParseAtMost refused a body with no comma: %v", cerr)
		case cerr == nil && (len(col.Value) > limit || len(col.ValidationTokens) > limit):
			t.Fatalf("ParseAtMost let %d items and %d tokens through a limit of %d", len(col.Value), len(col.ValidationTokens), limit)
		}
		out, err := json.Marshal(col)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of re-marshalled %s: %v", out, err)
		}
		if !reflect.DeepEqual(again, col) {
			t.Fatalf("round trip differs:\n got %#v\nwant %#v", again, col)
		}
		for _, n := range col.Value {
			if k := OrderingKey(n); len(k) > 128 {
				t.Fatalf("OrderingKey length %d", len(k))
			}
			_, _ = MessageID(n)
			_ = n.Tenant()
		}
	})
}

// benchBody builds a body of n rich Outlook event notifications with a realistic encrypted payload size.
func benchBody(n int) []byte {
	data := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", 60) // about 2 KB of base64, like a small event
	key := strings.Repeat("PfUrKAM9G3k7Bx3XUAQ7jJwvceKrJwO7", 11)      // 344 characters: an RSA-2048 wrapped key
	var b strings.Builder
	b.WriteString(`{"value":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"subscriptionId":"76619225-ff6b-4489-96ca-4ef547e78b22","subscriptionExpirationDateTime":"2026-01-01T00:00:00.0000000Z",
"changeType":"updated","clientState":"0123456789abcdef0123456789abcdef","tenantId":"aaaabbbb-0000-cccc-1111-dddd2222eeee",
"resource":"Users('722effaf-0433-4272-9ac4-d5ec11c3cd77')/Events('AAMkAGUwNjQ4ZjIxLTQ3Y2Y8AAA%d=')",
"resourceData":{"@odata.type":"#microsoft.graph.event","@odata.id":"Users('722effaf-0433-4272-9ac4-d5ec11c3cd77')/Events('AAMkAGUwNjQ4ZjIxLTQ3Y2Y8AAA%d=')",
"@odata.etag":"W/\"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAGDUR8n%d\"","id":"AAMkAGUwNjQ4ZjIxLTQ3Y2Y8AAA%d="},
"encryptedContent":{"data":"%s","dataKey":"%s","dataSignature":"Qw/9ubWeUYJPWWXvNiGgct2FkNG2MXTRm/BLUpJM66k=",
"encryptionCertificateId":"graph-notifications/1","encryptionCertificateThumbprint":"4B95353E086AD37196606ACF834A14532F03E6DB"}}`,
			i, i, i, i, data, key)
	}
	b.WriteString(`],"validationTokens":["eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln"]}`)
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1, 50} {
		body := benchBody(n)
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				col, err := Parse(body)
				if err != nil || len(col.Value) != n {
					b.Fatalf("Parse: %d items, %v", len(col.Value), err)
				}
			}
		})
	}
}

// BenchmarkItemCount is the cost ParseAtMost adds to Parse: the scan that counts the items first.
func BenchmarkItemCount(b *testing.B) {
	body := benchBody(50)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if memberArrayLongerThan(body, 1000) {
			b.Fatal("50 items counted as more than 1000")
		}
	}
}

func BenchmarkKeys(b *testing.B) {
	n := base()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = MessageID(n)
		_ = OrderingKey(n)
	}
}
