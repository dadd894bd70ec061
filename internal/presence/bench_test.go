package presence_test

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/queue"
)

// cpuTime is the CPU time this process has used (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkerThroughput processes rich presence notifications as ProcessNotification does —
// decrypt (RSA-OAEP unwrap, HMAC, AES-CBC), stale check, presence read and write in Table Storage
// (Azurite), ledger, PBX push (in memory) — with every notification a real change. Users are split
// over workers so each user's notifications stay in order, as Service Bus sessions keep them.
// Reported: notifications/s (wall clock, all workers) and notifications per CPU-second of this process
// ("per core": the worker's own cost, Azurite's CPU excluded).
func BenchmarkWorkerThroughput(b *testing.B) {
	f := newBenchFixture(b)
	const nUsers = 64
	ids := make([]string, nUsers)
	for i := range ids {
		ids[i] = fmt.Sprintf("b0000000-0000-4000-8000-%012d", i)
	}
	f.addUsers(b, ids...)
	f.addServiceUser(b, su1, time.Now())
	if err := f.manager.Run(ctx); err != nil {
		b.Fatal(err)
	}
	workers := runtime.GOMAXPROCS(0) * 4
	// Notifications per user, alternating so every one changes the PBX state.
	per := b.N/nUsers + 1
	byUser := make([][]*queue.Delivery, nUsers)
	for i, id := range ids {
		for r := range per {
			avail, act := "Busy", "InACall"
			if r%2 == 1 {
				avail, act = "Available", "Available"
			}
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
					if err := f.worker.Process(ctx, byUser[u][next[u]]); err != nil {
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
	if got := len(f.pusher.all()); got < processed {
		b.Errorf("pushed %d for %d changes", got, processed)
	}
}

func newBenchFixture(b *testing.B) *fixture {
	b.Helper()
	return newFixture(b, fixtureOptions{})
}
