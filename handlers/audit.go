package handlers

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// AuditReader pages over a tenant's audit trail (audit.Log).
type AuditReader interface {
	Page(ctx context.Context, tenant core.TenantID, from, to time.Time, token string, size int) (tables.Page[audit.Entry], error)
}

var _ AuditReader = (*audit.Log)(nil)

// NextPageHeader carries the token of the export's next page; absent on the last page.
const NextPageHeader = "X-Next-Page-Token"

func (a *App) auditFunctions() []function {
	return []function{{azfunc.HTTPRoute("ExportAudit", "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
		// audit.read answers the whole trail; access.read alone (a security officer) only the
		// authorisation log: the entries of grants, approvals, uses, revocations and expiries.
		g := guard{perm: access.AuditRead, or: access.AccessRead}
		return a.principalCall(ctx, r, maxAdminBody, g, func(ctx context.Context, p access.Principal, id core.TenantID) (int, any, error) {
			onlyAccess := a.Access.Authorize.Allow(ctx, p, access.AuditRead, access.TenantResource(id)) != nil
			return a.exportAudit(ctx, id, r, onlyAccess)
		})
	}), a.Audit}}
}

// exportAudit answers one page of the tenant's audit trail as JSON Lines, newest first, each entry with
// its chain links so an importer can verify it; onlyAccess keeps the authorisation log's entries only
// (a page may then hold fewer lines than its size, and the token still leads on).
func (a *App) exportAudit(ctx context.Context, tenant core.TenantID, r *azfunc.HTTPRequest, onlyAccess bool) (int, any, error) {
	var from, to time.Time
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.Query.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return 0, nil, apperr.New(apperr.Invalid, name+" must be an RFC 3339 time", err)
			}
			*dst = t
		}
	}
	size := 0
	if v := r.Query.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, apperr.New(apperr.Invalid, "pageSize must be 1 to 1000", nil)
		}
		size = n
	}
	page, err := a.Audit.Page(ctx, tenant, from, to, r.Query.Get("pageToken"), size)
	if err != nil {
		return 0, nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range page.Items {
		if onlyAccess && !strings.HasPrefix(e.Action, "access.") {
			continue
		}
		_ = enc.Encode(auditLine{Seq: e.Seq, At: e.At, ActorID: e.ActorID, ActorKind: e.ActorKind, Action: e.Action,
			TargetType: e.TargetType, TargetID: e.TargetID, Outcome: e.Outcome, InvocationID: e.InvocationID,
			PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)})
	}
	res := azfunc.HTTPResponse{StatusCode: http.StatusOK, Body: b.String(),
		Headers: map[string]string{"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}}
	if page.Next != "" {
		res.Headers[NextPageHeader] = page.Next
	}
	return http.StatusOK, res, nil
}

type auditLine struct {
	Seq          int64     `json:"seq"`
	At           time.Time `json:"at"`
	ActorID      string    `json:"actorId"`
	ActorKind    string    `json:"actorKind"`
	Action       string    `json:"action"`
	TargetType   string    `json:"targetType,omitempty"`
	TargetID     string    `json:"targetId,omitempty"`
	Outcome      string    `json:"outcome"`
	InvocationID string    `json:"invocationId,omitempty"`
	PrevHash     string    `json:"prevHash"`
	Hash         string    `json:"hash"`
}
