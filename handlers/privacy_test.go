package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence/setup"
	"github.com/connecthub/connecthub/internal/privacy"
)

type fakeRights struct{ calls []string }

func (f *fakeRights) Report(_ context.Context, by core.Actor, tenant core.TenantID, userID, kind string) (privacy.Report, error) {
	f.calls = append(f.calls, kind+":"+userID+":"+by.ID)
	return privacy.Report{Schema: privacy.ReportSchema, GeneratedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Tenant: tenant,
		Subject: userID, Controller: "the customer", StoredIn: "westeurope (EU)", Categories: []privacy.ReportCategory{{
			Table: "presence", Category: privacy.Categories["presence"], Retention: "while the contract runs",
			Records: []privacy.ReportRecord{{Key: userID, Fields: map[string]any{"Availability": "Busy", "ChangedAt": nil}}}}}}, nil
}

func (f *fakeRights) Erase(_ context.Context, _ core.Actor, tenant core.TenantID, userID string) (privacy.Receipt, error) {
	f.calls = append(f.calls, "erase:"+userID)
	return privacy.Receipt{RequestID: "r1", Tenant: tenant, ErasedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		Tables: tables.Erasure{"presence": {Deleted: 1}, "audit": {Pseudonymised: 2}}, Pseudonymised: []string{"audit"}}, nil
}

func (f *fakeRights) Requests(context.Context, core.TenantID) ([]privacy.Request, error) {
	f.calls = append(f.calls, "requests")
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	return []privacy.Request{{ID: "r1", Kind: privacy.KindErasure, SubjectID: "erased-00", RequestedBy: operator, RequestedAt: at,
		DueAt: at.AddDate(0, 1, 0), Status: "completed", CompletedAt: at, Receipt: `{"requestId":"","tenant":"t","erasedAt":"2026-12-02T10:00:00Z","tables":{},"pseudonymised":[]}`}}, nil
}

func (f *fakeRights) Restrict(_ context.Context, by core.Actor, _ core.TenantID, userID string, on bool, reason string) (privacy.Request, error) {
	f.calls = append(f.calls, fmt.Sprintf("restrict:%v:%s:%s", on, userID, reason))
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	kind := privacy.KindRestriction
	if !on {
		kind = privacy.KindResumption
	}
	return privacy.Request{ID: "r2", Kind: kind, SubjectID: userID, RequestedBy: by.ID, RequestedAt: at, DueAt: at.AddDate(0, 1, 0),
		Status: "completed", CompletedAt: at}, nil
}

func (f *fakeRights) Object(ctx context.Context, by core.Actor, _ core.TenantID, end func(context.Context) error) (privacy.Request, error) {
	f.calls = append(f.calls, "object")
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	return privacy.Request{ID: "r3", Kind: privacy.KindObjection, SubjectID: "tenant", RequestedBy: by.ID, RequestedAt: at,
		DueAt: at.AddDate(0, 1, 0), Status: "completed", CompletedAt: at}, end(ctx)
}

func (f *fakeRights) Rectify(ctx context.Context, _ core.Actor, _ core.TenantID, userID string, fix func(context.Context, string) error) (privacy.Request, error) {
	f.calls = append(f.calls, "rectify:"+userID)
	return privacy.Request{ID: "r4", Kind: privacy.KindRectify, SubjectID: userID, Status: "completed"}, fix(ctx, userID)
}

// extensionsOnly is the connector set-up with only the user-extension calls behind it.
type extensionsOnly struct {
	ConnectorAdmin
	calls []string
}

func (e *extensionsOnly) SetUserExtension(_ context.Context, _ core.Actor, _ core.TenantID, userID, ext string) (setup.UserExtension, error) {
	e.calls = append(e.calls, "set:"+userID+":"+ext)
	return setup.UserExtension{}, nil
}

func (e *extensionsOnly) DeleteUserExtension(_ context.Context, _ core.Actor, _ core.TenantID, userID string) error {
	e.calls = append(e.calls, "delete:"+userID)
	return nil
}

// Rectification sets what is ours (the extension mapping) and refreshes the profile from Microsoft 365.
func TestRectification(t *testing.T) {
	t.Parallel()
	f, admin, conn := &fakeRights{}, &fakeAdmin{}, &extensionsOnly{}
	a := &App{Privacy: f, Tenants: TenantServices{Admin: admin}, Connector: ConnectorServices{Admin: conn}}
	up := map[string]string{"tenantId": tenantA, "userId": userA}
	for _, tc := range []struct {
		body, want string
	}{
		{`{"extensionId":"3003"}`, `"corrected":["extensionId"]`},
		{`{"extensionId":""}`, `"corrected":["extensionId"]`},
		{``, `"corrected":[]`},
	} {
		code, body, _ := invokeHTTP(t, a, httpCall{function: "RectifyPersonalData", method: "PATCH", params: up, body: tc.body})
		if code != 200 || !strings.Contains(body, tc.want) || !strings.Contains(body, `"refreshedFromMicrosoft365":["displayName"`) {
			t.Errorf("%q: %d %s", tc.body, code, body)
		}
	}
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "RectifyPersonalData", method: "PATCH", params: up, body: `{"displayName":"Eve"}`}); code != 400 {
		t.Errorf("patching a Microsoft 365 field = %d, want 400", code)
	}
	if got := strings.Join(conn.calls, " "); got != "set:"+userA+":3003 delete:"+userA {
		t.Errorf("extension calls = %s", got)
	}
	if len(admin.calls) != 3 || admin.calls[0] != "refresh:"+tenantA+":"+userA {
		t.Errorf("profile refreshes = %v", admin.calls)
	}
}

