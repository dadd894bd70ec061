package tables

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/sync/errgroup"

	"github.com/connecthub/connecthub/internal/core"
)

// ETag is the opaque version of a row, for conditional writes.
type ETag string

// Entity is what every stored type implements: its key fields are derived from and restored to the
// RowKey; every other exported field is a property, encoded as its `table` tag declares (see Field).
type Entity interface {
	RowKey() (string, error)
	SetRowKey(rk string) error
}

// entityPtr lets Table[E] hold values while calling the pointer methods.
type entityPtr[E any] interface {
	*E
	Entity
}

// Partitioned is implemented by entities that carry their PartitionKey as a field (a tenant's registry
// row, a deletion receipt).
type Partitioned interface{ SetPartition(core.TenantID) }

// Table is one per-tenant table of entities E. Every method takes the tenant and scopes by it.
type Table[E any, P entityPtr[E]] struct {
	*raw
	schema *schema
}

// New returns the typed access to table name of db. An entity type whose tags or field types the codec
// cannot store panics here, at start.
func New[E any, P entityPtr[E]](db *DB, name string) *Table[E, P] {
	return &Table[E, P]{raw: db.table(name), schema: mustSchema(reflect.TypeFor[E]())}
}

// FieldsOf lists the fields of entity type E as its tags declare them (for a catalogue Spec).
func FieldsOf[E any, P entityPtr[E]]() []Field {
	return append([]Field(nil), mustSchema(reflect.TypeFor[E]()).fields...)
}

// raw is one table without an entity type: the key-only work (partition deletes and counts, batches of
// deletes) and the change watchers, shared by every typed view of the table so that a delete through
// any path invalidates every cache.
type raw struct {
	db     *DB
	name   string // logical name, also bound into sealed data
	client *aztables.Client

	mu       sync.Mutex
	onChange []func(core.TenantID, string)
}

// Name is the logical table name (without test prefix).
func (t *raw) Name() string { return t.name }

