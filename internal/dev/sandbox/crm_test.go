package sandbox

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

func TestSalesforceAppIsWhatTheOrgsAdminHandsOver(t *testing.T) {
	e := start(t)
	code, body := do(t, nil, "GET", e.api+"/sandbox/salesforce/app", "")
	var app struct{ ConsumerKey, PrivateKey, Host, LoginURL string }
	if err := json.Unmarshal([]byte(body), &app); code != http.StatusOK || err != nil {
		t.Fatalf("app = %d %s", code, body)
	}
	if app.ConsumerKey != e.sb.SF.App.ConsumerKey || app.Host != "login.salesforce.com" || app.LoginURL != e.sb.SF.URL() {
		t.Errorf("app = %+v", app)
	}
	// The private key is the one whose certificate the connected app holds ("Use digital signatures").
	b, _ := pem.Decode([]byte(app.PrivateKey))
	if b == nil {
		t.Fatalf("privateKey is no PEM: %q", app.PrivateKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(*rsa.PrivateKey).PublicKey.Equal(e.sb.SF.App.Certificate.PublicKey) {
		t.Error("the private key does not match the connected app's certificate")
	}
	set := e.sb.Settings(map[string]string{}, "/tmp/ca.pem", "http://127.0.0.1:7071")
	if set["CONNECTHUB_SALESFORCE_LOGIN_URL"] != e.sb.SF.URL() {
		t.Errorf("CONNECTHUB_SALESFORCE_LOGIN_URL = %q, want the fake org's %q", set["CONNECTHUB_SALESFORCE_LOGIN_URL"], e.sb.SF.URL())
	}
}

func TestSalesforceUsersAndContacts(t *testing.T) {
	e := start(t)
	for _, bad := range []struct{ path, body string }{
		{"/sandbox/salesforce/users/not-an-address", `{"approved":true}`},
		{"/sandbox/salesforce/users/sync@contoso.example", `{"email":"nope"}`},
		{"/sandbox/salesforce/users/sync@contoso.example", `{"aproved":true}`},
	} {
		if code, body := do(t, nil, "PUT", e.api+bad.path, bad.body); code != http.StatusBadRequest {
			t.Errorf("PUT %s %s = %d %s, want 400", bad.path, bad.body, code, body)
		}
	}
	code, body := do(t, nil, "PUT", e.api+"/sandbox/salesforce/users/ada@contoso.example.crm", `{"email":"ada@contoso.example"}`)
	owner := e.sb.SF.UserID("ada@contoso.example.crm")
	if code != http.StatusOK || !strings.HasPrefix(owner, "005") || !strings.Contains(body, `"id": "`+owner+`"`) {
		t.Fatalf("PUT user = %d %s", code, body)
	}

	for _, bad := range []string{
		`{"FirstName":"Ottoline"}`, // Salesforce requires LastName
		`{"LastName":""}`,
		`{"LastName":"Varnavides","Email":"not an address"}`,
		`{"LastName":"Varnavides","Id":"003000000000000AAA"}`,
		`{"LastName":"Varnavides","Birthdate":"1990-01-01"}`,
		`{"LastName":"Varnavides","ownerUsername":"nobody@contoso.example"}`,
		`{"LastName":"Varnavides","OwnerId":"003000000000000AAA"}`,
		`{"LastName":42}`,
		`[]`,
	} {
		if code, body := do(t, nil, "POST", e.api+"/sandbox/salesforce/contacts", bad); code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s = %d %s, want 400 with the reason", bad, code, body)
		}
	}
	if got := e.sb.SF.Contacts(); len(got) != 0 {
		t.Fatalf("refused bodies created %v", got)
	}
	code, body = do(t, nil, "POST", e.api+"/sandbox/salesforce/contacts",
		`{"FirstName":"Ottoline","LastName":"Varnavides","Email":"ottoline@varnavides.example","ownerUsername":"ada@contoso.example.crm"}`)
	var c map[string]any
	if err := json.Unmarshal([]byte(body), &c); code != http.StatusCreated || err != nil {
		t.Fatalf("POST contact = %d %s", code, body)
	}
	id, _ := c["Id"].(string)
	if got, ok := e.sb.SF.Contact(id); !ok || got["OwnerId"] != owner || got["Name"] != "Ottoline Varnavides" || !strings.HasPrefix(id, "003") {
		t.Fatalf("in the org: %v (answer %s)", got, body)
	}

	if code, body = do(t, nil, "PATCH", e.api+"/sandbox/salesforce/contacts/"+id, `{"Title":"Cartographer"}`); code != http.StatusOK ||
		!strings.Contains(body, `"Title": "Cartographer"`) || !strings.Contains(body, `"LastName": "Varnavides"`) {
		t.Errorf("PATCH = %d %s", code, body)
	}
	if code, _ = do(t, nil, "PATCH", e.api+"/sandbox/salesforce/contacts/"+id, `{"LastName":" "}`); code != http.StatusBadRequest {
		t.Errorf("PATCH clearing LastName = %d, want 400", code)
	}
	if code, _ = do(t, nil, "PATCH", e.api+"/sandbox/salesforce/contacts/003000000000000AAA", `{"Title":"x"}`); code != http.StatusNotFound {
		t.Errorf("PATCH of an unknown id = %d, want 404", code)
	}
	if len(e.sb.SF.Contacts()) != 1 {
		t.Errorf("PATCHes created records: %v", e.sb.SF.Contacts())
	}
	if _, body = do(t, nil, "GET", e.api+"/sandbox/salesforce/contacts", ""); !strings.Contains(body, `"Id": "`+id+`"`) ||
		!strings.Contains(body, `"Title": "Cartographer"`) {
		t.Errorf("list = %s", body)
	}
	if code, _ = do(t, nil, "DELETE", e.api+"/sandbox/salesforce/contacts/"+id, ""); code != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if code, _ = do(t, nil, "DELETE", e.api+"/sandbox/salesforce/contacts/"+id, ""); code != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", code)
	}
	if _, body = do(t, nil, "GET", e.api+"/sandbox/salesforce/contacts", ""); strings.TrimSpace(body) != "[]" {
		t.Errorf("list after the deletion = %s", body)
	}
}

