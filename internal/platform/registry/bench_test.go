package registry_test

import (
	"fmt"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence"
)

// Benchmarks run against Azurite (make bench): they measure the client path and the emulator on this
// machine, not Azure's latency, and are for comparing changes.

func BenchmarkPointRead(b *testing.B) {
	env := storetest.NewEnv(b, storetest.Options{})
	a := env.NewTenant(b)
	if _, err := presence.OpenData(env.DB).Presence.Insert(ctx, a, presence.Presence{UserID: "u1", Availability: "Busy", Activity: "InACall"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := presence.OpenData(env.DB).Presence.Get(ctx, a, "u1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPointWrite(b *testing.B) {
	env := storetest.NewEnv(b, storetest.Options{})
	a := env.NewTenant(b)
	for b.Loop() {
		if _, err := presence.OpenData(env.DB).Presence.Upsert(ctx, a, presence.Presence{UserID: "u1", Availability: "Busy", Activity: "InACall"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealedUserRead is a point read that opens six sealed fields.
func BenchmarkSealedUserRead(b *testing.B) {
	env := storetest.NewEnv(b, storetest.Options{})
	a := env.NewTenant(b)
	if _, err := env.Store.Users.Insert(ctx, a, fill[registry.User]("bench", a)); err != nil {
		b.Fatal(err)
	}
	id := fill[registry.User]("bench", a).ID
	for b.Loop() {
		if _, err := env.Store.Users.Get(ctx, a, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatch100 writes one full entity-group transaction per iteration; entities/s is the
// bulk write throughput.
func BenchmarkBatch100(b *testing.B) {
	env := storetest.NewEnv(b, storetest.Options{})
	a := env.NewTenant(b)
	rows := presenceRows(100, "u")
	n := 0
	for b.Loop() {
		for i := range rows {
			rows[i].Activity = fmt.Sprint(n)
		}
		if err := presence.OpenData(env.DB).Presence.UpsertBatch(ctx, a, rows); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(100*n)/b.Elapsed().Seconds(), "entities/s")
}
