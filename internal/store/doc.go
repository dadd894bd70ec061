// Package store declares the tables that have not moved to their modules yet, with their typed
// wrappers, on the table engine (internal/platform/tables). Each entity's `table` tags are its codec;
// catalogue.go lists the tables with their owning module and retention class.
package store