func TestOutlookContactChangesReachTheSubscribedWebhookByThemselves(t *testing.T) {
	e := start(t)
	h := newHook(t, http.StatusAccepted, "")
	e.sb.Graph.PutSubscription(graphtest.Subscription{Tenant: tenant, Resource: "/users/" + userID + "/contacts",
		ChangeType: "created,updated,deleted", NotificationURL: h.URL, ClientState: "cs"})
	contacts := e.api + "/sandbox/tenants/" + tenant + "/users/" + userID + "/contacts"

	for _, bad := range []string{`{}`, `{"givenName":"Zebulon","emailAddresses":["zebulon"]}`, `{"givenName":"Z","id":"other"}`,
		`{"givenName":"Z","singleValueExtendedProperties":{"String {x} Name y":"v"}}`, `{"given":"Z"}`} {
		if code, body := do(t, nil, "PUT", contacts+"/AAMkAD-zebulon", bad); code != http.StatusBadRequest {
			t.Errorf("PUT %s = %d %s, want 400", bad, code, body)
		}
	}
	code, body := do(t, nil, "PUT", contacts+"/AAMkAD-zebulon", `{"givenName":"Zebulon","surname":"Quixley","emailAddresses":["zebulon@quixley.example"]}`)
	if code != http.StatusOK || !strings.Contains(body, `"displayName": "Zebulon Quixley"`) {
		t.Fatalf("PUT contact = %d %s", code, body)
	}
	// Nothing but the sandbox's own pump posts it: Graph notifies by itself.
	if got := h.next(t); !strings.Contains(got, `"changeType":"created"`) || !strings.Contains(got, "AAMkAD-zebulon") {
		t.Errorf("notification = %s", got)
	}

	// The app's own write through Graph's API (with the id property the sync sets) is notified too.
	const prop = "String {0c7e2b4a-93d1-4f5e-8a6b-1d2c3e4f5a6b} Name ConnectHubSalesforceContactId"
	tok := e.sb.Auth.IssueToken(graphtest.Identity{Tenant: tenant, ClientID: appID})
	code, body = do(t, nil, "POST", e.sb.Graph.URL()+"/v1.0/users/"+userID+"/contactFolders/contacts/contacts",
		`{"givenName":"Ottoline","surname":"Varnavides","singleValueExtendedProperties":[{"id":"`+prop+`","value":"003AAA"}]}`,
		"Authorization", "Bearer "+tok, "Content-Type", "application/json")
	if code != http.StatusCreated {
		t.Fatalf("the app's POST = %d %s", code, body)
	}
	var made struct{ ID string }
	_ = json.Unmarshal([]byte(body), &made)
	if got := h.next(t); !strings.Contains(got, `"changeType":"created"`) || !strings.Contains(got, made.ID) {
		t.Errorf("notification of the app's write = %s", got)
	}
	// The user edits it in Outlook: the property stays.
	if code, body = do(t, nil, "PUT", contacts+"/"+made.ID, `{"givenName":"Ottoline","surname":"Varnavides","jobTitle":"Cartographer"}`); code != http.StatusOK {
		t.Fatalf("edit = %d %s", code, body)
	}
	if got := h.next(t); !strings.Contains(got, `"changeType":"updated"`) {
		t.Errorf("notification of the edit = %s", got)
	}
	_, body = do(t, nil, "GET", contacts, "")
	var list []outlookContact
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("list = %s", body)
	}
	if list[0].DisplayName != "Ottoline Varnavides" || list[0].JobTitle != "Cartographer" || list[0].Properties[prop] != "003AAA" {
		t.Errorf("edited contact = %+v", list[0])
	}
	if list[1].ID != "AAMkAD-zebulon" || len(list[1].EmailAddresses) != 1 || list[1].Properties != nil {
		t.Errorf("user's contact = %+v", list[1])
	}

	if code, _ = do(t, nil, "DELETE", contacts+"/AAMkAD-zebulon", ""); code != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if got := h.next(t); !strings.Contains(got, `"changeType":"deleted"`) || !strings.Contains(got, "AAMkAD-zebulon") {
		t.Errorf("notification of the deletion = %s", got)
	}
	if code, _ = do(t, nil, "DELETE", contacts+"/AAMkAD-zebulon", ""); code != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", code)
	}
}
