package app

import (
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/tenants"
)

// personalData lists every module's answer for the rows it holds about one person, named as the
// catalogue names the module: the sources of a person's export and erasure. A module that adds a table
// with personal fields adds its answer here, or the handler does not start (privacy.NewSubjects).
func personalData(reg *registry.Registry, sec secrets.Store) []privacy.Source {
	db := reg.DB()
	return []privacy.Source{
		{Module: "platform/registry", Data: reg},
		{Module: "presence", Data: presence.OpenData(db)},
		{Module: "presence", Data: serviceuser.OpenData(db, sec)},
		{Module: "tenants", Data: tenants.OpenData(db)},
		{Module: "platform/audit", Data: audit.OpenLog(db)},
		{Module: "bookings", Data: bookings.OpenData(db)},
		{Module: "access", Data: access.OpenData(db)},
		{Module: "privacy", Data: privacy.OpenData(db)},
		{Module: "platform/queue", Data: queue.OpenParkingLot(db)},
		{Module: "crm", Data: crm.OpenData(db)},
		{Module: "portal", Data: portal.OpenData(db)},
	}
}
