package privacy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// KindTenantExport is a tenant admin's export of all the tenant's data.
const KindTenantExport = "tenant-export"

// TenantExport pages through every per-tenant table of the catalogue, in catalogue order, one page of
// rows at a time, sealed fields opened. A page token names the table and the storage continuation, so
// memory is bounded by the page size whatever the tenant's size, and the Functions host, which takes a
// whole response body from a custom handler, never holds more than one page.
type TenantExport struct {
	db     *tables.DB
	tables []tables.Spec
}

// NewTenantExport exports the per-tenant tables of cat from db.
func NewTenantExport(db *tables.DB, cat tables.Catalogue) *TenantExport {
	var specs []tables.Spec
	for _, name := range cat.TenantTables() {
		s, _ := cat.Lookup(name)
		specs = append(specs, s)
	}
	return &TenantExport{db: db, tables: specs}
}

// exportToken is where the next page starts: a table of the list and its continuation.
type exportToken struct {
	Table int    `json:"t"`
	Next  string `json:"n,omitempty"`
}

// MaxExportPage bounds a page of the tenant export.
const MaxExportPage = 1000

// Page answers up to size rows from token on ("" the start), and the token of the next page ("" at
// the end). A page may hold fewer rows than size when a table ends inside it.
func (x *TenantExport) Page(ctx context.Context, tenant core.TenantID, token string, size int) ([]tables.Record, string, error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return nil, "", err
	}
	if size <= 0 || size > MaxExportPage {
		size = MaxExportPage
	}
	var at exportToken
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || json.Unmarshal(raw, &at) != nil || at.Table < 0 || at.Table >= len(x.tables) {
			return nil, "", apperr.New(apperr.Invalid, "invalid page token", err)
		}
	}
	var out []tables.Record
	for len(out) < size && at.Table < len(x.tables) {
		spec := x.tables[at.Table]
		page, err := spec.Open(x.db).List(ctx, tenant, &tables.ListOptions{PageSize: size - len(out), Token: at.Next})
		if errors.Is(err, tables.ErrBadPageToken) {
			return nil, "", apperr.New(apperr.Invalid, "invalid page token", err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("export %s: %w", spec.Name, err)
		}
		for _, e := range page.Items {
			rec, err := spec.Open(x.db).Record(e)
			if err != nil {
				return nil, "", err
			}
			out = append(out, rec)
		}
		if page.Next != "" {
			at.Next = page.Next
			continue
		}
		at = exportToken{Table: at.Table + 1}
	}
	if at.Table >= len(x.tables) {
		return out, "", nil
	}
	b, _ := json.Marshal(at)
	return out, base64.RawURLEncoding.EncodeToString(b), nil
}

// ExportTenant answers one page of the tenant's whole export (x) for a tenant admin; the first page is
// recorded as a privacy request and in the audit trail.
func (r *Rights) ExportTenant(ctx context.Context, x *TenantExport, by core.Actor, tenant core.TenantID, token string, size int) ([]tables.Record, string, error) {
	recs, next, err := x.Page(ctx, tenant, token, size)
	if token != "" {
		return recs, next, err
	}
	if err == nil {
		_, err = r.record(ctx, by, tenant, "tenant", KindTenantExport, "completed", r.now().UTC(), "")
	}
	return recs, next, r.log.Record(ctx, tenant, by, "privacy."+KindTenantExport, "tenant", "", err)
}

// Exporter binds a tenant export to the rights that record it (handlers.TenantExporter).
type Exporter struct {
	Rights *Rights
	Export *TenantExport
}

// ExportTenant answers one page; see Rights.ExportTenant.
func (e Exporter) ExportTenant(ctx context.Context, by core.Actor, tenant core.TenantID, token string, size int) ([]tables.Record, string, error) {
	return e.Rights.ExportTenant(ctx, e.Export, by, tenant, token, size)
}
