// Package registry is the kernel's shared records, which every capability reads: the tenant registry
// (one row per customer tenant: lifecycle state, home region, connector settings), the tenant's
// licensed users (profile sealed with the tenant key, PBX mapping), and the Graph change-notification
// subscriptions the webhook checks every notification against. Capabilities keep their own data in
// their own tables (tables.Spec in each module); the rules about these records live in the modules
// (tenants: lifecycle and licensing; presence: subscriptions and the PBX mapping).
package registry
