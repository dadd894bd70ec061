package handlers

// TenantServices are the services behind the tenant lifecycle and licensing functions.
type TenantServices struct{}

// tenantRoutes are the tenant capability's own HTTP functions.
func (a *App) tenantRoutes() []Route { return nil }
