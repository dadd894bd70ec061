// Package store keeps ConnectHub's state in Azure Table Storage (aztables), partitioned by tenant.
//
// Every per-tenant table uses PartitionKey = tenant id, and every method that touches one takes a
// validated core.TenantID and scopes its request by it: a point operation addresses (tenant, rowKey), a query
// always filters on PartitionKey eq tenant. The only reads across partitions are the operator paths named
// as such (OperatorList on the tenant registry and on the deletion receipts).
//
// Entities are typed structs with explicit (de)serialisation (encode/decode per type, property name =
// Go field name). Zero values are not stored; a missing property reads as the zero value; a property the
// struct does not know is ignored on read and, because every write replaces the whole entity, dropped on
// the next write — a row only ever holds the fields listed in docs/data-inventory.md. Personal fields are
// sealed with the tenant's data key through a Sealer before they leave the process.
//
// Read-modify-write goes through Update/UpdateOrCreate, which use ETags (If-Match) and retry on 412.
// Bulk writes and deletes use entity-group transactions of at most 100 operations in one partition,
// chunked here because neither the SDK nor Azurite enforces the limits.
package store
