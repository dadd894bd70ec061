package portal

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(v any) string {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.IsZero() || t.Year() < 2000 {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).ParseFS(assets, "templates/*.html"))

// nav is a link of the tenant menu, shown when the principal holds its permission.
type nav struct {
	Label, Path string
	Perm        string // the access permission's name
	Current     bool
}

// The permissions the pages ask about, by the names access gives them (internal/app checks that each
// is one of access's).
const (
	PermTenantRead      = "tenant.read"
	PermLicensesWrite   = "licenses.write"
	PermConnectorRead   = "connector.read"
	PermConnectorWrite  = "connector.write"
	PermPrivacyExport   = "privacy.export"
	PermPrivacyErase    = "privacy.erase"
	PermAuditRead       = "audit.read"
	PermPrivacyRestrict = "privacy.restrict"
	PermRoomsRead       = "rooms.read"
	PermRoomsWrite      = "rooms.write"
	PermIncidentsWrite  = "incidents.write"
	// PermServiceUsersWrite connects a delegated service user; PermAccess* are the access page's.
	PermServiceUsersWrite = "serviceusers.write"
	PermAccessRead        = "access.read"
	PermAccessGrant       = "access.grant"
	PermAccessApprove     = "access.approve"
)

// Permissions are every permission the portal asks about.
var Permissions = []string{PermTenantRead, PermLicensesWrite, PermConnectorRead, PermConnectorWrite,
	PermPrivacyExport, PermPrivacyErase, PermAuditRead, PermServiceUsersWrite, PermAccessRead, PermAccessGrant, PermAccessApprove, PermPrivacyRestrict, PermRoomsRead, PermRoomsWrite, PermIncidentsWrite}

var tenantMenu = []nav{
	{Label: "Overview", Path: "", Perm: PermTenantRead},
	{Label: "Users and licenses", Path: "licenses", Perm: PermLicensesWrite},
	{Label: "Presence", Path: "presence", Perm: PermConnectorRead},
	{Label: "Rooms", Path: "rooms", Perm: PermRoomsRead},
	{Label: "CRM", Path: "crm", Perm: PermConnectorRead},
	{Label: "Privacy", Path: "privacy", Perm: PermPrivacyExport},
	{Label: "Access", Path: "access", Perm: PermAccessRead},
	{Label: "Audit", Path: "audit", Perm: PermAuditRead},
}

// route dispatches a signed-in request.
func (p *Portal) route(ctx context.Context, req *request) azfunc.HTTPResponse {
	path := req.path
	switch {
	case len(path) == 0:
		home := "/api/portal/tenants/" + string(req.tenant)
		if req.tenant == p.cfg.OperatorTenant {
			home = "/api/portal/operator"
		}
		return azfunc.HTTPResponse{StatusCode: http.StatusSeeOther, Headers: map[string]string{"Location": home}}
	case len(path) == 1 && path[0] == "signout" && req.Method == http.MethodPost:
		return p.signOut(ctx, req)
	case len(path) == 1 && path[0] == "operator":
		return p.operatorPage(ctx, req)
	case len(path) == 2 && path[0] == "operator" && path[1] == "incidents":
		return p.incidentsPage(ctx, req)
	case len(path) >= 2 && path[0] == "tenants" && len(path) <= 3:
		tenant, err := core.ParseTenantID(path[1])
		if err != nil {
			return p.problem(req, http.StatusNotFound, "There is no such page.")
		}
		page := ""
		if len(path) == 3 {
			page = path[2]
		}
		return p.tenantPage(ctx, req, tenant, page)
	}
	return p.problem(req, http.StatusNotFound, "There is no such page.")
}

// view is what every page template gets.
type view struct {
	Title   string
	Who     Principal
	CSRF    string
	Tenant  core.TenantID
	Menu    []nav
	Notice  string // the outcome of the action just taken
	Problem string
	Data    map[string]any
}