// An objection to all processing cancels the tenant, and the answer says that it ends the service.
func TestObjectionCancelsTheTenant(t *testing.T) {
	t.Parallel()
	f, admin := &fakeRights{}, &fakeAdmin{}
	a := &App{Privacy: f, Tenants: TenantServices{Admin: admin}}
	code, body, _ := invokeHTTP(t, a, httpCall{function: "ObjectToProcessing", method: "POST", params: map[string]string{"tenantId": tenantA}})
	if code != http.StatusOK || !strings.Contains(body, `"kind":"objection"`) || !strings.Contains(body, "ends the service") ||
		strings.Join(admin.calls, " ") != "cancel:"+tenantA || admin.actor.ID != operator {
		t.Errorf("objection = %d %s; tenant calls %v by %+v", code, body, admin.calls, admin.actor)
	}
}

func TestPrivacyFunctions(t *testing.T) {
	t.Parallel()
	f := &fakeRights{}
	a := &App{Privacy: f}
	up := map[string]string{"tenantId": tenantA, "userId": userA}
	for _, tc := range []struct {
		call     httpCall
		want     int
		wantBody string
	}{
		{httpCall{function: "GetPersonalData", method: "GET", params: up}, 200, `"schema":"connecthub.personal-data.v1"`},
		{httpCall{function: "ExportPersonalData", method: "GET", params: up}, 200, `"purpose":"mirror the user's Teams presence`},
		{httpCall{function: "ErasePersonalData", method: "DELETE", params: up}, 200, `"audit":{"deleted":0,"pseudonymised":2}`},
		{httpCall{function: "ListPrivacyRequests", method: "GET", params: map[string]string{"tenantId": tenantA}}, 200, `"receipt":{"requestId"`},
		{httpCall{function: "RestrictProcessing", method: "POST", params: up, body: `{"reason":"accuracy contested"}`}, 200, `"kind":"restriction"`},
		{httpCall{function: "RestrictProcessing", method: "POST", params: up, body: `{"reason":"x","reason":"y"}`}, 400, "documented fields"},
		{httpCall{function: "ResumeProcessing", method: "DELETE", params: up}, 200, `"kind":"resumption"`},
	} {
		code, body, h := invokeHTTP(t, a, tc.call)
		if code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s: %d %s, want %d with %q", tc.call.function, code, body, tc.want, tc.wantBody)
		}
		if tc.call.function == "ExportPersonalData" && !strings.HasPrefix(h["Content-Disposition"], "attachment") {
			t.Errorf("export headers = %v", h)
		}
	}
	if got := strings.Join(f.calls, " "); got != "access:"+userA+":"+operator+" export:"+userA+":"+operator+" erase:"+userA+" requests restrict:true:"+userA+":accuracy contested restrict:false:"+userA+":" {
		t.Errorf("calls = %s", got)
	}
	// A grant scoped to another user does not reach this one: the resource is users/<id>.
	scoped := &App{Privacy: f, Access: AccessServices{Authenticate: testAccess{}, Authorize: scopedTo{"users/b0000000-0000-4000-8000-0000000000b2"}}}
	if code, _, _ := invokeHTTP(t, scoped, httpCall{function: "ErasePersonalData", method: "DELETE", params: up}); code != http.StatusForbidden {
		t.Errorf("erasure under a grant for another user = %d, want 403", code)
	}
}

// scopedTo allows only the resource path it names.
type scopedTo struct{ path string }

func (s scopedTo) Allow(_ context.Context, _ access.Principal, _ access.Permission, res access.Resource) error {
	if res.Path == s.path {
		return nil
	}
	return access.ErrDenied
}

type fakeExporter struct{ tokens []string }

func (f *fakeExporter) ExportTenant(_ context.Context, _ core.Actor, tenant core.TenantID, token string, size int) ([]tables.Record, string, error) {
	f.tokens = append(f.tokens, fmt.Sprintf("%s/%d", token, size))
	if token == "" {
		return []tables.Record{{Table: "users", Key: userA, Fields: map[string]any{"DisplayName": "Ada"}}}, "p2", nil
	}
	return []tables.Record{{Table: "presence", Key: userA, Fields: map[string]any{"Availability": "Busy"}}}, "", nil
}

func TestExportTenantPages(t *testing.T) {
	t.Parallel()
	f := &fakeExporter{}
	a := &App{TenantExport: f}
	tp := map[string]string{"tenantId": tenantA}
	code, body, h := invokeHTTP(t, a, httpCall{function: "ExportTenant", method: "GET", params: tp, query: map[string]string{"pageSize": "500"}})
	if code != 200 || h[NextPageHeader] != "p2" || body != `{"table":"users","key":"`+userA+`","fields":{"DisplayName":"Ada"}}`+"\n" {
		t.Errorf("page 1 = %d %v %q", code, h, body)
	}
	code, body, h = invokeHTTP(t, a, httpCall{function: "ExportTenant", method: "GET", params: tp, query: map[string]string{"pageToken": "p2"}})
	if code != 200 || h[NextPageHeader] != "" || !strings.Contains(body, `"Availability":"Busy"`) {
		t.Errorf("page 2 = %d %v %q", code, h, body)
	}
	if code, _, _ := invokeHTTP(t, a, httpCall{function: "ExportTenant", method: "GET", params: tp, query: map[string]string{"pageSize": "5000"}}); code != 400 {
		t.Errorf("pageSize 5000 = %d, want 400", code)
	}
	if strings.Join(f.tokens, " ") != "/500 p2/0" {
		t.Errorf("pages asked = %v", f.tokens)
	}
}
