package presence_test

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
)

// cpuTime is the CPU time this process has used (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkerThroughput processes rich presence notifications as ProcessNotification does —
// decrypt (RSA-OAEP unwrap, HMAC, AES-CBC), ordering check, presence read and write in Table Storage
// (Azurite), ledger, PBX push (in memory) — with every notification a real change, fresh and carrying
// Graph's sequenceNumber: the fast path, no Graph read. Users are split over workers so each user's
// notifications stay in order, as Service Bus sessions keep them. Reported: notifications/s (wall
// clock, all workers), notifications per CPU-second of this process ("per core": the worker's own
// cost, Azurite's CPU excluded) and Graph presence reads per notification.
func BenchmarkWorkerThroughput(b *testing.B) { benchWorker(b, true) }

// BenchmarkWorkerThroughputWithoutSequence is the same without sequence numbers: every change is
// confirmed by a presence read from Graph (the fake, on loopback) before it is pushed.
func BenchmarkWorkerThroughputWithoutSequence(b *testing.B) { benchWorker(b, false) }

func benchWorker(b *testing.B, sequence bool) {
	f := newBenchFixture(b)
	f.graph.IncludeSequence = sequence
	const nUsers = 64
	ids := make([]string, nUsers)
	for i := range ids {
		ids[i] = fmt.Sprintf("b0000000-0000-4000-8000-%012d", i)
		// A presence Graph knows (with its sequence number) before the resync stores it.
		f.graph.SetPresenceQuietly(string(f.tenant), ids[i], "Offline", "OffWork")
	}
	f.addUsers(b, ids...)
	f.addServiceUser(b, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		b.Fatal(err)
	}
	reads0 := f.graph.Count("POST", "/communications/getPresencesByUserId")
	workers := runtime.GOMAXPROCS(0) * 4
	// Notifications per user, alternating so every one changes the PBX state.
	per := b.N/nUsers + 1
	byUser := make([][]*queue.Delivery, nUsers)
	for i, id := range ids {
		for r := range per {
			avail, act := benchState(r)
			byUser[i] = append(byUser[i], f.notify(b, id, avail, act)...)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var next [nUsers]int
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := 0
			for done < b.N/workers+1 {
				progressed := false
				for u := w; u < nUsers; u += workers {
					if next[u] >= len(byUser[u]) || done >= b.N/workers+1 {
						continue
					}
					d := byUser[u][next[u]]
					// Delivered as soon as the webhook accepted it, and Graph still at that state.
					d.EnqueuedTime = time.Now()
					if !sequence {
						avail, act := benchState(next[u])
						f.graph.SetPresenceQuietly(string(f.tenant), ids[u], avail, act)
					}
					if err := f.worker.Process(ctx, d); err != nil {
						errs <- err
						return
					}
					next[u]++
					done++
					progressed = true
				}
				if !progressed {
					return
				}
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(wall0), cpuTime()-cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	processed := 0
	for _, n := range next {
		processed += n
	}
	b.ReportMetric(float64(processed)/wall.Seconds(), "notifications/s")
	b.ReportMetric(float64(processed)/cpu.Seconds(), "notifications/cpu-s")
	b.ReportMetric(float64(f.graph.Count("POST", "/communications/getPresencesByUserId")-reads0)/float64(processed), "graph-reads/notification")
	if got := len(f.pusher.all()); got < processed {
		b.Errorf("pushed %d for %d changes", got, processed)
	}
}

// benchState alternates so that every notification changes the PBX state.
func benchState(r int) (availability, activity string) {
	if r%2 == 1 {
		return "Available", "Available"
	}
	return "Busy", "InACall"
}

func newBenchFixture(b *testing.B) *fixture {
	b.Helper()
	return newFixture(b, fixtureOptions{})
}

// BenchmarkStatus100k is GetPresenceStatus of a tenant with 100,000 licensed users and the 154 service
// users they need: a tenant row, the count of the last reconcile, the service users and the
// subscriptions, never the 100 pages of user rows (the first, live count is made before the timer).
func BenchmarkStatus100k(b *testing.B) {
	f := newBenchFixture(b)
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%07d-0000-4000-8000-000000000000", i)
	}
	var g errgroup.Group
	g.SetLimit(8)
	for start := 0; start < n; start += 100 {
		g.Go(func() error {
			var us []registry.User
			for _, id := range ids[start:min(start+100, n)] {
				us = append(us, registry.User{ID: id, Licensed: true})
			}
			return f.st.Users.UpsertBatch(ctx, f.tenant, us)
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for i := range (n + presence.MaxUsersPerSubscription - 1) / presence.MaxUsersPerSubscription {
		f.addServiceUser(b, fmt.Sprintf("5e%06d-0000-4000-8000-000000000000", i), time.Now())
	}
	if st, err := f.manager.Status(ctx, f.tenant); err != nil || st.Licensed != n || st.ServiceUsersMissing != 0 {
		b.Fatalf("first status: %+v, %v", st, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := f.manager.Status(ctx, f.tenant)
		if err != nil || st.Licensed != n {
			b.Fatalf("status: %+v, %v", st, err)
		}
	}
}