// Watch registers fn to run after every write or delete of a row (cache invalidation).
func (t *raw) Watch(fn func(core.TenantID, string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onChange = append(t.onChange, fn)
}

func (t *raw) changed(tenant core.TenantID, rks ...string) {
	t.mu.Lock()
	fns := slices.Clone(t.onChange)
	t.mu.Unlock()
	for _, fn := range fns {
		for _, rk := range rks {
			fn(tenant, rk)
		}
	}
}

func (t *raw) sealFn(tenant core.TenantID, rk string) func(context.Context, []byte) ([]byte, error) {
	if t.db.sealer == nil {
		return nil
	}
	return func(ctx context.Context, pt []byte) ([]byte, error) {
		return t.db.sealer.Seal(ctx, tenant, t.name, rk, pt)
	}
}

func (t *raw) openFn(tenant core.TenantID, rk string) func(context.Context, []byte) ([]byte, error) {
	if t.db.sealer == nil {
		return nil
	}
	return func(ctx context.Context, ct []byte) ([]byte, error) {
		return t.db.sealer.Open(ctx, tenant, t.name, rk, ct)
	}
}

// marshal turns e into the JSON entity aztables sends, returning its row key.
func (t *Table[E, P]) marshal(ctx context.Context, tenant core.TenantID, e *E) (string, []byte, error) {
	if err := CheckTenant(tenant); err != nil {
		return "", nil, err
	}
	rk, err := P(e).RowKey()
	if err != nil {
		return "", nil, err
	}
	enc := newEncoder(ctx, t.sealFn(tenant, rk))
	t.schema.encode(enc, reflect.ValueOf(e).Elem())
	if enc.err != nil {
		return "", nil, fmt.Errorf("%s: %w", t.name, enc.err)
	}
	enc.props["PartitionKey"] = string(tenant)
	enc.props["RowKey"] = rk
	b, err := json.Marshal(enc.props)
	if err != nil {
		return "", nil, fmt.Errorf("marshal %s: %w", t.name, err)
	}
	return rk, b, nil
}

// unmarshal decodes one entity and refuses rows from any partition but the tenant's: the filter already
// guarantees it, this makes a leak impossible even if a query were wrong.
func (t *Table[E, P]) unmarshal(ctx context.Context, tenant core.TenantID, raw []byte) (E, error) {
	var e E
	pk, rk, props, err := parseEntity(raw)
	if err != nil {
		return e, err
	}
	if pk != string(tenant) {
		return e, fmt.Errorf("%s: row from another partition refused", t.name)
	}
	if err := P(&e).SetRowKey(rk); err != nil {
		return e, fmt.Errorf("%s: %w", t.name, err)
	}
	if p, ok := any(&e).(Partitioned); ok {
		p.SetPartition(tenant)
	}
	d := &decoder{ctx: ctx, open: t.openFn(tenant, rk), props: props}
	t.schema.decode(d, reflect.ValueOf(&e).Elem())
	if d.err != nil {
		return e, fmt.Errorf("%s: %w", t.name, d.err)
	}
	return e, nil
}

// CheckKey checks a tenant id and a row key before a point operation.
func CheckKey(tenant core.TenantID, rk string) error {
	if err := CheckTenant(tenant); err != nil {
		return err
	}
	return ValidateKey("row key", rk)
}

// Get reads the row rk of tenant.
func (t *Table[E, P]) Get(ctx context.Context, tenant core.TenantID, rk string) (E, error) {
	e, _, err := t.GetWithETag(ctx, tenant, rk)
	return e, err
}

// GetWithETag reads the row and its ETag, for a later Replace.
func (t *Table[E, P]) GetWithETag(ctx context.Context, tenant core.TenantID, rk string) (E, ETag, error) {
	var zero E
	if err := CheckKey(tenant, rk); err != nil {
		return zero, "", err
	}
	resp, err := t.client.GetEntity(ctx, string(tenant), rk, nil)
	if err != nil {
		return zero, "", fmt.Errorf("get %s: %w", t.name, classify(err))
	}
	e, err := t.unmarshal(ctx, tenant, resp.Value)
	if err != nil {
		return zero, "", err
	}
	return e, ETag(resp.ETag), nil
}

// Insert adds e; ErrExists if its row is taken.
func (t *Table[E, P]) Insert(ctx context.Context, tenant core.TenantID, e E) (ETag, error) {
	rk, body, err := t.marshal(ctx, tenant, &e)
	if err != nil {
		return "", err
	}
	resp, err := t.client.AddEntity(ctx, body, &aztables.AddEntityOptions{Format: to.Ptr(aztables.MetadataFormatNone)})
	if err != nil {
		return "", fmt.Errorf("insert %s: %w", t.name, classify(err))
	}
	t.changed(tenant, rk)
	return ETag(resp.ETag), nil
}

// Upsert writes e whatever is there (a blind write, for rows that hold only the latest value such as
// presence). Use Update for read-modify-write.
func (t *Table[E, P]) Upsert(ctx context.Context, tenant core.TenantID, e E) (ETag, error) {
	rk, body, err := t.marshal(ctx, tenant, &e)
	if err != nil {
		return "", err
	}
	resp, err := t.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return "", fmt.Errorf("upsert %s: %w", t.name, classify(err))
	}
	t.changed(tenant, rk)
	return ETag(resp.ETag), nil
}

// Replace overwrites the row only if it still has ifMatch: ErrConflict if it changed, ErrNotFound if gone.
func (t *Table[E, P]) Replace(ctx context.Context, tenant core.TenantID, e E, ifMatch ETag) (ETag, error) {
	if ifMatch == "" {
		return "", errors.New("replace: empty ETag (read the row first)")
	}
	rk, body, err := t.marshal(ctx, tenant, &e)
	if err != nil {
		return "", err
	}
	m := azcore.ETag(ifMatch)
	resp, err := t.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &m, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", t.name, classify(err))
	}
	t.changed(tenant, rk)
	return ETag(resp.ETag), nil
}

// maxAttempts bounds optimistic-concurrency retries; beyond it the caller gets ErrConflict.
const maxAttempts = 12

// Update reads the row, applies fn and writes it back only if nobody wrote in between, retrying on
// conflict. fn may run several times and must not change the key fields; returning an error aborts.
func (t *Table[E, P]) Update(ctx context.Context, tenant core.TenantID, rk string, fn func(*E) error) (E, error) {
	return t.update(ctx, tenant, rk, false, func(e *E, _ bool) error { return fn(e) })
}

