package app

import (
	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/bookings"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/portal"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/serviceuser"
	"github.com/connecthub/connecthub/internal/privacy"
	"github.com/connecthub/connecthub/internal/retention"
	"github.com/connecthub/connecthub/internal/tenants"
)

// catalogue is every module's tables, each declared once by the module that owns it. It drives table
// creation on make run, a tenant's deletion (retention), the data inventory and Bicep tests, and the
// personal-data coverage test.
var catalogue = tables.MustCatalogue(registry.Tables, jobs.Tables, audit.Tables, retention.Tables, tenants.Tables, presence.Tables, serviceuser.Tables,
	bookings.Tables, access.Tables, privacy.Tables, queue.Tables, crm.Tables, portal.Tables)

// Catalogue returns every module's tables, in deletion order.
func Catalogue() tables.Catalogue { return append(tables.Catalogue(nil), catalogue...) }
