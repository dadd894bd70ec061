package clock

import (
	"sync"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	f := NewFake(start)
	if got := f.Now(); !got.Equal(start) || got.Location() != time.UTC {
		t.Errorf("Now = %v, want %v in UTC", got, start)
	}
	if got, want := f.Advance(24*time.Hour+time.Minute), start.Add(24*time.Hour+time.Minute); !got.Equal(want) || !f.Now().Equal(want) {
		t.Errorf("Advance = %v, Now = %v; want %v", got, f.Now(), want)
	}
	f.Set(start)
	if !f.Now().Equal(start) {
		t.Errorf("after Set, Now = %v", f.Now())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { f.Advance(time.Second) })
	}
	wg.Wait()
	if got, want := f.Now(), start.Add(8*time.Second); !got.Equal(want) {
		t.Errorf("concurrent Advance: Now = %v, want %v", got, want)
	}
	if d := time.Since(Now()); d < -time.Second || d > time.Second || Now().Location() != time.UTC {
		t.Errorf("Now is not the current UTC time (off by %v)", d)
	}
}
