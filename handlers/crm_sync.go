package handlers

import (
	"context"
	"net/http"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// CRMSyncNow runs one user's CRM sync on an admin's request (crm.Notifications).
type CRMSyncNow interface {
	SyncNow(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) (crm.SyncNowResult, error)
}

var _ CRMSyncNow = (*crm.Notifications)(nil)

// crmSyncFunctions: SyncCRMUser, POST tenants/{tenantId}/crm/users/{userId}/sync (connector.write on the
// scope crm): the user's sync now, after the admin fixed what GetCRMSyncHealth showed.
func (a *App) crmSyncFunctions() []function {
	return []function{{azfunc.HTTPRoute("SyncCRMUser", "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
		return a.adminCall(ctx, r, maxAdminBody, guard{perm: access.ConnectorWrite, scope: "crm"}, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
			res, err := a.CRMNow.SyncNow(ctx, actor, id, r.Params["userId"])
			return http.StatusOK, res, err
		})
	}), a.CRMNow}}
}
