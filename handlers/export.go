package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TenantExporter answers one page of a tenant's whole export (privacy.Rights.ExportTenant over a
// privacy.TenantExport).
type TenantExporter interface {
	ExportTenant(ctx context.Context, by core.Actor, tenant core.TenantID, token string, size int) ([]tables.Record, string, error)
}

// tenantExportFunctions: GET tenants/{tenantId}/export, everything the tenant's partition holds, one
// page of JSON Lines per call (a record per line: table, key, fields), the next page's token in
// X-Next-Page-Token, so a 100,000-user tenant is never held in memory whole.
func (a *App) tenantExportFunctions() []function {
	return []function{{azfunc.HTTPRoute("ExportTenant", "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
		return a.adminCall(ctx, r, maxAdminBody, guard{perm: access.PrivacyExport}, func(ctx context.Context, by core.Actor, id core.TenantID) (int, any, error) {
			size := 0
			if v := r.Query.Get("pageSize"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1000 {
					return 0, nil, apperr.New(apperr.Invalid, "pageSize must be 1 to 1000", nil)
				}
				size = n
			}
			recs, next, err := a.TenantExport.ExportTenant(ctx, by, id, r.Query.Get("pageToken"), size)
			if err != nil {
				return 0, nil, err
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			for _, rec := range recs {
				_ = enc.Encode(rec)
			}
			res := azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: b.String(),
				Headers: map[string]string{"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}}
			if next != "" {
				res.Headers[NextPageHeader] = next
			}
			return http.StatusOK, res, nil
		})
	}), a.TenantExport}}
}
