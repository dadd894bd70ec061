package tables

import (
	"context"
	"fmt"

	"github.com/connecthub/connecthub/internal/core"
)

// Untyped is a table seen through its rows' Entity pointers (each a *E), for code that walks the
// catalogue without knowing the row types: the tests that run the same checks on every table, so a
// module's new table is covered without being named in them.
type Untyped interface {
	Name() string
	New() Entity // a zero row, as *E
	Get(ctx context.Context, tenant core.TenantID, rk string) (Entity, error)
	GetWithETag(ctx context.Context, tenant core.TenantID, rk string) (Entity, ETag, error)
	Insert(ctx context.Context, tenant core.TenantID, e Entity) (ETag, error)
	Upsert(ctx context.Context, tenant core.TenantID, e Entity) (ETag, error)
	Replace(ctx context.Context, tenant core.TenantID, e Entity, ifMatch ETag) (ETag, error)
	Update(ctx context.Context, tenant core.TenantID, rk string, fn func(Entity) error) (Entity, error)
	Delete(ctx context.Context, tenant core.TenantID, rk string) error
	List(ctx context.Context, tenant core.TenantID, opts *ListOptions) (Page[Entity], error)
	UpsertBatch(ctx context.Context, tenant core.TenantID, es []Entity) error
	DeleteBatch(ctx context.Context, tenant core.TenantID, rks []string) (int, error)
	DeletePartition(ctx context.Context, tenant core.TenantID) (int, error)
	Record(e Entity) (Record, error) // the row as an export shows it
}

// Open returns the spec's table on db, untyped.
func (s Spec) Open(db *DB) Untyped { return s.open(db) }

type untyped[E any, P entityPtr[E]] struct{ t *Table[E, P] }

func (u untyped[E, P]) Name() string { return u.t.name }
func (u untyped[E, P]) New() Entity  { return P(new(E)) }

func (u untyped[E, P]) Get(ctx context.Context, tenant core.TenantID, rk string) (Entity, error) {
	e, err := u.t.Get(ctx, tenant, rk)
	return P(&e), err
}

func (u untyped[E, P]) GetWithETag(ctx context.Context, tenant core.TenantID, rk string) (Entity, ETag, error) {
	e, etag, err := u.t.GetWithETag(ctx, tenant, rk)
	return P(&e), etag, err
}

func (u untyped[E, P]) Insert(ctx context.Context, tenant core.TenantID, e Entity) (ETag, error) {
	return u.t.Insert(ctx, tenant, *e.(P))
}

func (u untyped[E, P]) Upsert(ctx context.Context, tenant core.TenantID, e Entity) (ETag, error) {
	return u.t.Upsert(ctx, tenant, *e.(P))
}

func (u untyped[E, P]) Replace(ctx context.Context, tenant core.TenantID, e Entity, ifMatch ETag) (ETag, error) {
	return u.t.Replace(ctx, tenant, *e.(P), ifMatch)
}

func (u untyped[E, P]) Update(ctx context.Context, tenant core.TenantID, rk string, fn func(Entity) error) (Entity, error) {
	e, err := u.t.Update(ctx, tenant, rk, func(e *E) error { return fn(P(e)) })
	return P(&e), err
}

func (u untyped[E, P]) List(ctx context.Context, tenant core.TenantID, opts *ListOptions) (Page[Entity], error) {
	p, err := u.t.List(ctx, tenant, opts)
	out := Page[Entity]{Next: p.Next, Items: make([]Entity, len(p.Items))}
	for i := range p.Items {
		out.Items[i] = P(&p.Items[i])
	}
	return out, err
}

func (u untyped[E, P]) UpsertBatch(ctx context.Context, tenant core.TenantID, es []Entity) error {
	typed := make([]E, len(es))
	for i, e := range es {
		typed[i] = *e.(P)
	}
	return u.t.UpsertBatch(ctx, tenant, typed)
}

func (u untyped[E, P]) Delete(ctx context.Context, tenant core.TenantID, rk string) error {
	return u.t.Delete(ctx, tenant, rk)
}

func (u untyped[E, P]) DeleteBatch(ctx context.Context, tenant core.TenantID, rks []string) (int, error) {
	return u.t.DeleteBatch(ctx, tenant, rks)
}

func (u untyped[E, P]) DeletePartition(ctx context.Context, tenant core.TenantID) (int, error) {
	return u.t.DeletePartition(ctx, tenant)
}

func (u untyped[E, P]) Record(e Entity) (Record, error) {
	p, ok := e.(P)
	if !ok {
		return Record{}, fmt.Errorf("record %s: a row of another table", u.t.name)
	}
	return u.t.Record(*p)
}
