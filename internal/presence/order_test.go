package presence

import (
	"testing"
	"time"
)

// TestOrder is the ordering rule as a table: what proves an observation newer, older, or neither.
func TestOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	withSeq := Presence{Sequence: "0000000000000005", ChangedAt: now.Add(-time.Minute)}
	noSeq := Presence{ChangedAt: now.Add(-time.Minute)}
	note := func(seq string, at time.Time) Observation {
		return Observation{Sequence: seq, At: at, FromNotification: true}
	}
	read := func(seq string, at time.Time) Observation { return Observation{Sequence: seq, At: at} }
	for _, tt := range []struct {
		name   string
		o      Observation
		cur    Presence
		exists bool
		want   verdict
	}{
		{"greater sequence, fresh", note("0000000000000006", now), withSeq, true, inOrder},
		{"same sequence: a replay", note("0000000000000005", now), withSeq, true, stale},
		{"smaller sequence, however late it arrives", note("0000000000000004", now.Add(time.Hour)), withSeq, true, stale},
		{"unpadded smaller sequence", note("9", now), Presence{Sequence: "10"}, true, stale},
		{"greater sequence but waited past freshFor", note("0000000000000006", now.Add(-freshFor-time.Second)), withSeq, true, unproven},
		{"no sequence, arrived after the stored state: may be a late duplicate", note("", now), noSeq, true, unproven},
		{"no sequence, arrived 11 minutes after the stored state", note("", now), Presence{ChangedAt: now.Add(-11 * time.Minute)}, true, unproven},
		{"no sequence, arrived before the stored state: still not provably older", note("", now.Add(-time.Hour)), Presence{ChangedAt: now}, true, unproven},
		{"no sequence, stored 4 hours before: Graph may still be retrying", note("", now), Presence{ChangedAt: now.Add(-4 * time.Hour)}, true, unproven},
		{"no sequence, stored beyond the redelivery horizon", note("", now), Presence{ChangedAt: now.Add(-redeliveryHorizon - time.Second)}, true, inOrder},
		{"sequence on one side only", note("0000000000000006", now), noSeq, true, unproven},
		{"nothing stored, fresh", note("", now), Presence{}, false, inOrder},
		{"nothing stored, waited past freshFor", note("", now.Add(-time.Hour)), Presence{}, false, unproven},
		{"read after the stored evidence", read("", now), noSeq, true, inOrder},
		{"read in the same second as the stored evidence", read("", now.Add(-time.Minute)), Presence{ChangedAt: now.Add(-time.Minute + 400*time.Millisecond)}, true, inOrder},
		{"read before the stored evidence", read("", now.Add(-2*time.Minute)), noSeq, true, stale},
		{"read with a smaller sequence", read("0000000000000004", now), withSeq, true, stale},
		{"read with a greater sequence, older clock", read("0000000000000006", now.Add(-time.Hour)), withSeq, true, inOrder},
		{"read, however old, when nothing is stored", read("", now.Add(-24*time.Hour)), Presence{}, false, inOrder},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := order(tt.o, tt.cur, tt.exists, now); got != tt.want {
				t.Errorf("order = %d, want %d", got, tt.want)
			}
		})
	}
}
