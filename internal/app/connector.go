package app

import (
	"context"
	"fmt"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/setup"
)

// wireConnector builds the presence set-up functions (connector, user extensions, presence mapping) on
// the connectors wirePresence built.
func (w *Wired) wireConnector(pushers connector.Registry, changed func(context.Context, core.TenantID) error) error {
	defaults, err := presence.ParseMapping(presence.DefaultMapping(), w.Config.Presence.DefaultMapping)
	if err != nil {
		return fmt.Errorf("%s: %w", config.KeyPresenceDefaultMap, err)
	}
	testers := map[string]connector.Tester{}
	for kind, p := range pushers {
		t, ok := p.(connector.Tester)
		if !ok {
			return fmt.Errorf("connector %s cannot test its credential", kind)
		}
		testers[kind] = t
	}
	svc, err := setup.New(setup.Options{Store: w.Store, Secrets: w.Secrets, Sealer: w.Keys, Connectors: testers,
		DefaultMapping: defaults, AllowHTTP: w.Config.Environment == config.Local, Changed: changed, Now: clock.Now, Log: w.Log})
	if err != nil {
		return err
	}
	w.App.Connector = handlers.ConnectorServices{Admin: svc}
	return nil
}