// UpdateOrCreate is Update that also handles an absent row: fn gets a zero entity with its key fields
// set from rk and exists=false, and the result is inserted (racing inserts retry as updates).
func (t *Table[E, P]) UpdateOrCreate(ctx context.Context, tenant core.TenantID, rk string, fn func(e *E, exists bool) error) (E, error) {
	return t.update(ctx, tenant, rk, true, fn)
}

func (t *Table[E, P]) update(ctx context.Context, tenant core.TenantID, rk string, create bool, fn func(*E, bool) error) (E, error) {
	var zero E
	for attempt := 1; ; attempt++ {
		cur, etag, err := t.GetWithETag(ctx, tenant, rk)
		exists := err == nil
		switch {
		case errors.Is(err, ErrNotFound) && create:
			cur = zero
			if err := P(&cur).SetRowKey(rk); err != nil {
				return zero, err
			}
		case err != nil:
			return zero, err
		}
		if err := fn(&cur, exists); err != nil {
			return zero, err
		}
		if got, err := P(&cur).RowKey(); err != nil || got != rk {
			return zero, fmt.Errorf("update %s: the update function changed the row key", t.name)
		}
		if exists {
			_, err = t.Replace(ctx, tenant, cur, etag)
		} else {
			_, err = t.Insert(ctx, tenant, cur)
		}
		// Lost the race: someone else wrote (412), created (409) or deleted (404) the row in between.
		retry := errors.Is(err, ErrConflict) || errors.Is(err, ErrExists) || (exists && create && errors.Is(err, ErrNotFound))
		if !retry {
			if err != nil {
				return zero, err
			}
			return cur, nil
		}
		if attempt == maxAttempts {
			return zero, fmt.Errorf("update %s after %d attempts: %w", t.name, attempt, err)
		}
		backoff := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// Delete removes the row; ErrNotFound if there was none.
func (t *raw) Delete(ctx context.Context, tenant core.TenantID, rk string) error {
	if err := CheckKey(tenant, rk); err != nil {
		return err
	}
	_, err := t.client.DeleteEntity(ctx, string(tenant), rk, nil)
	t.changed(tenant, rk) // also on error: a cached copy must not outlive an uncertain delete
	if err != nil {
		return fmt.Errorf("delete %s: %w", t.name, classify(err))
	}
	return nil
}

// ListOptions pages and narrows a list.
type ListOptions struct {
	PageSize int      // 1..1000; 0 means 1000 (the service maximum)
	Token    string   // Page.Next of the previous page; "" starts at the beginning
	Select   []string // field names to read ($select); key fields are always filled
}

// Page is one page of a list and the token for the next ("" when done).
type Page[E any] struct {
	Items []E
	Next  string
}

type pageToken struct {
	PK string `json:"p"`
	RK string `json:"r"`
}

func encodeToken(pk, rk *string) string {
	if (pk == nil || *pk == "") && (rk == nil || *rk == "") {
		return ""
	}
	var tok pageToken
	if pk != nil {
		tok.PK = *pk
	}
	if rk != nil {
		tok.RK = *rk
	}
	b, _ := json.Marshal(tok)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadPageToken: a page token that is not one this package made.
var ErrBadPageToken = errors.New("invalid page token")

// decodeToken reads a continuation token. A forged token cannot widen a query: the filter still pins the
// partition, the token only says where in it to resume.
func decodeToken(s string) (pk, rk *string, err error) {
	if s == "" {
		return nil, nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var tok pageToken
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err != nil {
		return nil, nil, ErrBadPageToken
	}
	return &tok.PK, &tok.RK, nil
}

func (t *Table[E, P]) selectClause(fields []string) (*string, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	cols := []string{"PartitionKey", "RowKey"}
	for _, f := range fields {
		if !t.schema.names[f] {
			return nil, fmt.Errorf("select: %s has no field %q", t.name, f)
		}
		cols = append(cols, f)
	}
	return to.Ptr(strings.Join(cols, ",")), nil
}

// List returns one page of the tenant's rows in RowKey order.
func (t *Table[E, P]) List(ctx context.Context, tenant core.TenantID, opts *ListOptions) (Page[E], error) {
	return t.ListPrefix(ctx, tenant, "", opts)
}

// ListPrefix returns one page of the tenant's rows whose RowKey starts with prefix.
func (t *Table[E, P]) ListPrefix(ctx context.Context, tenant core.TenantID, prefix string, opts *ListOptions) (Page[E], error) {
	if err := CheckTenant(tenant); err != nil {
		return Page[E]{}, err
	}
	if prefix == "" {
		return t.Query(ctx, tenant, Filter("PartitionKey eq ?", tenant), opts)
	}
	if err := ValidateKey("row key prefix", prefix); err != nil {
		return Page[E]{}, err
	}
	f := Filter("PartitionKey eq ? and RowKey ge ? and RowKey lt ?", tenant, prefix, PrefixUpperBound(prefix))
	return t.Query(ctx, tenant, f, opts)
}

// Query runs one page of filter, which must pin PartitionKey to tenant (build it with Filter).
func (t *Table[E, P]) Query(ctx context.Context, tenant core.TenantID, filter string, opts *ListOptions) (Page[E], error) {
	raw, next, err := t.listPage(ctx, filter, opts)
	if err != nil {
		return Page[E]{}, err
	}
	page := Page[E]{Items: make([]E, 0, len(raw)), Next: next}
	for _, b := range raw {
		e, err := t.unmarshal(ctx, tenant, b)
		if err != nil {
			return Page[E]{}, err
		}
		page.Items = append(page.Items, e)
	}
	return page, nil
}

// listPage applies opts (page size capped at the service's 1,000, $select, continuation token) and
// fetches one page of raw entities.
func (t *Table[E, P]) listPage(ctx context.Context, filter string, opts *ListOptions) ([][]byte, string, error) {
	if opts == nil {
		opts = &ListOptions{}
	}
	size := opts.PageSize
	if size <= 0 || size > 1000 {
		size = 1000
	}
	sel, err := t.selectClause(opts.Select)
	if err != nil {
		return nil, "", err
	}
	npk, nrk, err := decodeToken(opts.Token)
	if err != nil {
		return nil, "", err
	}
	return t.rawPage(ctx, filter, sel, int32(size), npk, nrk)
}

// rawPage fetches one page of entities as JSON; filter "" means the whole table (operator paths only).
func (t *raw) rawPage(ctx context.Context, filter string, sel *string, top int32, npk, nrk *string) ([][]byte, string, error) {
	o := &aztables.ListEntitiesOptions{Select: sel, Top: &top, NextPartitionKey: npk, NextRowKey: nrk}
	if filter != "" {
		o.Filter = &filter
	}
	resp, err := t.client.NewListEntitiesPager(o).NextPage(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", t.name, classify(err))
	}
	return resp.Entities, encodeToken(resp.NextPartitionKey, resp.NextRowKey), nil
}

// All iterates over every row of the tenant, page by page; it stops at the first error.
func (t *Table[E, P]) All(ctx context.Context, tenant core.TenantID, opts *ListOptions) iter.Seq2[E, error] {
	return Pages(func(o *ListOptions) (Page[E], error) { return t.List(ctx, tenant, o) }, opts)
}

// keys lists the row keys matching filter (pinned to tenant), reading no other column.
func (t *raw) keys(ctx context.Context, filter string, token string) ([]string, string, error) {
	return t.KeysTop(ctx, filter, token, 1000)
}

func (t *raw) KeysTop(ctx context.Context, filter string, token string, top int32) ([]string, string, error) {
	npk, nrk, err := decodeToken(token)
	if err != nil {
		return nil, "", err
	}
	raw, next, err := t.rawPage(ctx, filter, to.Ptr("RowKey"), top, npk, nrk)
	if err != nil {
		return nil, "", err
	}
	out := make([]string, 0, len(raw))
	for _, b := range raw {
		var k struct{ RowKey string }
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, "", fmt.Errorf("list %s keys: %w", t.name, err)
		}
		out = append(out, k.RowKey)
	}
	return out, next, nil
}

// DeletePartition deletes every row of the tenant in this table, in batches, and reports how many.
func (t *raw) DeletePartition(ctx context.Context, tenant core.TenantID) (int, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	return t.DeleteWhere(ctx, tenant, Filter("PartitionKey eq ?", tenant))
}

// DeletePartitionUpTo deletes at most max (1..1000) of the tenant's rows in this table and reports how
// many, and whether rows may remain: jobs with a time budget call it in a loop and checkpoint between calls.
func (t *raw) DeletePartitionUpTo(ctx context.Context, tenant core.TenantID, max int) (int, bool, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, false, err
	}
	if max <= 0 || max > 1000 {
		max = 1000
	}
	filter := Filter("PartitionKey eq ?", tenant)
	token := ""
	for {
		rks, next, err := t.KeysTop(ctx, filter, token, int32(max))
		if err != nil {
			return 0, true, err
		}
		// The service may answer a page with no rows and a continuation: follow it.
		if len(rks) == 0 && next != "" {
			token = next
			continue
		}
		if len(rks) == 0 {
			return 0, false, nil
		}
		n, err := t.DeleteBatch(ctx, tenant, rks)
		return n, next != "" || err != nil, err
	}
}

// CountPartition counts the tenant's rows in this table, reading only row keys.
func (t *raw) CountPartition(ctx context.Context, tenant core.TenantID) (int, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	filter := Filter("PartitionKey eq ?", tenant)
	total, token := 0, ""
	for {
		rks, next, err := t.keys(ctx, filter, token)
		if err != nil {
			return total, err
		}
		total += len(rks)
		if next == "" {
			return total, nil
		}
		token = next
	}
}

// DeletePrefix deletes the tenant's rows whose RowKey starts with prefix.
func (t *raw) DeletePrefix(ctx context.Context, tenant core.TenantID, prefix string) (int, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	if err := ValidateKey("row key prefix", prefix); err != nil {
		return 0, err
	}
	return t.DeleteWhere(ctx, tenant, Filter("PartitionKey eq ? and RowKey ge ? and RowKey lt ?", tenant, prefix, PrefixUpperBound(prefix)))
}

// DeleteWhere lists the keys matching filter (which must pin PartitionKey to tenant) a page (up to 1,000) at a time, reading only RowKey, and deletes each
// page in batches. Continuation tokens stay valid while rows behind them go.
func (t *raw) DeleteWhere(ctx context.Context, tenant core.TenantID, filter string) (int, error) {
	total, token := 0, ""
	for {
		rks, next, err := t.keys(ctx, filter, token)
		if err != nil {
			return total, err
		}
		if len(rks) > 0 {
			n, err := t.DeleteBatch(ctx, tenant, rks)
			total += n
			if err != nil {
				return total, err
			}
		}
		if next == "" {
			return total, nil
		}
		token = next
	}
}

// Entity-group transaction limits (https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions).
const (
	maxBatchOps   = 100
	maxBatchBytes = 4 << 20
	batchSlack    = 1 << 10 // per-operation multipart headers and URL
	batchParallel = 4       // batches in flight at once for bulk work
)

// InsertBatch inserts es in entity-group transactions of up to 100. Each transaction is all-or-nothing;
// an existing row fails its whole chunk (ErrExists) while other chunks may already have been written.
func (t *Table[E, P]) InsertBatch(ctx context.Context, tenant core.TenantID, es []E) error {
	return t.writeBatch(ctx, tenant, es, aztables.TransactionTypeAdd)
}

// UpsertBatch writes es (replacing whatever is there) in transactions of up to 100.
func (t *Table[E, P]) UpsertBatch(ctx context.Context, tenant core.TenantID, es []E) error {
	return t.writeBatch(ctx, tenant, es, aztables.TransactionTypeInsertReplace)
}

func (t *Table[E, P]) writeBatch(ctx context.Context, tenant core.TenantID, es []E, kind aztables.TransactionType) error {
	actions := make([]aztables.TransactionAction, 0, len(es))
	rks := make([]string, 0, len(es))
	for i := range es {
		rk, body, err := t.marshal(ctx, tenant, &es[i])
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: kind, Entity: body})
		rks = append(rks, rk)
	}
	_, err := t.submit(ctx, tenant, rks, actions)
	t.changed(tenant, rks...)
	return err
}