func (p *Portal) newView(ctx context.Context, req *request, tenant core.TenantID, current string) *view {
	v := &view{Who: req.who, Tenant: tenant, Data: map[string]any{}}
	if req.secret != nil {
		v.CSRF = csrfToken(req.secret)
	}
	if tenant != "" {
		for _, n := range tenantMenu {
			if p.cfg.Access.Allowed(ctx, req.who, n.Perm, tenant) {
				n.Current = n.Path == current
				v.Menu = append(v.Menu, n)
			}
		}
	}
	return v
}

// call runs an admin function as the signed-in principal and decodes its JSON answer into out. It
// returns the function's status and, for an error, its public message.
func (p *Portal) call(ctx context.Context, req *request, function string, params map[string]string, query url.Values, body any, out any) (int, string, azfunc.HTTPResponse) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	res := p.cfg.API.CallAs(ctx, req.who, function, params, query, raw)
	if res.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal([]byte(res.Body), &e)
		if e.Error == "" {
			e.Error = http.StatusText(res.StatusCode)
		}
		return res.StatusCode, e.Error, res
	}
	if out != nil && strings.HasPrefix(res.Headers["Content-Type"], "application/json") {
		_ = json.Unmarshal([]byte(res.Body), out)
	}
	return res.StatusCode, "", res
}

