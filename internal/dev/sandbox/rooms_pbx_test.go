package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// graphGet asks the fake Graph with an app-only token of the tenant, as the app asks.
func (e *env) graphGet(t *testing.T, path string) (int, string) {
	t.Helper()
	tok := e.sb.Auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: appID})
	return do(t, nil, "GET", e.sb.Graph.URL()+"/v1.0"+path, "", "Authorization", "Bearer "+tok)
}

// hook is a webhook that records what it receives and answers status.
type hook struct {
	*httptest.Server
	got chan string
}

func newHook(t *testing.T, status int, echoHeader string) *hook {
	h := &hook{got: make(chan string, 16)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(echoHeader); echoHeader != "" && v != "" && r.ContentLength <= 0 {
			w.Header().Set(echoHeader, v) // RingCentral's creation handshake
			w.WriteHeader(http.StatusOK)
			return
		}
		b, _ := io.ReadAll(r.Body)
		h.got <- r.Header.Get("Verification-Token") + " " + string(b)
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-h.got:
		return s
	case <-time.After(30 * time.Second): // a failsafe, not a timing assertion
		t.Fatal("the webhook received nothing")
		return ""
	}
}

func TestRoomsAndRoomListsReachPlaces(t *testing.T) {
	e := start(t)
	base := e.api + "/sandbox/tenants/" + tenant
	code, body := do(t, nil, "PUT", base+"/rooms/oslo@contoso.example",
		`{"displayName":"Oslo","capacity":8,"building":"HQ","floorNumber":2,"isWheelChairAccessible":true}`)
	if code != http.StatusOK || !strings.Contains(body, `"bookingType": "standard"`) || strings.Contains(body, `"id"`) {
		t.Fatalf("put room = %d %s", code, body)
	}
	do(t, nil, "PUT", base+"/rooms/bergen@contoso.example", `{"displayName":"Bergen","capacity":4}`)
	code, body = do(t, nil, "PUT", base+"/roomlists/hq@contoso.example", `{"displayName":"HQ","rooms":["oslo@contoso.example"]}`)
	if code != http.StatusOK {
		t.Fatalf("put room list = %d %s", code, body)
	}
	_, body = e.graphGet(t, "/places/microsoft.graph.room")
	if !strings.Contains(body, `"emailAddress":"oslo@contoso.example"`) || !strings.Contains(body, `"capacity":8`) ||
		!strings.Contains(body, `"emailAddress":"bergen@contoso.example"`) {
		t.Fatalf("Places rooms = %s", body)
	}
	_, body = e.graphGet(t, "/places/hq@contoso.example/microsoft.graph.roomList/rooms")
	if !strings.Contains(body, "oslo@") || strings.Contains(body, "bergen@") {
		t.Errorf("rooms of HQ = %s", body)
	}
	if code, _ := do(t, nil, "DELETE", base+"/rooms/bergen@contoso.example", ""); code != http.StatusNoContent {
		t.Errorf("delete room = %d", code)
	}
	if _, body = e.graphGet(t, "/places/microsoft.graph.room"); strings.Contains(body, "bergen@") {
		t.Errorf("Places still lists the deleted room: %s", body)
	}
	if code, _ := do(t, nil, "DELETE", base+"/rooms/oslo", ""); code != http.StatusBadRequest {
		t.Errorf("delete a room by a name that is no e-mail address = %d, want 400", code)
	}
	if _, body = e.graphGet(t, "/places/microsoft.graph.room"); !strings.Contains(body, "oslo@") {
		t.Errorf("a refused delete removed a room: %s", body)
	}
	for _, bad := range []struct{ path, body string }{
		{"/rooms/oslo", `{"displayName":"Oslo"}`},
		{"/rooms/oslo@contoso.example", `{"capacity":8}`},
		{"/rooms/oslo@contoso.example", `{"displayName":"Oslo","capacity":-1}`},
		{"/rooms/oslo@contoso.example", `{"displayName":"Oslo","emailAddress":"bergen@contoso.example"}`},
		{"/rooms/oslo@contoso.example", `{"displayName":"Oslo","seats":8}`},
		{"/roomlists/hq@contoso.example", `{"rooms":["oslo@contoso.example"]}`},
		{"/roomlists/hq@contoso.example", `{"displayName":"HQ","rooms":["oslo"]}`},
	} {
		if code, body := do(t, nil, "PUT", base+bad.path, bad.body); code != http.StatusBadRequest {
			t.Errorf("PUT %s %s = %d %s, want 400", bad.path, bad.body, code, body)
		}
	}
	if code, _ := do(t, nil, "PUT", base+"/rooms/oslo@contoso.example", `{"displayName":"`+strings.Repeat("x", maxBody)+`"}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized room = %d, want 413", code)
	}
}

func TestBookingsChangeTheCalendarAndNotifyTheRoomsSubscription(t *testing.T) {
	e := start(t)
	h := newHook(t, http.StatusAccepted, "")
	room := "oslo@contoso.example"
	e.sb.Graph.PutRoom(tenant, graphtest.PlaceRoom{EmailAddress: room, DisplayName: "Oslo"})
	e.sb.Graph.PutSubscription(graphtest.Subscription{Tenant: tenant, Resource: "/users/" + room + "/events",
		ChangeType: "created,updated,deleted", NotificationURL: h.URL, ClientState: "cs"})
	event := e.api + "/sandbox/tenants/" + tenant + "/rooms/" + room + "/events/AAMkAD-1"
	view := "/users/" + room + "/calendarView?" + url.Values{"startDateTime": {"2026-12-10T00:00:00Z"}, "endDateTime": {"2026-12-11T00:00:00Z"}}.Encode()

	code, body := do(t, nil, "PUT", event, `{"subject":"Ada Lovelace","start":"2026-12-10T10:00:00+01:00","end":"2026-12-10T11:00:00+01:00"}`)
	if code != http.StatusOK || !strings.Contains(body, `"changeType": "created"`) || !strings.Contains(body, `"status": 202`) {
		t.Fatalf("book = %d %s", code, body)
	}
	if got := h.next(t); !strings.Contains(got, `"changeType":"created"`) || !strings.Contains(got, "/Events/AAMkAD-1") {
		t.Errorf("webhook got %s", got)
	}
	if _, body = e.graphGet(t, view); !strings.Contains(body, `"dateTime":"2026-12-10T09:00:00`) {
		t.Errorf("calendarView after booking = %s", body)
	}
	code, body = do(t, nil, "PUT", event, `{"start":"2026-12-10T14:00:00Z","end":"2026-12-10T15:00:00Z","isCancelled":true}`)
	if code != http.StatusOK || !strings.Contains(body, `"changeType": "updated"`) {
		t.Fatalf("move = %d %s", code, body)
	}
	h.next(t)
	if _, body = e.graphGet(t, view); !strings.Contains(body, `"dateTime":"2026-12-10T14:00:00`) || !strings.Contains(body, `"isCancelled":true`) {
		t.Errorf("calendarView after the move = %s", body)
	}
	// A lost notification: the calendar changes, the webhook hears nothing.
	code, body = do(t, nil, "PUT", event+"?notify=false", `{"start":"2026-12-10T16:00:00Z","end":"2026-12-10T17:00:00Z"}`)
	if code != http.StatusOK || strings.Contains(body, "changeType") {
		t.Fatalf("change without a notification = %d %s", code, body)
	}
	if _, body = e.graphGet(t, view); !strings.Contains(body, `"dateTime":"2026-12-10T16:00:00`) {
		t.Errorf("calendarView after the unnotified change = %s", body)
	}
	code, body = do(t, nil, "DELETE", event, "")
	if code != http.StatusOK || !strings.Contains(body, `"changeType": "deleted"`) {
		t.Fatalf("delete = %d %s", code, body)
	}
	h.next(t)
	if _, body = e.graphGet(t, view); strings.Contains(body, "AAMkAD-1") {
		t.Errorf("calendarView after the delete = %s", body)
	}
	for _, bad := range []string{
		`{"start":"2026-12-10T10:00:00Z"}`,
		`{"start":"2026-12-10T10:00:00Z","end":"2026-12-10T09:00:00Z"}`,
		`{"start":"2026-12-10T10:00","end":"2026-12-10T11:00"}`,
		`{"start":"2026-12-10T10:00:00Z","end":"2026-12-10T11:00:00Z","showAs":"away"}`,
		`{"start":"2026-12-10T10:00:00Z","end":"2026-12-10T11:00:00Z","everyDays":7}`,
	} {
		if code, body := do(t, nil, "PUT", event, bad); code != http.StatusBadRequest {
			t.Errorf("book %s = %d %s, want 400", bad, code, body)
		}
	}
	if code, _ := do(t, nil, "DELETE", e.api+"/sandbox/tenants/"+tenant+"/rooms/oslo/events/AAMkAD-1", ""); code != http.StatusBadRequest {
		t.Errorf("delete a booking of a room that is no e-mail address = %d, want 400", code)
	}
	if len(h.got) != 0 {
		t.Errorf("a refused booking notified the webhook")
	}
}

