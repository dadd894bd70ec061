package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// chromiumPath is Debian's Chromium, which `make test` installs (never a downloaded browser build).
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with an empty profile, as the machine allows it: no sandbox (root),
// no background networking (the machine's closed network refuses it, many connections at a time).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: `make test` installs Debian's chromium (make browser); %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	return ctx
}

// artefacts is where the run keeps the portal's screenshots (git-ignored; CI may collect it).
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONNECTHUB_ARTEFACTS")
	if dir == "" {
		root, _ := filepath.Abs("../../..")
		dir = filepath.Join(root, "bin", "artefacts")
	}
	dir = filepath.Join(dir, "portal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(artefacts(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// submit clicks a form's button and waits for the next page's outcome (the page it leaves is marked, so
// its own notice does not count), failing with the page's problem.
func submit(t *testing.T, ctx context.Context, what, button string) string {
	t.Helper()
	do(t, ctx, what, chromedp.Evaluate[chromedp.Void](`document.body.dataset.left = "1"`), chromedp.Click(chromedp.ID(button)))
	waitFor(t, what+": the next page", func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !document.body.dataset.left &&
			!!(document.getElementById("notice") || document.getElementById("problem"))`))
		return err == nil && ok
	})
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("problem") || {}).textContent || ""`)); err != nil || p != "" {
		t.Fatalf("%s: the page says %q (%v)", what, p, err)
	}
	return text(t, ctx, "notice")
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

func status(t *testing.T, ctx context.Context, u string) int {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	return int(res.Status)
}

// signIn walks the portal's sign-in in the browser: the portal sends it to the development issuer,
// where the person picks the account, and the issuer sends it back to the callback.
func signIn(t *testing.T, ctx context.Context, front string, tenant core.TenantID, user string, role string) {
	t.Helper()
	do(t, ctx, "sign-in page", chromedp.Navigate(front+"/api/portal/"), chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("tenant")),
		chromedp.SetValue(chromedp.ID("tenant"), string(tenant)), chromedp.SetValue(chromedp.ID("user"), user),
		chromedp.Click(chromedp.CSS(`input[value="`+role+`"]`)), chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")))
}

// The Service Manager in headless Chromium, through devhost and the real handler: a tenant admin signs
// in at the development issuer (the authorization-code flow with PKCE the portal runs against Entra
// ID), assigns a license, sets up and tests the PBX connector, looks up, exports (a download) and erases
// a person, and finds each action in the audit page; tenant B's pages answer 403; a form without the
// CSRF token changes nothing; an operator without a grant sees the tenants list and no tenant's data.
// Each page's screenshot is kept in bin/artefacts/portal.
func TestPortalInABrowser(t *testing.T) {
	c := newCloud(t)
	s := startStack(t, c.settings)
	forgetIncidents(t, s)
	c.serve(t, s)
	c.uploadAppCertificate(t, s)
	ctx := context.Background()
	keys := tenantkey.New(s.secrets, tenantkey.Options{})
	tenantA, tenantB := storetest.NewTenantID(t), storetest.NewTenantID(t)
	for _, id := range []core.TenantID{tenantA, tenantB} {
		if err := keys.CreateTenantKey(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.store.Tenants.Create(ctx, registry.Tenant{ID: id, State: registry.TenantActive, PurchasedLicenses: 3,
			HomeRegion: "westeurope", PBXKind: ringcentral.Kind}); err != nil {
			t.Fatal(err)
		}
		c.auth.GrantConsent(string(id), appID)
	}
	const admin, ada = "a0000000-0000-4000-8000-0000000000ad", "b0000000-0000-4000-8000-0000000000a1"
	c.graph.PutUser(string(tenantA), graphtest.User{ID: ada, DisplayName: "Ada", Mail: "ada@contoso.example", AccountEnabled: true})
	c.rc.AddExtension(rctest.Extension{ID: 4001, Number: "401", Email: "reception@contoso.example"})
	front := c.front
	base := front + "/api/portal/tenants/" + string(tenantA)

	b := newBrowser(t)
	downloads := t.TempDir()
	do(t, b, "downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}))

	// Signed out: the sign-in page, with security headers.
	res, err := chromedp.Run(b, chromedp.NavigateResponse(front+"/api/portal/"))
	if err != nil {
		t.Fatal(err)
	}
	if csp := res.Headers["Content-Security-Policy"]; !strings.Contains(fmtAny(csp), "frame-ancestors 'none'") || strings.Contains(fmtAny(csp), "unsafe-inline") {
		t.Errorf("CSP = %v", csp)
	}
	screenshot(t, b, "01-signed-out")

	signIn(t, b, front, tenantA, admin, access.AppRoleTenantAdmin)
	if got := text(t, b, "tenant-state"); got != "active" {
		t.Errorf("overview state = %q", got)
	}
	screenshot(t, b, "02-overview")

	// Users and licenses: assign Ada.
	do(t, b, "licenses", chromedp.Navigate(base+"/licenses"), chromedp.SetValue(chromedp.ID("assign-user"), ada))
	submit(t, b, "assign", "assign")
	if got := text(t, b, "licenses"); !strings.Contains(got, "1 of 3") {
		t.Errorf("licenses after assigning = %q", got)
	}
	// The list finds her by a part of her name, typed into a form (never into a URL).
	do(t, b, "search", chromedp.SetValue(chromedp.ID("search"), "ad"))
	do(t, b, "search", chromedp.Evaluate[chromedp.Void](`document.body.dataset.left = "1"`), chromedp.Click(chromedp.ID("search-users")))
	waitFor(t, "the search's page", func() bool {
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](`!document.body.dataset.left && !!document.getElementById("users")`))
		return err == nil && ok
	})
	if got := text(t, b, "users"); !strings.Contains(got, "Ada") || !strings.Contains(got, "ada@contoso.example") {
		t.Errorf("users found = %q", got)
	}
	if loc, _ := chromedp.Run(b, chromedp.Location()); strings.Contains(loc, "ad") && strings.Contains(loc, "search") {
		t.Errorf("the search landed in the URL: %s", loc)
	}
	screenshot(t, b, "03-licenses")

	// A form without the session's CSRF token (as another site's page would post it, the cookie sent
	// along) is refused and changes nothing.
	do(t, b, "forged form", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.createElement("form");
		f.method = "post";
		f.action = "/api/portal/tenants/`+string(tenantA)+`/licenses";
		for (const [k, v] of [["action", "unassign"], ["userId", "`+ada+`"]]) {
			const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
		}
		document.body.appendChild(f);
		f.submit();
	})()`), chromedp.WaitVisible(chromedp.ID("problem")))
	if got := text(t, b, "problem"); !strings.Contains(got, "nothing was changed") {
		t.Errorf("POST without the CSRF token: %q", got)
	}
	do(t, b, "licenses again", chromedp.Navigate(base+"/licenses"))
	if got := text(t, b, "licenses"); !strings.Contains(got, "1 of 3") {
		t.Errorf("licenses after the forged form = %q, want unchanged", got)
	}

	// Presence: the connector, a wrong credential's test names what failed, the right one passes.
	do(t, b, "connector", chromedp.Navigate(base+"/presence"), chromedp.SetValue(chromedp.ID("clientId"), c.rc.ClientID),
		chromedp.SetValue(chromedp.ID("clientSecret"), c.rc.ClientSecret), chromedp.SetValue(chromedp.ID("jwt"), c.rc.JWT))
	submit(t, b, "save connector", "save-connector")
	if got := text(t, b, "connector-state"); got != "ringcentral" {
		t.Errorf("connector = %q", got)
	}
	if got := submit(t, b, "test connector", "test-connector"); !strings.Contains(got, "accepted") {
		t.Errorf("connector test = %q", got)
	}
	// The service user's connect link, an extension override for Ada, and a state mapping override.
	submit(t, b, "connect link", "connect-service-user")
	if href, err := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("connect-link").href`)); err != nil ||
		!strings.HasPrefix(href, front+"/api/auth/start?link=") {
		t.Errorf("connect link = %q %v", href, err)
	}
	do(t, b, "override", chromedp.SetValue(chromedp.ID("ext-user"), ada), chromedp.SetValue(chromedp.ID("ext-id"), "4001"))
	submit(t, b, "extension override", "set-extension")
	if got := text(t, b, "extensions"); !strings.Contains(got, "override") || !strings.Contains(got, "401") {
		t.Errorf("extensions after the override = %q", got)
	}
	do(t, b, "mapping", chromedp.SetValue(chromedp.ID("overrides"), "Away=Available\n*/InAMeeting=DND"))
	submit(t, b, "mapping", "save-mapping")
	if got := text(t, b, "mapping"); !strings.Contains(got, "away\tAvailable") {
		t.Errorf("effective mapping = %q", got)
	}
	screenshot(t, b, "04-presence")

	// Rooms: the Room Finder's settings; CRM: not connected yet.
	do(t, b, "rooms", chromedp.Navigate(base+"/rooms"), chromedp.SetValue(chromedp.ID("addInOrigins"), "https://rooms.contoso.example"),
		chromedp.SetValue(chromedp.ID("bookingWindowDays"), "14"))
	submit(t, b, "room settings", "save-room-settings")
	if got, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("addInOrigins").value`)); got != "https://rooms.contoso.example" {
		t.Errorf("add-in origins after saving = %q", got)
	}
	if got := submit(t, b, "rooms read now", "refresh-rooms"); !strings.Contains(got, "read from Places now") {
		t.Errorf("after reading the rooms now: %q", got)
	}
	if code := status(t, b, base+"/crm"); code != http.StatusOK || text(t, b, "crm-state") != "not set up" {
		t.Errorf("CRM page = %d %q", code, text(t, b, "crm-state"))
	}

	// Access: a helpdesk grant, shown and revoked.
	const helper = "d0000000-0000-4000-8000-0000000000d1"
	do(t, b, "access", chromedp.Navigate(base+"/access"), chromedp.SetValue(chromedp.ID("principalId"), helper),
		chromedp.SetValue(chromedp.ID("role"), "Helpdesk"))
	submit(t, b, "grant", "grant")
	if got := text(t, b, "grants"); !strings.Contains(got, helper) || !strings.Contains(got, "Helpdesk") {
		t.Errorf("grants = %q", got)
	}
	// A custom role of two permissions, granted like a built-in one.
	do(t, b, "define role", chromedp.SetValue(chromedp.ID("roleName"), "Receptionist"),
		chromedp.Click(chromedp.CSS(`input[name=permission][value="tenant.read"]`)),
		chromedp.Click(chromedp.CSS(`input[name=permission][value="connector.read"]`)),
		chromedp.SetValue(chromedp.ID("description"), "front desk"))
	submit(t, b, "define role", "define-role")
	if got := text(t, b, "roles"); !strings.Contains(got, "Receptionist (custom): front desk") {
		t.Errorf("roles = %q", got)
	}
	screenshot(t, b, "05-access")

	// Privacy: Ada's data, her export as a download, then her erasure with the typed confirmation.
	do(t, b, "view", chromedp.Navigate(base+"/privacy"), chromedp.SetValue(chromedp.ID("userId"), ada),
		chromedp.Click(chromedp.ID("view")), chromedp.WaitVisible(chromedp.ID("report")))
	do(t, b, "export", chromedp.SetValue(chromedp.ID("userId"), ada), chromedp.Click(chromedp.ID("export")))
	archive := waitForFile(t, downloads, "personal-data.json")
	var report struct {
		Schema     string `json:"schema"`
		Subject    string `json:"subject"`
		Categories []struct {
			Table string `json:"table"`
		} `json:"categories"`
	}
	err = json.Unmarshal(archive, &report)
	if err != nil || report.Schema != "connecthub.personal-data.v1" || report.Subject != ada ||
		!slices.ContainsFunc(report.Categories, func(c struct {
			Table string `json:"table"`
		}) bool {
			return c.Table == "licenses"
		}) {
		t.Errorf("downloaded export = %v %s", err, truncate(string(archive), 300))
	}
	// The tenant's whole export, fetched page by page by the page's script with its progress shown.
	do(t, b, "tenant export", chromedp.Navigate(base+"/privacy"), chromedp.Click(chromedp.ID("tenant-export")),
		chromedp.WaitVisible(chromedp.ID("export-done")))
	dump := string(waitForFile(t, downloads, "tenant-"+string(tenantA)+".jsonl"))
	for _, table := range []string{`"table":"licenses"`, `"table":"users"`, `"table":"audit"`} {
		if !strings.Contains(dump, table) {
			t.Errorf("tenant export lacks %s", table)
		}
	}
	if got := text(t, b, "export-done"); !strings.HasPrefix(got, "Done: ") {
		t.Errorf("export progress = %q", got)
	}
	screenshot(t, b, "06-privacy")
	do(t, b, "erase form", chromedp.Navigate(base+"/privacy"), chromedp.SendKeys(chromedp.ID("erase-user"), ada),
		chromedp.SendKeys(chromedp.ID("confirm"), ada))
	if got := submit(t, b, "erase", "erase"); !strings.HasPrefix(got, "Erased") {
		t.Errorf("erase = %q", got)
	}
	if _, err := s.store.Users.Get(ctx, tenantA, ada); !errors.Is(err, tables.ErrNotFound) {
		t.Errorf("Ada is still stored after the erasure: %v", err)
	}
	screenshot(t, b, "07-erased")

	// Audit: each action above, by the admin who took it in the portal.
	do(t, b, "audit", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	trail := text(t, b, "audit")
	for _, action := range []string{"license.assign", "connector.set", "connector.test", "user.extension.set", "presence.mapping.set",
		"rooms.settings.set", "rooms.refresh", "access.grant", "access.role.define", "privacy.access", "privacy.export", "privacy.erase"} {
		if !strings.Contains(trail, action) {
			t.Errorf("audit page lacks %s:\n%s", action, trail)
		}
	}
	if !strings.Contains(trail, admin) {
		t.Errorf("audit page does not name the admin who acted")
	}
	screenshot(t, b, "08-audit")
	do(t, b, "audit download", chromedp.Click(chromedp.ID("download-audit")))
	if lines := strings.Count(string(waitForFile(t, downloads, "audit-"+string(tenantA)+".jsonl")), "\n"); lines < 9 {
		t.Errorf("audit download has %d lines", lines)
	}

	// Tenant B: refused with 403 and a page that says so, for every page.
	for _, page := range []string{"", "/licenses", "/privacy", "/audit", "/presence"} {
		if code := status(t, b, front+"/api/portal/tenants/"+string(tenantB)+page); code != http.StatusForbidden {
			t.Errorf("tenant B %q = %d, want 403", page, code)
		}
	}
	screenshot(t, b, "09-other-tenant-403")

	// Sign-out ends the session at the server, not only in the browser.
	do(t, b, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signedout")))
	sessions := portal.OpenData(s.store.DB()).Sessions
	waitFor(t, "session row deleted", func() bool {
		n := 0
		for range sessions.All(ctx, tenantA, nil) {
			n++
		}
		return n == 0
	})
	if code := status(t, b, base+"/audit"); code != http.StatusOK || strings.Contains(text(t, b, "main"), "license.assign") {
		t.Errorf("after sign-out the audit page answered %d with data", code)
	}

	// An operator without a grant: the tenants list, and nothing inside a tenant. They ask for access; a
	// security officer approves it in the portal; then the operator reads the tenant's overview.
	const operator, officer = "c0000000-0000-4000-8000-0000000000c1", "c0000000-0000-4000-8000-0000000000c2"
	op := newBrowser(t)
	signIn(t, op, front, config.DevOperatorTenant, operator, access.AppRoleOperator)
	if got := text(t, op, "tenants"); !strings.Contains(got, string(tenantA)) {
		t.Errorf("operator's tenant list lacks tenant A: %q", got)
	}
	if code := status(t, op, base); code != http.StatusForbidden {
		t.Errorf("operator without a grant on tenant A = %d, want 403", code)
	}
	if body := text(t, op, "main"); strings.Contains(body, "purchased") {
		t.Errorf("operator without a grant sees tenant data: %q", body)
	}
	do(t, op, "ask", chromedp.Navigate(front+"/api/portal/operator"), chromedp.SetValue(chromedp.ID("req-tenant"), string(tenantA)),
		chromedp.SetValue(chromedp.ID("minutes"), "30"), chromedp.SetValue(chromedp.ID("justification"), "TICKET-1234"))
	submit(t, op, "request access", "request-access")
	screenshot(t, op, "10-operator")

	so := newBrowser(t)
	signIn(t, so, front, config.DevOperatorTenant, officer, access.AppRoleSecurityOfficer)
	do(t, so, "officer opens tenant A", chromedp.Click(chromedp.CSS(`a[href$="`+string(tenantA)+`/access"]`)),
		chromedp.WaitVisible(chromedp.ID("requests")))
	do(t, so, "approve", chromedp.Evaluate[chromedp.Void](`document.body.dataset.left = "1"`),
		chromedp.Click(chromedp.CSS(`#requests button[type=submit]`)))
	waitFor(t, "the approval", func() bool {
		got, err := chromedp.Run(so, chromedp.Evaluate[string](`document.body.dataset.left ? "" : (document.getElementById("notice") || {}).textContent || ""`))
		return err == nil && strings.HasPrefix(got, "Approved")
	})
	screenshot(t, so, "11-security-officer")

	// The officer records a breach incident for tenant A, reads the drafted notification and marks it sent.
	do(t, so, "incidents page", chromedp.Navigate(front+"/api/portal/operator"), chromedp.Click(chromedp.ID("incidents-link")),
		chromedp.WaitVisible(chromedp.CSS("#record-incident, #problem")))
	if p, _ := chromedp.Run(so, chromedp.Evaluate[string](`(document.getElementById("problem") || {}).textContent || ""`)); p != "" {
		t.Fatalf("incidents page: %s", p)
	}
	do(t, so, "incident form",
		chromedp.SetValue(chromedp.ID("summary"), "A PBX credential was readable by a support tool for 2 hours."),
		chromedp.SetValue(chromedp.ID("discoveredAt"), time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.ID("inc-tenants"), string(tenantA)), chromedp.SetValue(chromedp.ID("dataCategories"), "users"),
		chromedp.SetValue(chromedp.ID("containment"), "tool access removed"), chromedp.SetValue(chromedp.ID("impact"), "low"),
		chromedp.SetValue(chromedp.ID("actionPlan"), "rotate the credential"), chromedp.SetValue(chromedp.ID("contact"), "dpo@connecthub.example"))
	submit(t, so, "record incident", "record-incident")
	if got := text(t, so, "incidents"); !strings.Contains(got, string(tenantA)) || !strings.Contains(got, "not yet") {
		t.Errorf("incidents = %q", got)
	}
	// Other tests record incidents in the same tables: pick the row of this one (it names tenant A).
	do(t, so, "drafts", chromedp.Evaluate[chromedp.Void](`document.body.dataset.left = "1"; [...document.querySelectorAll("#incidents tr")]
		.find(tr => tr.textContent.includes("`+string(tenantA)+`")).querySelector("button[type=submit]").click()`))
	waitFor(t, "the drafts", func() bool {
		ok, err := chromedp.Run(so, chromedp.Evaluate[bool](`!document.body.dataset.left && !!document.getElementById("drafts-h")`))
		return err == nil && ok
	})
	if got := text(t, so, "draft-"+string(tenantA)); !strings.Contains(got, "rotate the credential") {
		t.Errorf("draft = %q", got)
	}
	do(t, so, "mark sent", chromedp.Evaluate[chromedp.Void](`document.body.dataset.left = "1"`),
		chromedp.Click(chromedp.CSS(`#draft-`+string(tenantA)+` button`)))
	waitFor(t, "marked sent", func() bool {
		got, err := chromedp.Run(so, chromedp.Evaluate[string](`document.body.dataset.left ? "" : (document.getElementById("notice") || {}).textContent || ""`))
		return err == nil && got == "Marked sent."
	})
	screenshot(t, so, "12-incidents")
	if code := status(t, op, base); code != http.StatusOK {
		t.Errorf("operator with an approved grant on tenant A = %d, want 200", code)
	}
	if code := status(t, op, base+"/privacy"); code != http.StatusForbidden {
		t.Errorf("operator support may not reach privacy: %d", code)
	}
}

func waitForFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	var data []byte
	waitFor(t, "the download "+name, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && len(b) > 0 {
			data = b
			return true
		}
		return false
	})
	return data
}

func fmtAny(v any) string {
	s, _ := v.(string)
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