// tenantPage serves the pages of one tenant. What the page shows comes from the functions; a function
// that refuses the principal makes the page answer its status (403 for another tenant's admin).
func (p *Portal) tenantPage(ctx context.Context, req *request, tenant core.TenantID, page string) azfunc.HTTPResponse {
	v := p.newView(ctx, req, tenant, page)
	t := map[string]string{"tenantId": string(tenant)}
	switch page {
	case "":
		v.Title = "Overview"
		var info map[string]any
		if status, msg, _ := p.call(ctx, req, "GetTenant", t, nil, nil, &info); status >= 400 {
			return p.refused(req, v, status, msg)
		}
		v.Data["Tenant"] = info
		var incidents map[string]any
		if status, _, _ := p.call(ctx, req, "ListTenantIncidents", t, nil, nil, &incidents); status < 400 {
			v.Data["Incidents"] = incidents["incidents"]
		}
		return p.render(req, http.StatusOK, "overview", v)
	case "licenses":
		v.Title = "Users and licenses"
		search, token := "", ""
		if req.Method == http.MethodPost {
			user := strings.TrimSpace(req.form.Get("userId"))
			switch req.form.Get("action") {
			case "assign", "unassign":
				fn, done := "AssignLicense", "License assigned."
				if req.form.Get("action") == "unassign" {
					fn, done = "UnassignLicense", "License removed; the user's data held for the license is deleted."
				}
				status, msg, _ := p.call(ctx, req, fn, map[string]string{"tenantId": string(tenant), "userId": user}, nil, nil, nil)
				v.Notice, v.Problem = outcome(status, msg, done)
			case "search":
				// A search is a form post, so a name typed here never lands in a URL (or a log of one).
				search, token = strings.TrimSpace(req.form.Get("search")), req.form.Get("pageToken")
			}
		}
		var info map[string]any
		if status, msg, _ := p.call(ctx, req, "GetTenant", t, nil, nil, &info); status >= 400 {
			return p.refused(req, v, status, msg)
		}
		v.Data["Tenant"] = info
		q := url.Values{"pageSize": {"100"}}
		if search != "" {
			q.Set("search", search)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		var users map[string]any
		if status, msg, _ := p.call(ctx, req, "ListLicensedUsers", t, q, nil, &users); status >= 400 && v.Problem == "" {
			v.Problem = msg
		}
		v.Data["Users"], v.Data["Next"], v.Data["Search"] = users["users"], users["nextPageToken"], search
		return p.render(req, statusOf(v), "licenses", v)
	case "presence":
		return p.presencePage(ctx, req, v, tenant)
	case "access":
		return p.accessPage(ctx, req, v, tenant)
	case "rooms":
		return p.roomsPage(ctx, req, v, tenant)
	case "crm":
		return p.crmPage(ctx, req, v, tenant)
	case "privacy":
		return p.privacyPage(ctx, req, v, tenant)
	case "audit":
		return p.auditPage(ctx, req, v, tenant)
	case "export":
		if req.Method != http.MethodPost {
			return p.problem(req, http.StatusMethodNotAllowed, "The export is started from the privacy page.")
		}
		return p.tenantExport(ctx, req, v, tenant)
	}
	return p.problem(req, http.StatusNotFound, "There is no such page.")
}

// privacyPage: the requests with their due dates, and a person's data: view, export (a download),
// restrict, resume, erase (typed confirmation). The person's id travels in the form body only.
func (p *Portal) privacyPage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "Privacy"
	if req.Method == http.MethodPost {
		user := strings.ToLower(strings.TrimSpace(req.form.Get("userId")))
		params := map[string]string{"tenantId": string(tenant), "userId": user}
		v.Data["UserID"] = user
		switch req.form.Get("action") {
		case "view":
			var report map[string]any
			status, msg, _ := p.call(ctx, req, "GetPersonalData", params, nil, nil, &report)
			if status < 400 {
				v.Data["Report"] = report
			}
			v.Problem = msg
		case "export":
			status, msg, res := p.call(ctx, req, "ExportPersonalData", params, nil, nil, nil)
			if status < 400 {
				// The archive as the function made it, as a download.
				res.Headers["Content-Disposition"] = `attachment; filename="personal-data.json"`
				return res
			}
			v.Problem = msg
		case "restrict", "resume":
			fn, done := "RestrictProcessing", "Processing is restricted: nothing is synced for this person until it is lifted."
			var body any = map[string]string{"reason": strings.TrimSpace(req.form.Get("reason"))}
			if req.form.Get("action") == "resume" {
				fn, done, body = "ResumeProcessing", "Processing resumed.", nil
			}
			status, msg, _ := p.call(ctx, req, fn, params, nil, body, nil)
			v.Notice, v.Problem = outcome(status, msg, done)
		case "object":
			if !constantEqual(strings.ToLower(strings.TrimSpace(req.form.Get("confirmTenant"))), string(tenant)) {
				v.Problem = "To object, type this tenant's id in the confirmation field. Nothing was changed."
				break
			}
			var res map[string]any
			status, msg, _ := p.call(ctx, req, "ObjectToProcessing", map[string]string{"tenantId": string(tenant)}, nil, nil, &res)
			v.Notice, v.Problem = outcome(status, msg, "Objection recorded. "+str(res["meaning"]))
		case "erase":
			if !constantEqual(strings.ToLower(strings.TrimSpace(req.form.Get("confirm"))), user) || user == "" {
				v.Problem = "To erase, type the person's object id again in the confirmation field. Nothing was erased."
				break
			}
			var receipt map[string]any
			status, msg, _ := p.call(ctx, req, "ErasePersonalData", params, nil, nil, &receipt)
			v.Notice, v.Problem = outcome(status, msg, "Erased. Receipt "+str(receipt["requestId"])+".")
			if status < 400 {
				v.Data["UserID"] = ""
			}
		}
	}
	var list map[string]any
	if status, msg, _ := p.call(ctx, req, "ListPrivacyRequests", map[string]string{"tenantId": string(tenant)}, nil, nil, &list); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	v.Data["Requests"] = list["requests"]
	v.Data["CanErase"] = p.cfg.Access.Allowed(ctx, req.who, PermPrivacyErase, tenant)
	v.Data["CanObject"] = p.cfg.Access.Allowed(ctx, req.who, PermPrivacyRestrict, tenant)
	return p.render(req, statusOf(v), "privacy", v)
}

