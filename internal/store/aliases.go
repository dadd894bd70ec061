package store

import "github.com/connecthub/connecthub/internal/platform/tables"

// The engine's types and errors under their old names, while the entities move out to their modules.
type (
	ListOptions = tables.ListOptions
	Page[E any] = tables.Page[E]
	ETag        = tables.ETag
	KeyError    = tables.KeyError
)

var (
	ErrNotFound   = tables.ErrNotFound
	ErrExists     = tables.ErrExists
	ErrConflict   = tables.ErrConflict
	ErrInvalidKey = tables.ErrInvalidKey
	ValidateKey   = tables.ValidateKey
)
