package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableAudit is the tenant's audit trail of administrative operations.
const TableAudit = "audit"

// Tables are the tables the audit trail owns.
var Tables = []tables.Spec{tables.SpecOf[Entry](TableAudit, "platform/audit", tables.RetainTenantData)}

// OpenLog returns the audit table of db.
func OpenLog(db *tables.DB) *Log { return &Log{t: tables.New[Entry](db, TableAudit), now: db.Now} }

// Entry is one administrative operation (table audit, append-only). Each tenant's entries form a hash
// chain: entry n holds the hash of entry n-1, and its own hash covers its facts, so an altered, deleted
// or inserted entry breaks the chain (Verify). The actor's and target's ids enter the hash through
// salted digests: erasing a person replaces the id and drops the salt, which keeps the chain whole and
// the digest unlinkable.
type Entry struct {
	ID           string `table:"key"` // the sequence number, newest first (seqKey); set by Append
	Seq          int64  // 1, 2, 3, … per tenant
	At           time.Time
	ActorID      string `table:"personal"` // object id of the admin or app, or "system"
	ActorKind    string // user, app, system
	Action       string // e.g. "license.assign"
	TargetType   string // e.g. "user"
	TargetID     string `table:"personal"` // id of the object acted on
	Outcome      string // success, denied, failed
	InvocationID string // Functions invocation id, to join with logs
	ActorSalt    []byte // random; dropped when the actor is erased
	ActorDigest  []byte `table:"personal"` // SHA-256(salt ‖ actor id): what the hash covers
	TargetSalt   []byte
	TargetDigest []byte `table:"personal"`
	PrevHash     []byte // the previous entry's Hash; empty for the first
	Hash         []byte // SHA-256 over the tenant, the sequence, PrevHash and the facts
}

func (a *Entry) RowKey() (string, error)   { return tables.SimpleKey("audit id", a.ID) }
func (a *Entry) SetRowKey(rk string) error { a.ID = rk; return nil }

// seqKey makes sequence n's row key: inverted, so a partition lists its newest entry first.
func seqKey(n int64) string { return fmt.Sprintf("%019d", math.MaxInt64-n) }

// Log is the audit table, the append-only audit trail: entries are appended and listed; only a person's
// erasure changes one (the id becomes a pseudonym), and only the retention path (by table name, through
// the catalogue) removes them, with the rest of the tenant's data.
type Log struct {
	t   *tables.Table[Entry, *Entry]
	now func() time.Time
}

// maxAppendAttempts bounds the retries of racing appends (each loses only to another append).
const maxAppendAttempts = 50

// Append adds e at the head of the tenant's chain (its ID, Seq, salts, digests and hashes are set; At
// defaults to now) and returns the stored entry. Two appends racing for the same sequence number
// cannot both insert it: the loser reads the new head and tries the next.
func (a *Log) Append(ctx context.Context, tenant core.TenantID, e Entry) (Entry, error) {
	if e.At.IsZero() {
		e.At = a.now()
	}
	e.At = e.At.UTC().Truncate(100 * time.Nanosecond) // what Table Storage keeps, so the hash verifies
	e.ActorSalt, e.ActorDigest = commit(e.ActorID)
	e.TargetSalt, e.TargetDigest = commit(e.TargetID)
	for attempt := 1; ; attempt++ {
		head, found, err := a.head(ctx, tenant)
		if err != nil {
			return Entry{}, err
		}
		e.Seq, e.PrevHash = 1, nil
		if found {
			e.Seq, e.PrevHash = head.Seq+1, head.Hash
		}
		e.ID = seqKey(e.Seq)
		e.Hash = entryHash(tenant, e)
		_, err = a.t.Insert(ctx, tenant, e)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, tables.ErrExists) || attempt == maxAppendAttempts {
			return Entry{}, fmt.Errorf("append audit entry: %w", err)
		}
	}
}

// head reads the tenant's newest entry.
func (a *Log) head(ctx context.Context, tenant core.TenantID) (Entry, bool, error) {
	page, err := a.t.List(ctx, tenant, &tables.ListOptions{PageSize: 1})
	if err != nil {
		return Entry{}, false, fmt.Errorf("read audit head: %w", err)
	}
	if len(page.Items) == 0 {
		return Entry{}, false, nil
	}
	return page.Items[0], true, nil
}

// commit returns a fresh salt and the digest of id under it ("" commits to nothing).
func commit(id string) (salt, digest []byte) {
	if id == "" {
		return nil, nil
	}
	salt = make([]byte, 16)
	_, _ = rand.Read(salt)
	return salt, digestOf(salt, id)
}

func digestOf(salt []byte, id string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(id))
	return h.Sum(nil)
}

// entryHash is the hash an entry carries: over a canonical JSON array of the tenant, the sequence, the
// previous hash and the facts, with the ids only as their digests.
func entryHash(tenant core.TenantID, e Entry) []byte {
	b, _ := json.Marshal([]any{"connecthub-audit-v1", string(tenant), e.Seq, hex.EncodeToString(e.PrevHash),
		e.At.UTC().Format(time.RFC3339Nano), hex.EncodeToString(e.ActorDigest), e.ActorKind, e.Action, e.TargetType,
		hex.EncodeToString(e.TargetDigest), e.Outcome, e.InvocationID})
	sum := sha256.Sum256(b)
	return sum[:]
}