// DeleteBatch deletes the given rows in transactions of up to 100 and returns how many were deleted.
// Rows already gone are skipped: a chunk that fails on one is retried row by row.
func (t *raw) DeleteBatch(ctx context.Context, tenant core.TenantID, rks []string) (int, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	actions := make([]aztables.TransactionAction, 0, len(rks))
	for _, rk := range rks {
		if err := ValidateKey("row key", rk); err != nil {
			return 0, err
		}
		body, _ := json.Marshal(map[string]string{"PartitionKey": string(tenant), "RowKey": rk})
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body})
	}
	defer t.changed(tenant, rks...)
	return t.submit(ctx, tenant, rks, actions)
}

// submit checks the batch rules the SDK and Azurite leave to us (one partition — guaranteed by the
// callers building every action for tenant —, one operation per row, ≤ 100 operations, ≤ 4 MiB) and
// sends the chunks, a few at a time. It returns the number of operations applied.
func (t *raw) submit(ctx context.Context, tenant core.TenantID, rks []string, actions []aztables.TransactionAction) (int, error) {
	seen := make(map[string]bool, len(rks))
	for _, rk := range rks {
		if seen[rk] {
			return 0, fmt.Errorf("batch %s: row key appears twice", t.name)
		}
		seen[rk] = true
	}
	sizes := make([]int, len(actions))
	for i, a := range actions {
		sizes[i] = len(a.Entity)
	}
	chunks := chunkBatch(sizes)

	var mu sync.Mutex
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchParallel)
	for ci, c := range chunks {
		g.Go(func() error {
			n, err := t.submitChunk(gctx, tenant, rks[c[0]:c[1]], actions[c[0]:c[1]])
			mu.Lock()
			done += n
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("batch %s %d/%d (%d ops): %w", t.name, ci+1, len(chunks), c[1]-c[0], err)
			}
			return nil
		})
	}
	err := g.Wait()
	return done, err
}

