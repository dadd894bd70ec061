package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/jobs"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

var ctx = context.Background()

const name = "test-job"

// env is a jobs table in Azurite whose lease clock is tc (lease expiry follows the table's clock),
// and a second fake clock rc standing in for real time (budgets and waits).
type env struct {
	st *registry.Registry
	tc *clock.Fake
	rc *clock.Fake
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tc := clock.NewFake(t0)
	return &env{st: storetest.NewEnv(t, storetest.Options{Now: tc.Now}).Store, tc: tc, rc: clock.NewFake(t0)}
}

func (e *env) runner(instance string) *jobs.Runner {
	return jobs.New(jobs.OpenLeases(e.st.DB()), jobs.Options{Instance: instance, Now: e.rc.Now})
}

func (e *env) row(t *testing.T, p core.TenantID) jobs.Job {
	t.Helper()
	job, err := jobs.OpenLeases(e.st.DB()).Get(ctx, p, name)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func partitions(ps ...core.TenantID) iter.Seq2[core.TenantID, error] {
	return func(yield func(core.TenantID, error) bool) {
		for _, p := range ps {
			if !yield(p, nil) {
				return
			}
		}
	}
}

func self(p core.TenantID) (core.TenantID, bool) { return p, true }

// While one run holds a partition's job, another owner's run skips it (no error, not run) — also one
// from the same instance — and a third partition is not affected.
func TestLeaseExcludesOtherOwners(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := storetest.NewTenantID(t), storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Budget: time.Minute}
	var inner []string
	ran, err := e.runner("inst-1").Run(ctx, a, spec, func(ctx context.Context, l *jobs.Lease) error {
		for _, r := range []struct {
			label string
			run   *jobs.Runner
			p     core.TenantID
		}{{"other instance", e.runner("inst-2"), a}, {"same instance", e.runner("inst-1"), a}, {"other partition", e.runner("inst-2"), b}} {
			ran, err := r.run.Run(ctx, r.p, spec, func(context.Context, *jobs.Lease) error { return nil })
			inner = append(inner, fmt.Sprintf("%s ran=%v err=%v", r.label, ran, err))
		}
		// A pass over both partitions: the held one is counted, the free one done.
		tally, err := jobs.ForEach(ctx, e.runner("inst-3"), spec, partitions(a, b), self,
			func(context.Context, *jobs.Lease, core.TenantID) error { return nil })
		inner = append(inner, fmt.Sprintf("pass %+v err=%v", tally, err))
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("holder: ran=%v err=%v", ran, err)
	}
	want := []string{"other instance ran=false err=<nil>", "same instance ran=false err=<nil>", "other partition ran=true err=<nil>",
		"pass {Ran:1 Held:1 Left:0 Failures:0} err=<nil>"}
	if !slices.Equal(inner, want) {
		t.Errorf("while held:\n got %q\nwant %q", inner, want)
	}
	if job := e.row(t, a); job.LeaseOwner != "" || job.Runs != 1 || !job.LastSuccessAt.Equal(e.tc.Now()) {
		t.Errorf("after release row = %+v; want free, one run, a success", job)
	}
	if ran, err := e.runner("inst-2").Run(ctx, a, spec, func(context.Context, *jobs.Lease) error { return nil }); !ran || err != nil {
		t.Errorf("after release: ran=%v err=%v", ran, err)
	}
}

// A run that died keeps its job until the lease runs out (budget + 1 min by default); then the next
// run takes over and resumes from the dead run's checkpoint. A lease the dead owner renews too late is
// lost.
func TestExpiredLeaseIsTakenOverAndResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Budget: time.Minute}
	var dead *jobs.Lease
	died := errors.New("process died")
	// The dead run: it checkpoints, then "dies" — its release never reaches storage.
	dying := jobs.New(failRelease{jobs.OpenLeases(e.st.DB())}, jobs.Options{Instance: "inst-1", Now: e.rc.Now})
	if _, err := dying.Run(ctx, p, spec, func(ctx context.Context, l *jobs.Lease) error {
		dead = l
		return errors.Join(l.Save(ctx, "page-2"), died)
	}); !errors.Is(err, died) {
		t.Fatalf("dying run err = %v", err)
	}

	var got []string
	work := func(_ context.Context, l *jobs.Lease) error {
		got = append(got, l.Checkpoint())
		return nil
	}
	e.tc.Advance(2*time.Minute - time.Second)
	if ran, err := e.runner("inst-2").Run(ctx, p, spec, work); ran || err != nil {
		t.Errorf("before expiry: ran=%v err=%v; want skipped", ran, err)
	}
	e.tc.Advance(2 * time.Second)
	if ran, err := e.runner("inst-2").Run(ctx, p, spec, work); !ran || err != nil {
		t.Errorf("after expiry: ran=%v err=%v", ran, err)
	}
	if !slices.Equal(got, []string{"page-2"}) {
		t.Errorf("checkpoints seen = %q, want the dead run's page-2", got)
	}
	if err := dead.Save(ctx, "page-3"); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("dead run's late save err = %v, want ErrLeaseLost", err)
	}
	// Another run holds it now: the dead run's renewal is refused as lost.
	if _, err := e.runner("inst-3").Run(ctx, p, spec, func(ctx context.Context, _ *jobs.Lease) error {
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner("inst-3").Run(ctx, p, spec, func(ctx context.Context, _ *jobs.Lease) error {
		if err := dead.Renew(ctx); !errors.Is(err, jobs.ErrLeaseLost) {
			t.Errorf("renewal by the dead run err = %v, want ErrLeaseLost", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// failRelease is a jobs table whose Release never arrives: the process died first.
type failRelease struct{ *jobs.Leases }

func (failRelease) Release(context.Context, core.TenantID, string, string, string) (jobs.Job, error) {
	return jobs.Job{}, errors.New("killed")
}

// Renew keeps a long run's job from being taken over when its first lease would have run out.
func TestRenewExtendsTheLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Lease: time.Minute}
	var during []string
	if _, err := e.runner("inst-1").Run(ctx, p, spec, func(ctx context.Context, l *jobs.Lease) error {
		e.tc.Advance(50 * time.Second)
		if err := l.Renew(ctx); err != nil {
			return err
		}
		e.tc.Advance(50 * time.Second) // past the first lease, within the renewed one
		ran, err := e.runner("inst-2").Run(ctx, p, spec, func(context.Context, *jobs.Lease) error { return nil })
		during = append(during, fmt.Sprintf("ran=%v err=%v", ran, err))
		return l.Save(ctx, "still mine")
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ran=false err=<nil>"}; !slices.Equal(during, want) {
		t.Errorf("other owner after renewal: %q, want %q", during, want)
	}
	if job := e.row(t, p); job.Checkpoint != "still mine" || job.Runs != 1 {
		t.Errorf("row = %+v; want the holder's checkpoint and one run", job)
	}
}

// The budget is checked between partitions, never inside one: the partitions started finish, the rest
// are left for the next run and reported as ErrBudget; the next run does them.
func TestBudgetStopsBetweenItems(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ps []core.TenantID
	for range 5 {
		ps = append(ps, storetest.NewTenantID(t))
	}
	spec := jobs.Spec{Name: name, Budget: 25 * time.Second}
	var started, finished []core.TenantID
	work := func(_ context.Context, l *jobs.Lease, p core.TenantID) error {
		started = append(started, p)
		e.rc.Advance(10 * time.Second) // each partition takes 10 s of the run's 25
		if l.Spent() && len(started) < 3 {
			t.Errorf("budget spent after %d partitions", len(started))
		}
		finished = append(finished, p)
		return nil
	}
	tally, err := jobs.ForEach(ctx, e.runner("inst-1"), spec, partitions(ps...), self, work)
	if !errors.Is(err, jobs.ErrBudget) || tally != (jobs.Tally{Ran: 3, Left: 2, Failures: 1}) {
		t.Fatalf("first pass: tally %+v err %v; want 3 done, 2 left, ErrBudget", tally, err)
	}
	if !slices.Equal(started, ps[:3]) || !slices.Equal(finished, started) {
		t.Errorf("started %v finished %v; want the first three, each finished", started, finished)
	}
	for _, p := range ps[3:] {
		if _, err := jobs.OpenLeases(e.st.DB()).Get(ctx, p, name); !errors.Is(err, tables.ErrNotFound) {
			t.Errorf("partition left over was touched: %v", err)
		}
	}
	// The next run: a fresh budget, the day's done partitions skipped by the job's own rule.
	started = nil
	tally, err = jobs.ForEach(ctx, e.runner("inst-1"), spec, partitions(ps...), self,
		func(ctx context.Context, l *jobs.Lease, p core.TenantID) error {
			if !l.Job().LastSuccessAt.IsZero() {
				return nil
			}
			return work(ctx, l, p)
		})
	if err != nil || tally.Left != 0 || !slices.Equal(started, ps[3:]) {
		t.Errorf("second pass: tally %+v err %v started %v; want the two left", tally, err, started)
	}
}

// The invocation's deadline bounds the budget, less the time kept for the final writes.
func TestDeadlineFollowsTheInvocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	// The contexts' deadlines are real time: the stand-in clock stands at the real now and stays there,
	// so each deadline is exact.
	e.rc.Set(time.Now())
	now := e.rc.Now()
	tests := []struct {
		name   string
		budget time.Duration
		ctxEnd time.Duration // 0: the context has no deadline
		want   time.Time
	}{
		{"budget only", 40 * time.Second, 0, now.Add(40 * time.Second)},
		{"budget before the invocation ends", 40 * time.Second, time.Minute, now.Add(40 * time.Second)},
		{"invocation ends first", 40 * time.Second, 30 * time.Second, now.Add(25 * time.Second)},
		{"no budget: the invocation", 0, time.Minute, now.Add(55 * time.Second)},
		{"neither", 0, 0, time.Time{}},
	}
	for _, tt := range tests {
		c := context.Background()
		if tt.ctxEnd > 0 {
			var cancel context.CancelFunc
			c, cancel = context.WithDeadline(c, now.Add(tt.ctxEnd))
			defer cancel()
		}
		var got, work time.Time
		_, err := e.runner("inst-1").Run(c, p, jobs.Spec{Name: name, Budget: tt.budget, Lease: time.Minute},
			func(ctx context.Context, l *jobs.Lease) error {
				got = l.Deadline()
				work, _ = ctx.Deadline()
				return nil
			})
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%s: deadline %v err %v; want %v", tt.name, got, err, tt.want)
		}
		// The work's own context ends with the time kept for finishing, whatever the budget: one item
		// that outlasts the budget is cut there, never past the invocation.
		if wantWork := now.Add(tt.ctxEnd - 5*time.Second); tt.ctxEnd > 0 && !work.Equal(wantWork) {
			t.Errorf("%s: work context ends %v; want %v", tt.name, work, wantWork)
		} else if tt.ctxEnd == 0 && !work.IsZero() {
			t.Errorf("%s: work context has a deadline %v without an invocation deadline", tt.name, work)
		}
	}
}

// A run that fails keeps its checkpoint and records the job's failure code; the next run resumes from
// the checkpoint and, succeeding, clears the code.
func TestCheckpointResumesAfterFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Budget: time.Minute, FailureCode: "test-failed"}
	boom := errors.New("graph: status 503")
	_, err := e.runner("inst-1").Run(ctx, p, spec, func(ctx context.Context, l *jobs.Lease) error {
		if l.Checkpoint() != "" {
			t.Errorf("first run's checkpoint = %q, want none", l.Checkpoint())
		}
		if err := l.Save(ctx, "item-7"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing run err = %v", err)
	}
	if job := e.row(t, p); job.LastError != "test-failed" || job.Checkpoint != "item-7" || job.LeaseOwner != "" || !job.LastSuccessAt.IsZero() {
		t.Errorf("after failure row = %+v", job)
	}
	var resumedAt string
	if _, err := e.runner("inst-2").Run(ctx, p, spec, func(ctx context.Context, l *jobs.Lease) error {
		resumedAt = l.Checkpoint()
		return l.Save(ctx, "")
	}); err != nil {
		t.Fatal(err)
	}
	if resumedAt != "item-7" {
		t.Errorf("resumed at %q, want item-7", resumedAt)
	}
	if job := e.row(t, p); job.LastError != "" || job.Checkpoint != "" || job.Runs != 2 || job.LastSuccessAt.IsZero() {
		t.Errorf("after success row = %+v", job)
	}
}

// Per-partition failures are joined, each named by its partition, and never stop the others; a
// failing listing ends the pass with what was done so far.
func TestFailuresAreJoined(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b, c := storetest.NewTenantID(t), storetest.NewTenantID(t), storetest.NewTenantID(t)
	errA, errC := errors.New("a broke"), errors.New("c broke")
	spec := jobs.Spec{Name: name, Budget: time.Minute, FailureCode: "test-failed"}
	var done []core.TenantID
	tally, err := jobs.ForEach(ctx, e.runner("inst-1"), spec, partitions(a, b, c), self,
		func(_ context.Context, _ *jobs.Lease, p core.TenantID) error {
			done = append(done, p)
			return map[core.TenantID]error{a: errA, c: errC}[p]
		})
	if !errors.Is(err, errA) || !errors.Is(err, errC) || tally != (jobs.Tally{Ran: 3, Failures: 2}) {
		t.Fatalf("tally %+v err %v; want both failures joined", tally, err)
	}
	for _, p := range []core.TenantID{a, c} {
		if !strings.Contains(err.Error(), "tenant "+string(p)) {
			t.Errorf("error does not name tenant %s: %v", p, err)
		}
	}
	if !slices.Equal(done, []core.TenantID{a, b, c}) {
		t.Errorf("done %v, want all three", done)
	}
	if e.row(t, a).LastError != "test-failed" || e.row(t, b).LastError != "" || e.row(t, c).LastError != "test-failed" {
		t.Errorf("failure codes a=%q b=%q c=%q", e.row(t, a).LastError, e.row(t, b).LastError, e.row(t, c).LastError)
	}

	listing := errors.New("table: status 503")
	broken := func(yield func(core.TenantID, error) bool) {
		if yield(a, nil) {
			yield("", listing)
		}
	}
	done = nil
	tally, err = jobs.ForEach(ctx, e.runner("inst-1"), spec, broken, self,
		func(_ context.Context, _ *jobs.Lease, p core.TenantID) error { done = append(done, p); return nil })
	if !errors.Is(err, listing) || tally.Ran != 1 || !slices.Equal(done, []core.TenantID{a}) {
		t.Errorf("broken listing: tally %+v err %v done %v", tally, err, done)
	}
}

// A caller that waits (a lifecycle event behind a timer's reconcile) runs once the holder releases; one
// still held when its wait is over gets ErrLeaseHeld.
func TestWaitForAHeldLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Lease: time.Minute}
	holding, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = e.runner("inst-1").Run(ctx, p, spec, func(context.Context, *jobs.Lease) error {
			close(holding)
			<-release
			return nil
		})
	})
	<-holding
	// The stand-in for real time stands still: this wait is over only when the holder lets go.
	waiting := spec
	waiting.Wait = time.Hour
	seen := &seenHeld{Leases: jobs.OpenLeases(e.st.DB()), held: make(chan struct{})}
	var ran bool
	var err error
	wg.Go(func() {
		ran, err = jobs.New(seen, jobs.Options{Instance: "inst-2", Now: e.rc.Now}).Run(ctx, p, waiting,
			func(context.Context, *jobs.Lease) error { return nil })
	})
	<-seen.held // the waiter found the lease held before the holder let go
	close(release)
	wg.Wait()
	if !ran || err != nil {
		t.Errorf("waiter after the release: ran=%v err=%v", ran, err)
	}

	// A holder that does not let go: the waiter gives up once its wait is over. Its clock moves a minute
	// each time it is read, so the 90 s wait is over after one more try.
	ticking := func() time.Time { return e.rc.Advance(time.Minute) }
	waiting.Wait = 90 * time.Second
	if _, err := e.runner("inst-1").Run(ctx, p, spec, func(ctx context.Context, _ *jobs.Lease) error {
		ran, err := jobs.New(jobs.OpenLeases(e.st.DB()), jobs.Options{Instance: "inst-2", Now: ticking}).Run(ctx, p, waiting,
			func(context.Context, *jobs.Lease) error { return nil })
		if ran || !errors.Is(err, jobs.ErrLeaseHeld) {
			t.Errorf("wait over: ran=%v err=%v, want ErrLeaseHeld", ran, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// seenHeld closes held the first time an acquisition finds the lease held.
type seenHeld struct {
	*jobs.Leases
	once sync.Once
	held chan struct{}
}

func (s *seenHeld) AcquireLease(ctx context.Context, tenant core.TenantID, name, owner string, ttl time.Duration) (jobs.Job, error) {
	job, err := s.Leases.AcquireLease(ctx, tenant, name, owner, ttl)
	if errors.Is(err, jobs.ErrLeaseHeld) {
		s.once.Do(func() { close(s.held) })
	}
	return job, err
}

// The release reaches storage even when the invocation's context was cancelled during the run, so the
// next run need not wait for the lease to lapse.
func TestReleaseSurvivesCancellation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	spec := jobs.Spec{Name: name, Budget: time.Minute, FailureCode: "test-failed"}
	c, cancel := context.WithCancel(ctx)
	ran, err := e.runner("inst-1").Run(c, p, spec, func(ctx context.Context, _ *jobs.Lease) error {
		cancel()
		return ctx.Err()
	})
	if !ran || !errors.Is(err, context.Canceled) {
		t.Fatalf("ran=%v err=%v", ran, err)
	}
	if job := e.row(t, p); job.LeaseOwner != "" || job.LastError != "test-failed" {
		t.Errorf("row = %+v; want released with the failure code", job)
	}
}

// One item that outlasts the budget is cut before the invocation ends, and the lease is still released
// with the failure code, so the next run starts at once.
func TestWorkEndsBeforeTheInvocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := storetest.NewTenantID(t)
	e.rc.Set(time.Now())
	// The invocation ends 200 ms after the time kept for finishing: the work gets those 200 ms.
	c, cancel := context.WithTimeout(ctx, 5*time.Second+200*time.Millisecond)
	defer cancel()
	ran, err := e.runner("inst-1").Run(c, p, jobs.Spec{Name: name, Budget: time.Hour, FailureCode: "test-failed"},
		func(ctx context.Context, _ *jobs.Lease) error { <-ctx.Done(); return ctx.Err() })
	if !ran || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ran=%v err=%v; want the work cut at its deadline", ran, err)
	}
	if c.Err() != nil {
		t.Fatalf("the invocation's own deadline passed before the run returned")
	}
	if job := e.row(t, p); job.LeaseOwner != "" || job.LastError != "test-failed" {
		t.Errorf("row = %+v; want released with the failure code", job)
	}
}

// Owner ids name the instance and differ per call: each run is its own owner.
func TestNewOwner(t *testing.T) {
	t.Parallel()
	a, b := jobs.NewOwner("inst-1"), jobs.NewOwner("inst-1")
	if a == b || len(a) != len("inst-1-")+16 || a[:7] != "inst-1-" {
		t.Errorf("owners %q and %q; want inst-1- and 16 random hex digits, different", a, b)
	}
	host, _ := os.Hostname()
	if h := jobs.NewOwner(""); !strings.HasPrefix(h, host+"-") || len(h) != len(host)+17 {
		t.Errorf("default owner %q; want the host name %q and a random part", h, host)
	}
}