// operatorPage: the tenants (states only, no data inside) and a request for time-bound access.
func (p *Portal) operatorPage(ctx context.Context, req *request) azfunc.HTTPResponse {
	v := p.newView(ctx, req, "", "")
	v.Title = "Tenants"
	if req.Method == http.MethodPost {
		tenant, err := core.ParseTenantID(req.form.Get("tenantId"))
		if err != nil {
			v.Problem = "Choose a tenant."
		} else {
			minutes, _ := strconv.Atoi(req.form.Get("minutes"))
			status, msg, _ := p.call(ctx, req, "RequestOperatorAccess", map[string]string{"tenantId": string(tenant)}, nil,
				map[string]any{"minutes": minutes, "justification": req.form.Get("justification")}, nil)
			v.Notice, v.Problem = outcome(status, msg, "Access requested. A security officer other than you decides; the tenant's admins see the request.")
		}
	}
	var list map[string]any
	if status, msg, _ := p.call(ctx, req, "ListTenants", nil, nil, nil, &list); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	// A security officer opens a tenant at its access page (requests to decide); others at the overview,
	// which answers 403 without a grant.
	ts, _ := list["tenants"].([]any)
	for _, x := range ts {
		if m, ok := x.(map[string]any); ok {
			m["page"] = ""
			if id, err := core.ParseTenantID(str(m["id"])); err == nil && !p.cfg.Access.Allowed(ctx, req.who, PermTenantRead, id) &&
				p.cfg.Access.Allowed(ctx, req.who, PermAccessRead, id) {
				m["page"] = "/access"
			}
		}
	}
	v.Data["Tenants"] = ts
	v.Data["CanIncidents"] = p.cfg.Access.Allowed(ctx, req.who, PermIncidentsWrite, "")
	return p.render(req, statusOf(v), "operator", v)
}

// act calls an admin function for a form and shows its outcome: done, or the function's refusal.
func (p *Portal) act(ctx context.Context, req *request, v *view, function string, params map[string]string, body any, done string) {
	status, msg, _ := p.call(ctx, req, function, params, nil, body, nil)
	v.Notice, v.Problem = outcome(status, msg, done)
}

func outcome(status int, msg, done string) (notice, problem string) {
	if status >= 400 {
		return "", msg
	}
	return done, ""
}

// statusOf answers a page that shows a refused action with 422, so the browser's status line and a
// test see that the action did not happen while the page is still shown.
func statusOf(v *view) int {
	if v.Problem != "" {
		return http.StatusUnprocessableEntity
	}
	return http.StatusOK
}

func (p *Portal) refused(req *request, v *view, status int, msg string) azfunc.HTTPResponse {
	v.Menu = nil
	v.Problem = msg
	if status == http.StatusForbidden {
		v.Problem = "You may not see this tenant's pages. " + msg
	}
	return p.render(req, status, "problem", v)
}

// problem renders an error page with the status.
func (p *Portal) problem(req *request, status int, msg string) azfunc.HTTPResponse {
	v := &view{Title: http.StatusText(status), Problem: msg}
	if req != nil {
		v.Who = req.who
	}
	return p.render(req, status, "problem", v)
}

func (p *Portal) render(req *request, status int, name string, v any) azfunc.HTTPResponse {
	if v == nil {
		v = &view{}
	}
	if m, ok := v.(map[string]any); ok {
		v = &view{Data: m}
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name+".html", v); err != nil {
		p.cfg.Log.Error("portal template failed", "page", name, "err", err)
		return azfunc.HTTPResponse{StatusCode: http.StatusInternalServerError, Body: "internal error",
			Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
	}
	return azfunc.HTTPResponse{StatusCode: status, Body: b.String(),
		Headers: map[string]string{"Content-Type": "text/html; charset=utf-8"}}
}

// staticAsset serves the stylesheet and the script; they change only with a deployment.
func staticAsset(path string) azfunc.HTTPResponse {
	b, err := assets.ReadFile(path)
	if err != nil {
		return azfunc.HTTPResponse{StatusCode: http.StatusNotFound}
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(path, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: string(b),
		Headers: map[string]string{"Content-Type": ct, "Cache-Control": "public, max-age=3600"}}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func constantEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
