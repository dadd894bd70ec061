package queue_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1767225600, 123456789)
	tests := []struct {
		name string
		msgs []queue.Message
	}{
		{name: "none", msgs: []queue.Message{}},
		{name: "bare", msgs: []queue.Message{{ID: "a"}}},
		{name: "full", msgs: []queue.Message{
			{ID: "id-1", SessionID: "user-1", ContentType: "application/json", Subject: "s",
				Body: []byte(`{"value":"é \u0000 \"q\""}` + "\x00\xff"), ApplicationProperties: map[string]string{"tenantId": "t", "kind": "presence"},
				ScheduledEnqueueTime: &at},
			{ID: "id-2", Body: []byte("x")},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := queue.DecodeBatch(queue.AppendBatch(nil, tc.msgs))
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if s := got[i].ScheduledEnqueueTime; s != nil {
					if !s.Equal(at) {
						t.Errorf("message %d scheduled %v, want %v", i, s, at)
					}
					got[i].ScheduledEnqueueTime = tc.msgs[i].ScheduledEnqueueTime
				}
			}
			if !reflect.DeepEqual(got, tc.msgs) {
				t.Errorf("got %+v, want %+v", got, tc.msgs)
			}
		})
	}
}

func TestBatchRefusesWhatItDidNotWrite(t *testing.T) {
	t.Parallel()
	good := queue.AppendBatch(nil, []queue.Message{{ID: "a", Body: []byte("body"), ApplicationProperties: map[string]string{"k": "v"}}})
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "empty", b: nil},
		{name: "json", b: []byte(`{"messages":[]}`)},
		{name: "truncated", b: good[:len(good)-1]},
		{name: "trailing bytes", b: append(append([]byte(nil), good...), 0)},
		{name: "huge count", b: []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := queue.DecodeBatch(tc.b); err == nil {
				t.Errorf("decoded %+v, want an error", got)
			}
		})
	}
}

// FuzzDecodeBatch: whatever DecodeBatch accepts, encoded again, decodes to the same messages.
func FuzzDecodeBatch(f *testing.F) {
	at := time.Unix(0, 42)
	f.Add(queue.AppendBatch(nil, []queue.Message{{ID: "a", SessionID: "s", Body: []byte("{}"),
		ApplicationProperties: map[string]string{"k": "v"}, ScheduledEnqueueTime: &at}}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := queue.DecodeBatch(b)
		if err != nil {
			return
		}
		again, err := queue.DecodeBatch(queue.AppendBatch(nil, msgs))
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v", err)
		}
		if !reflect.DeepEqual(again, msgs) {
			t.Fatalf("round trip changed the messages: %+v, want %+v", again, msgs)
		}
	})
}
