package privacy

import "github.com/connecthub/connecthub/internal/platform/tables"

// Category describes one table's personal data as a person's report shows it: what it is, why it is
// kept, where it comes from and who receives it (docs/data-inventory.md says the same per field).
type Category struct {
	Name       string   `json:"category"`
	Purpose    string   `json:"purpose"`
	Source     string   `json:"source"`
	Recipients []string `json:"recipients"`
}

// Categories describes every table that can hold personal data. NewSubjects refuses to start when a
// table with personal fields has no entry, so a person's report never shows an undescribed table.
var Categories = map[string]Category{
	"users": {"Directory profile of a licensed user", "match the user to their PBX extension and show them to their admins",
		"Microsoft 365 (Microsoft Graph), and the tenant admin's extension override", []string{"the tenant's PBX (extension lookup)"}},
	"presence": {"Current Teams presence", "mirror the user's Teams presence onto their PBX extension and the PBX's call and do-not-disturb state into Teams, without echoing either back",
		"Microsoft 365 (Graph change notifications) and the tenant's PBX (presence events)", []string{"the tenant's PBX", "Microsoft 365 (Teams presence)"}},
	"pbxextensions": {"PBX extension of a user", "know whose Teams presence a PBX presence event is about",
		"the tenant's PBX (extension list) and the tenant admin's extension override", []string{}},
	"ledger": {"Processed notification markers", "apply each presence change once and in order",
		"Microsoft 365 (Graph change notifications)", []string{}},
	"syncerrors": {"Failed synchronisations", "show the user's admins what could not be synchronised (kept at most 7 days)",
		"ConnectHub, from the PBX's and Graph's answers", []string{}},
	"serviceusers": {"Service account connection", "hold the presence subscriptions Graph allows only with a delegated account",
		"Microsoft 365 (the sign-in of the service account)", []string{}},
	"subscriptions": {"Graph subscriptions", "receive presence changes of licensed users from Microsoft Graph",
		"ConnectHub (created at Microsoft Graph)", []string{"Microsoft Graph"}},
	"tenants": {"Tenant settings naming a person", "know which account holds the subscriptions and who configured the PBX",
		"the tenant admin", []string{}},
	"licenses": {"License assignment", "know which users the tenant licensed, and who assigned them",
		"the tenant admin", []string{}},
	"authorisations": {"Roles granted", "decide who may administer the tenant (zero privileges by default)",
		"the tenant admin; ConnectHub's security officers for operator access", []string{}},
	"roles": {"Custom roles defined", "name the admin who last defined a role of the tenant",
		"the tenant admin", []string{}},
	"accessrequests": {"Operator access requests", "decide and record ConnectHub staff access to the tenant",
		"ConnectHub operators and security officers", []string{}},
	"audit": {"Audit trail", "account for every administrative action (who, what, when, outcome)",
		"ConnectHub, from each administrative call", []string{}},
	"incidents": {"Security incidents", "notify the tenant of a personal-data breach within 72 hours",
		"ConnectHub's security officers", []string{"the tenant's admins", "the supervisory authority"}},
	"parkedmessages": {"Parked messages", "keep work that failed permanently for diagnosis (14 days)",
		"Microsoft 365 (Graph change notifications)", []string{}},
	"bookings": {"Room bookings", "answer room availability (times only, no subject or attendees)",
		"Microsoft 365 (room calendars)", []string{}},
	"portalsessions": {"Service Manager sign-in sessions", "keep the person signed in to the portal until their sign-in ends (at most 8 hours)",
		"the person's sign-in with their work account", []string{}},
	"crmconnections": {"CRM connection settings", "sign in to the tenant's Salesforce org as its integration user, and name the admin who set the connection",
		"the tenant admin", []string{"the tenant's Salesforce org (the integration username, at sign-in)"}},
	"crmledger": {"CRM sync ledger", "know which mailbox contact is which Salesforce contact (ids, change keys, dates and a salted digest; no contents), so nothing is created twice and a deletion is never undone",
		"Microsoft 365 (the user's mailbox) and the tenant's Salesforce org", []string{"the tenant's Salesforce org (the contacts themselves pass through, never stored)"}},
	"crmsyncerrors": {"CRM sync errors", "name the records that failed to sync to the user and the admin until they sync",
		"Microsoft 365 (the user's mailbox)", []string{}},
	"crmsyncstate": {"CRM sync state", "resume each user's sync where it stopped (Graph's delta link) and show when it last ran",
		"Microsoft 365 (Graph)", []string{}},
	"crmusers": {"CRM user mapping", "sync a user's mailbox with the Salesforce user it maps to (ids and directions only), and name the admin who set it",
		"the tenant admin, and the tenant's Salesforce org (the user found by the mailbox's address)", []string{"the tenant's Salesforce org (the mailbox's address, once, to find the user)"}},
	TableRequests: {"Privacy requests", "track each data subject request until it is answered (one month)",
		"the tenant admin or privacy officer", []string{}},
}

// retentionText says in words when a retention class deletes a row.
var retentionText = map[tables.RetentionClass]string{
	tables.RetainTenantData:  "while the tenant's contract runs; deleted 24 hours after cancellation or 7 days after suspension, and at once when the user's license is removed",
	tables.RetainLicenseData: "until 30 days after the contract ends",
	tables.RetainBillingData: "until 90 days after the contract ends",
	tables.RetainRegistry:    "until the tenant's data is deleted",
	tables.RetainReceipts:    "kept as the proof of deletion; holds no personal data",
}