// Report is what Verify found.
type Report struct {
	Entries  int
	HeadSeq  int64
	HeadHash string
	Erased   int      // entries whose actor or target was erased (pseudonym, no salt)
	Problems []string // one line per broken link, naming the entry
}

// Intact reports whether the chain verified.
func (r Report) Intact() bool { return len(r.Problems) == 0 }

// Verify reads the tenant's whole trail and checks the chain: sequence numbers 1..n without a gap,
// each entry's key, its link to the previous hash, its own hash, and the ids that still have their
// salt against their digests. Deleting the newest entries leaves a shorter chain that is still whole:
// compare HeadSeq and HeadHash with a value recorded earlier (the runbook says where).
func (a *Log) Verify(ctx context.Context, tenant core.TenantID) (Report, error) {
	var all []Entry
	for e, err := range a.t.All(ctx, tenant, nil) {
		if err != nil {
			return Report{}, fmt.Errorf("read audit trail: %w", err)
		}
		all = append(all, e)
	}
	slices.SortFunc(all, func(x, y Entry) int { return cmp.Compare(x.Seq, y.Seq) })
	r := Report{Entries: len(all)}
	var prev *Entry
	for i := range all {
		e := &all[i]
		name := fmt.Sprintf("entry #%d (%s, %s)", e.Seq, e.ID, e.Action)
		want := int64(1)
		if prev != nil {
			want = prev.Seq + 1
		}
		switch {
		case e.Seq < want:
			r.Problems = append(r.Problems, fmt.Sprintf("%s: sequence number repeated", name))
		case e.Seq > want:
			r.Problems = append(r.Problems, fmt.Sprintf("entries #%d..#%d are missing (deleted) before %s", want, e.Seq-1, name))
		}
		if e.ID != seqKey(e.Seq) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: key does not match its sequence number", name))
		}
		if prev != nil && e.Seq == prev.Seq+1 && !bytes.Equal(e.PrevHash, prev.Hash) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: does not link to entry #%d (altered or replaced)", name, prev.Seq))
		}
		if prev == nil && e.Seq == 1 && len(e.PrevHash) != 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: the first entry links to a previous one", name))
		}
		if !bytes.Equal(e.Hash, entryHash(tenant, *e)) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: its content does not match its hash (altered)", name))
		}
		erased := false
		for _, c := range []struct {
			what         string
			id           string
			salt, digest []byte
		}{{"actor", e.ActorID, e.ActorSalt, e.ActorDigest}, {"target", e.TargetID, e.TargetSalt, e.TargetDigest}} {
			switch {
			case len(c.salt) == 0 && len(c.digest) != 0:
				erased = true // the person was erased: the id is a pseudonym, the digest stays in the hash
			case len(c.digest) == 0 && c.id != "":
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %s id without its digest (altered)", name, c.what))
			case len(c.salt) != 0 && !bytes.Equal(digestOf(c.salt, c.id), c.digest):
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %s id does not match its digest (altered)", name, c.what))
			}
		}
		if erased {
			r.Erased++
		}
		prev = e
	}
	if prev != nil {
		r.HeadSeq, r.HeadHash = prev.Seq, hex.EncodeToString(prev.Hash)
	}
	return r, nil
}

// List pages over the tenant's audit trail, newest first.
func (a *Log) List(ctx context.Context, tenant core.TenantID, opts *tables.ListOptions) (tables.Page[Entry], error) {
	return a.t.List(ctx, tenant, opts)
}

// Export lists the audit entries that name the person, as actor or as target.
func (a *Log) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return a.t.ExportWhere(ctx, tenant, func(e *Entry) bool { return e.ActorID == userID || e.TargetID == userID })
}

// Erase keeps the audit trail whole — what was done, when, with which outcome, and its hash chain —
// but replaces the person's id in it with a random pseudonym, the same for every entry of this
// erasure, and drops the salt of the id's digest, so the entries still read as one (erased)
// principal's and no longer lead to the person. It is the only change an entry ever sees.
func (a *Log) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	pseudonym := "erased-" + hex.EncodeToString(r[:])
	return a.t.EraseWhere(ctx, tenant, nil, func(e *Entry) bool {
		// The digest stays (the chain's hash covers it); without its salt it no longer leads to the
		// person.
		changed := false
		if e.ActorID == userID {
			e.ActorID, e.ActorSalt, changed = pseudonym, nil, true
		}
		if e.TargetID == userID {
			e.TargetID, e.TargetSalt, changed = pseudonym, nil, true
		}
		return changed
	})
}

// Answers names the tables a person's export and erasure cover here.
func (a *Log) Answers() []string { return []string{TableAudit} }

// maxExportPage bounds one page of an export (Table Storage answers at most 1,000 rows per request).
const maxExportPage = 1000

// Page returns one page of the tenant's entries with from <= At < to (zero bounds are open), newest
// first, for the export; token continues a previous page.
func (a *Log) Page(ctx context.Context, tenant core.TenantID, from, to time.Time, token string, size int) (tables.Page[Entry], error) {
	if err := tables.CheckTenant(tenant); err != nil {
		return tables.Page[Entry]{}, err
	}
	if size <= 0 || size > maxExportPage {
		size = maxExportPage
	}
	filter := tables.Filter("PartitionKey eq ?", tenant)
	if !from.IsZero() {
		filter += " and " + tables.Filter("At ge ?", from)
	}
	if !to.IsZero() {
		filter += " and " + tables.Filter("At lt ?", to)
	}
	return a.t.Query(ctx, tenant, filter, &tables.ListOptions{PageSize: size, Token: token})
}