// chunkBatch splits operations of the given body sizes into [start, end) runs of at most maxBatchOps
// operations and maxBatchBytes (counting per-operation overhead).
func chunkBatch(sizes []int) [][2]int {
	var chunks [][2]int
	start, size := 0, 0
	for i, s := range sizes {
		n := s + batchSlack
		if i > start && (i-start == maxBatchOps || size+n > maxBatchBytes) {
			chunks = append(chunks, [2]int{start, i})
			start, size = i, 0
		}
		size += n
	}
	if start < len(sizes) {
		chunks = append(chunks, [2]int{start, len(sizes)})
	}
	return chunks
}

func (t *raw) submitChunk(ctx context.Context, tenant core.TenantID, rks []string, actions []aztables.TransactionAction) (int, error) {
	_, err := t.client.SubmitTransaction(ctx, actions, nil)
	if err == nil {
		return len(actions), nil
	}
	err = classifyBatch(err)
	if !errors.Is(err, ErrNotFound) || actions[0].ActionType != aztables.TransactionTypeDelete {
		return 0, err
	}
	n := 0
	for _, rk := range rks {
		_, err := t.client.DeleteEntity(ctx, string(tenant), rk, nil)
		switch {
		case err == nil:
			n++
		case !errors.Is(classify(err), ErrNotFound):
			return n, fmt.Errorf("delete %s: %w", t.name, classify(err))
		}
	}
	return n, nil
}

// classifyBatch: a failed transaction comes back as a ResponseError with status 202 and no ErrorCode;
// the failing operation's code is only in the text (go-sdk-notes).
func classifyBatch(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusAccepted {
		return classify(err)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, string(aztables.EntityAlreadyExists)):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case strings.Contains(msg, string(aztables.UpdateConditionNotSatisfied)):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case strings.Contains(msg, string(aztables.ResourceNotFound)), strings.Contains(msg, string(aztables.EntityNotFound)):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// Now is the clock of the table's DB (leases, generated ids).
func (t *raw) Now() time.Time { return t.db.now() }
