package app

import (
	"github.com/connecthub/connecthub/handlers"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/clock"
)

// wireCRM builds the mailbox ↔ CRM sync's connection functions on the Salesforce client. The client
// signs in at the real login and sandbox hosts; its token cache lives as long as the handler.
func (w *Wired) wireCRM() error {
	svc, err := crm.New(crm.Options{Store: w.Store, Data: crm.OpenData(w.Store.DB()), Secrets: w.Secrets, Sealer: w.Keys,
		Salesforce: salesforce.New(salesforce.Options{Now: clock.Now}), Now: clock.Now, Log: w.Log})
	if err != nil {
		return err
	}
	w.App.CRM = handlers.CRMServices{Admin: svc}
	return nil
}
