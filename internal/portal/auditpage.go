package portal

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// maxAuditDownload bounds one download of the trail: the host hands whole bodies, so a larger range is
// downloaded in parts (a narrower from/to) or through the API's pages.
const maxAuditDownload = 10000

// auditPage: the trail between two dates (the newest 200 shown), and the same range as a JSON Lines
// download with the chain links, for an importer to verify.
func (p *Portal) auditPage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "Audit"
	t := map[string]string{"tenantId": string(tenant)}
	src := req.Query
	if req.Method == http.MethodPost {
		src = req.form
	}
	q := url.Values{}
	for _, k := range []string{"from", "to"} {
		d := strings.TrimSpace(src.Get(k))
		if d == "" {
			continue
		}
		day, err := time.Parse("2006-01-02", d)
		if err != nil {
			v.Problem = "Dates are YYYY-MM-DD."
			continue
		}
		if k == "to" {
			day = day.Add(24 * time.Hour)
		}
		q.Set(k, day.UTC().Format(time.RFC3339))
		v.Data[k] = d
	}
	if req.Method == http.MethodPost && req.form.Get("action") == "download" {
		var b strings.Builder
		n := 0
		for {
			q.Set("pageSize", "1000")
			status, msg, res := p.call(ctx, req, "ExportAudit", t, q, nil, nil)
			if status >= 400 {
				return p.refused(req, v, status, msg)
			}
			b.WriteString(res.Body)
			n += strings.Count(res.Body, "\n")
			next := res.Headers["X-Next-Page-Token"]
			if next == "" || n >= maxAuditDownload {
				break
			}
			q.Set("pageToken", next)
		}
		return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: b.String(), Headers: map[string]string{
			"Content-Type":        "application/x-ndjson",
			"Content-Disposition": `attachment; filename="audit-` + string(tenant) + `.jsonl"`,
		}}
	}
	q.Set("pageSize", "200")
	status, msg, res := p.call(ctx, req, "ExportAudit", t, q, nil, nil)
	if status >= 400 {
		return p.refused(req, v, status, msg)
	}
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(res.Body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			entries = append(entries, e)
		}
	}
	v.Data["Entries"] = entries
	return p.render(req, statusOf(v), "audit", v)
}

// maxExportPages bounds the tenant export one form post answers without the page's script (the host
// hands whole bodies); with the script, the browser fetches page by page, shows its progress, and has
// no bound.
const maxExportPages = 20

// tenantExport answers the tenant's whole export (ExportTenant): one page with its next token in
// X-Next-Page-Token for the page's script (page=1), or, for a plain form post, up to maxExportPages
// pages as one download.
func (p *Portal) tenantExport(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	t := map[string]string{"tenantId": string(tenant)}
	q := url.Values{"pageSize": {"1000"}}
	if tok := req.form.Get("pageToken"); tok != "" {
		q.Set("pageToken", tok)
	}
	onePage := req.form.Get("page") == "1"
	var b strings.Builder
	next := ""
	for i := 0; i < maxExportPages; i++ {
		status, msg, res := p.call(ctx, req, "ExportTenant", t, q, nil, nil)
		if status >= 400 {
			return p.refused(req, v, status, msg)
		}
		b.WriteString(res.Body)
		next = res.Headers["X-Next-Page-Token"]
		if next == "" || onePage {
			break
		}
		q.Set("pageToken", next)
	}
	h := map[string]string{"Content-Type": "application/x-ndjson"}
	if next != "" {
		h["X-Next-Page-Token"] = next
	}
	if !onePage {
		h["Content-Disposition"] = `attachment; filename="tenant-` + string(tenant) + `.jsonl"`
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: b.String(), Headers: h}
}
