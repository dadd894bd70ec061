package audit_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

const admin, ada = "0000aaaa-0000-4000-8000-000000000001", "0000aaaa-0000-4000-8000-000000000002"

func TestAuditChainDetectsAlteredAndDeletedEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := storetest.NewEnv(t, storetest.Options{})
	log := audit.OpenLog(env.DB)
	raw := tables.New[audit.Entry](env.DB, audit.TableAudit)
	tenant, other := env.NewTenant(t), env.NewTenant(t)

	// Appends racing from many requests still make one chain without a gap.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			target := ada
			if i%2 == 0 {
				target = "license-" + string(rune('a'+i))
			}
			if _, err := log.Append(ctx, tenant, audit.Entry{ActorID: admin, ActorKind: "user", Action: "license.assign",
				TargetType: "user", TargetID: target, Outcome: "success"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := log.Append(ctx, other, audit.Entry{ActorID: admin, Action: "tenant.read", Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	r, err := log.Verify(ctx, tenant)
	if err != nil || !r.Intact() || r.Entries != 12 || r.HeadSeq != 12 || len(r.HeadHash) != 64 {
		t.Fatalf("fresh chain = %+v, %v", r, err)
	}
	page, err := log.List(ctx, tenant, nil)
	if err != nil || page.Items[0].Seq != 12 || page.Items[11].Seq != 1 {
		t.Fatalf("list is not newest first: %v", err)
	}
	entry := func(seq int64) audit.Entry { return page.Items[12-seq] }

	// Erasing a person keeps the chain whole.
	if n, err := log.Erase(ctx, tenant, ada); err != nil || n["audit"] != (tables.Erased{Pseudonymised: 6}) {
		t.Fatalf("erase = %v, %v", n, err)
	}
	if r, err := log.Verify(ctx, tenant); err != nil || !r.Intact() || r.Erased != 6 {
		t.Fatalf("after erasure = %+v, %v", r, err)
	}

	edit := func(seq int64, change func(props map[string]any)) {
		t.Helper()
		e := entry(seq)
		props, err := raw.GetRaw(ctx, tenant, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		change(props)
		delete(props, "odata.etag")
		delete(props, "Timestamp")
		if err := raw.PutRaw(ctx, props); err != nil {
			t.Fatal(err)
		}
	}
	problems := func() []string {
		t.Helper()
		r, err := log.Verify(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return r.Problems
	}
	mustName := func(what string, ps []string, want ...string) {
		t.Helper()
		joined := strings.Join(ps, "\n")
		for _, w := range want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s: problems %q do not name %q", what, ps, w)
			}
		}
	}

	// An outcome rewritten at rest is named.
	edit(5, func(p map[string]any) { p["Outcome"] = "denied" })
	mustName("altered outcome", problems(), "entry #5", "altered")
	edit(5, func(p map[string]any) { p["Outcome"] = "success" })
	if ps := problems(); len(ps) != 0 {
		t.Fatalf("restored entry still reported: %v", ps)
	}
	// Another actor put in place of one that still has its salt is named.
	edit(2, func(p map[string]any) { p["ActorID"] = "0000aaaa-0000-4000-8000-000000000099" })
	mustName("altered actor", problems(), "entry #2", "actor id does not match its digest")
	edit(2, func(p map[string]any) { p["ActorID"] = admin })
	// Rehashing an altered entry does not help: the next entry no longer links to it.
	edit(7, func(p map[string]any) {
		p["Hash"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	})
	mustName("replaced hash", problems(), "entry #7", "entry #8", "does not link to entry #7")
	edit(7, func(p map[string]any) { p["Hash"] = base64.StdEncoding.EncodeToString(entry(7).Hash) })
	// A deleted entry leaves a gap that is named.
	if err := raw.Delete(ctx, tenant, entry(4).ID); err != nil {
		t.Fatal(err)
	}
	mustName("deleted entry", problems(), "entries #4..#4 are missing")
	// The other tenant's chain never noticed.
	if r, err := log.Verify(ctx, other); err != nil || !r.Intact() || r.Entries != 1 {
		t.Errorf("other tenant = %+v, %v", r, err)
	}
}