// rcToken signs in at the fake RingCentral with the credentials its console shows.
func (e *env) rcToken(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("POST", e.sb.RC.URL()+"/restapi/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {e.sb.RC.JWT}}.Encode()))
	req.SetBasicAuth(e.sb.RC.ClientID, e.sb.RC.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("RingCentral token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func TestExtensionCallAndDNDReachTheWebhookSubscription(t *testing.T) {
	e := start(t)
	h := newHook(t, http.StatusOK, "Validation-Token")
	presence := e.api + "/sandbox/ringcentral/extensions/3001/presence"
	code, body := do(t, nil, "POST", presence, `{"telephonyStatus":"CallConnected"}`)
	if code != http.StatusOK || !strings.Contains(body, `"deliveries": []`) {
		t.Fatalf("call without a subscription = %d %s", code, body)
	}
	tok := e.rcToken(t)
	code, body = do(t, nil, "POST", e.sb.RC.URL()+"/restapi/v1.0/subscription",
		`{"eventFilters":["/restapi/v1.0/account/~/extension/3001/presence?detailedTelephonyState=true"],"deliveryMode":{"transportType":"WebHook","address":"`+h.URL+`","verificationToken":"vt-1"}}`,
		"Authorization", "Bearer "+tok, "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Fatalf("subscribe = %d %s", code, body)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/ringcentral/subscriptions", "")
	if !strings.Contains(body, `"status": "Active"`) || !strings.Contains(body, `"address": "`+h.URL+`"`) || strings.Contains(body, "vt-1") {
		t.Errorf("subscriptions = %s", body)
	}

	code, body = do(t, nil, "POST", presence, `{"telephonyStatus":"CallConnected","from":"+4930123456"}`)
	if code != http.StatusOK || !strings.Contains(body, `"status": 200`) {
		t.Fatalf("call start = %d %s", code, body)
	}
	got := h.next(t)
	if !strings.HasPrefix(got, "vt-1 ") || !strings.Contains(got, `"telephonyStatus":"CallConnected"`) || !strings.Contains(got, `"sequence":2`) ||
		!strings.Contains(got, `"activeCalls":[{`) || !strings.Contains(got, `"extensionId":"3001"`) {
		t.Errorf("call start delivered %s", got)
	}
	do(t, nil, "POST", presence, `{"telephonyStatus":"NoCall","dndStatus":"DoNotAcceptAnyCalls"}`)
	if got := h.next(t); !strings.Contains(got, `"telephonyStatus":"NoCall"`) || !strings.Contains(got, `"dndStatus":"DoNotAcceptAnyCalls"`) ||
		!strings.Contains(got, `"activeCalls":[]`) || !strings.Contains(got, `"sequence":3`) {
		t.Errorf("call end with DND delivered %s", got)
	}
	for _, bad := range []struct{ ext, body string }{
		{"3001", `{}`},
		{"3001", `{"telephonyStatus":"OnTheMoon"}`},
		{"3001", `{"telephonyStatus":"NoCall","dndStatus":"Maybe"}`},
		{"3001", `{"telephonyStatus":"NoCall","userStatus":"Away"}`},
		{"3001", `{"telephonyStatus":"CallConnected","direction":"Sideways"}`},
		{"ada", `{"telephonyStatus":"NoCall"}`},
	} {
		if code, body := do(t, nil, "POST", e.api+"/sandbox/ringcentral/extensions/"+bad.ext+"/presence", bad.body); code != http.StatusBadRequest {
			t.Errorf("presence %s %s = %d %s, want 400", bad.ext, bad.body, code, body)
		}
	}
	if len(h.got) != 0 {
		t.Errorf("a refused change notified the webhook")
	}
}

func TestTeamsPresenceWritesAreShownAndEchoed(t *testing.T) {
	e := start(t)
	h := newHook(t, http.StatusAccepted, "")
	e.sb.Graph.PutSubscription(graphtest.Subscription{Tenant: tenant, Resource: graphtest.PresenceResource([]string{userID}),
		ChangeType: "updated", NotificationURL: h.URL, ClientState: "cs", UserIDs: []string{userID}})
	if _, body := do(t, nil, "GET", e.api+"/sandbox/graph/presence-writes", ""); strings.TrimSpace(body) != "[]" {
		t.Fatalf("writes before any = %s", body)
	}
	// The app's setPresence, app-only with the permission the sandbox's consent grants.
	tok := e.sb.Auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: appID})
	setURL := e.sb.Graph.URL() + "/v1.0/users/" + userID + "/presence/setPresence"
	code, body := do(t, nil, "POST", setURL, `{"sessionId":"`+appID+`","availability":"Busy","activity":"InACall","expirationDuration":"PT1H"}`,
		"Authorization", "Bearer "+tok, "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Fatalf("setPresence = %d %s", code, body)
	}
	// Graph reports the session's presence to the subscription by itself, as it reports our own writes.
	if got := h.next(t); !strings.Contains(got, `"subscriptionId"`) || !strings.Contains(got, userID) {
		t.Errorf("echo delivered %s", got)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/graph/presence-writes?tenant="+tenant+"&user="+userID, "")
	if !strings.Contains(body, `"op": "set"`) || !strings.Contains(body, `"sessionId": "`+appID+`"`) ||
		!strings.Contains(body, `"activity": "InACall"`) || !strings.Contains(body, `"expirationDuration": "PT1H"`) {
		t.Errorf("writes = %s", body)
	}
	if _, body = do(t, nil, "GET", e.api+"/sandbox/graph/presence-writes?user=someone-else", ""); strings.TrimSpace(body) != "[]" {
		t.Errorf("writes of another user = %s", body)
	}
	_, body = do(t, nil, "GET", e.api+"/sandbox/tenants/"+tenant+"/users/"+userID+"/presence", "")
	if !strings.Contains(body, `"availability": "Busy"`) || !strings.Contains(body, `"`+appID+`": "Busy/InACall"`) {
		t.Errorf("presence = %s", body)
	}
	code, _ = do(t, nil, "POST", e.sb.Graph.URL()+"/v1.0/users/"+userID+"/presence/clearPresence", `{"sessionId":"`+appID+`"}`,
		"Authorization", "Bearer "+tok, "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Fatalf("clearPresence = %d", code)
	}
	h.next(t)
	_, body = do(t, nil, "GET", e.api+"/sandbox/tenants/"+tenant+"/users/"+userID+"/presence", "")
	if !strings.Contains(body, `"sessions": {}`) {
		t.Errorf("presence after clear = %s", body)
	}
	if _, body = do(t, nil, "GET", e.api+"/sandbox/graph/presence-writes", ""); !strings.Contains(body, `"op": "clear"`) {
		t.Errorf("writes after clear = %s", body)
	}
}

func TestISODuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "PT1H", 5 * time.Minute: "PT5M", 90 * time.Minute: "PT1H30M", 0: ""} {
		if got := isoDuration(d); got != want {
			t.Errorf("isoDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
