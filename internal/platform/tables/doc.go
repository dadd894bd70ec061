// Package tables is the table engine: typed, tenant-partitioned access to Azure Table Storage (aztables)
// for the tables each module declares.
//
// Every per-tenant table uses PartitionKey = tenant id, and every method that touches one takes a
// validated core.TenantID and scopes its request by it: a point operation addresses (tenant, rowKey), a
// query always filters on PartitionKey eq tenant. The only reads across partitions are OperatorQuery
// (jobs that span every tenant).
//
// Entities are structs with a declarative codec: property name = Go field name, and a `table` struct tag
// says which fields live in the key, which identify or describe a person, and which are sealed with the
// tenant's data key (see Field). Zero values are not stored; a missing property reads as the zero value;
// a property the struct does not know is ignored on read and, because every write replaces the whole
// entity, dropped on the next write — a row only ever holds the fields listed in docs/data-inventory.md.
// A module declares each table once, with SpecOf; the Catalogue of every module's tables drives table
// creation, a tenant's deletion, the inventory and Bicep tests and the personal-data coverage test.
//
// Read-modify-write goes through Update/UpdateOrCreate, which use ETags (If-Match) and retry on 412.
// Bulk writes and deletes use entity-group transactions of at most 100 operations in one partition,
// chunked here because neither the SDK nor Azurite enforces the limits.
package tables
