package handlers

// PresenceServices are the services behind the presence-sync functions (service-user consent).
type PresenceServices struct{}

// presenceRoutes are the presence capability's own HTTP functions.
func (a *App) presenceRoutes() []Route { return nil }
