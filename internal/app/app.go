// Package app wires the handler: configuration in, adapters built for the environment (Azure or local),
// domain services assembled into the handlers.App the transport serves. Tests call New with their own
// settings and ports.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/config"
	"github.com/connecthub/connecthub/internal/queue"
)

// Build information, set with -ldflags "-X github.com/connecthub/connecthub/internal/app.Build=...".
var Build = "unknown"

// Wired is the assembled application.
type Wired struct {
	App    *handlers.App
	Sender queue.Sender
	Tables *aztables.ServiceClient
	close  []func(context.Context) error
}

// Close releases connections (Service Bus links).
func (w *Wired) Close(ctx context.Context) error {
	var errs []error
	for _, c := range w.close {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// New builds the application for cfg.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Wired, error) {
	w := &Wired{}
	var cred azcore.TokenCredential
	if cfg.Environment == config.Azure {
		var err error
		cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(cfg.ManagedIdentityID),
		})
		if err != nil {
			return nil, fmt.Errorf("managed identity: %w", err)
		}
	}

	switch cfg.Environment {
	case config.Local:
		tables, err := aztables.NewServiceClientFromConnectionString(cfg.TablesConnectionString, nil)
		if err != nil {
			return nil, fmt.Errorf("table client: %w", err)
		}
		w.Tables = tables
		if cfg.DevhostQueueURL == "" {
			return nil, errors.New("local mode needs devhost's queue endpoint (run under devhost)")
		}
		s, err := queue.NewDevhostSender(cfg.DevhostQueueURL, cfg.DevhostQueueToken)
		if err != nil {
			return nil, err
		}
		w.Sender = s
	case config.Azure:
		tables, err := aztables.NewServiceClient(cfg.TablesAccountURL, cred, nil)
		if err != nil {
			return nil, fmt.Errorf("table client: %w", err)
		}
		w.Tables = tables
		s, err := queue.NewServiceBusSender(cfg.ServiceBusNamespace, cred)
		if err != nil {
			return nil, err
		}
		w.Sender = s
		w.close = append(w.close, s.Close)
	}

	w.App = &handlers.App{
		Version: cfg.Version, Build: Build, Region: cfg.Region, MaxBodyBytes: cfg.MaxBodyBytes,
		Checks: []handlers.Check{
			{Name: "tables", Probe: func(ctx context.Context) error {
				// One page of the table list proves reachability and authorisation.
				pager := w.Tables.NewListTablesPager(&aztables.ListTablesOptions{Top: ptr[int32](1)})
				_, err := pager.NextPage(ctx)
				return err
			}},
		},
	}
	return w, nil
}

func ptr[T any](v T) *T { return &v }
