package queue

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
)

// A batch's buffer goes back for reuse only when Do has returned and every attempt that got a
// connection has finished writing, in whichever order; an attempt that never finishes keeps it.
func TestSendingReleasesOnlyWhenNothingReads(t *testing.T) {
	t.Parallel()
	s := &sending{buf: []byte("batch")}
	s.gotConn(httptrace.GotConnInfo{})
	s.returned() // an early answer: Do is back, the body still being written
	if s.buf == nil {
		t.Fatal("released while an attempt was still writing")
	}
	s.wrote(httptrace.WroteRequestInfo{})
	if s.buf != nil {
		t.Fatal("not released once Do had returned and the write had finished")
	}

	s = &sending{buf: []byte("batch")}
	s.gotConn(httptrace.GotConnInfo{})
	s.wrote(httptrace.WroteRequestInfo{}) // the first attempt: written, then the connection died
	s.gotConn(httptrace.GotConnInfo{})    // the retry reads the body again
	if s.buf == nil {
		t.Fatal("released before Do returned")
	}
	s.returned()
	if s.buf == nil {
		t.Fatal("released while the retry was still writing")
	}
	s.wrote(httptrace.WroteRequestInfo{})
	if s.buf != nil {
		t.Fatal("not released after the retry")
	}

	s = &sending{buf: []byte("batch")}
	s.gotConn(httptrace.GotConnInfo{}) // never written: the buffer is the collector's
	s.returned()
	if s.buf == nil {
		t.Fatal("released with an attempt unfinished")
	}
}

// Batches sent one after another, reusing buffers, arrive intact.
func TestDevhostSenderBatchesIntact(t *testing.T) {
	t.Parallel()
	var got [][]Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil || r.ContentLength != int64(len(raw)) {
			t.Errorf("read %d bytes of %d: %v", len(raw), r.ContentLength, err)
		}
		msgs, err := DecodeBatch(raw)
		if err != nil {
			t.Error(err)
		}
		got = append(got, msgs)
		_, _ = io.WriteString(w, `{"accepted":`+itoa(len(msgs))+`,"duplicates":0}`)
	}))
	defer srv.Close()
	s, err := NewDevhostSender(srv.URL, "token")
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{`{"a":"long enough to need a larger buffer than the next"}`, `{"b":1}`, `{"c":2}`} {
		if err := s.Send(context.Background(), "q", []Message{{ID: itoa(i), Body: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
		if len(got) != i+1 || len(got[i]) != 1 || string(got[i][0].Body) != body || got[i][0].ID != itoa(i) {
			t.Fatalf("batch %d arrived as %+v", i, got[i])
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// BenchmarkDevhostSend sends a 50-item batch (about 60 KB, as a webhook POST queues) to a server that reads it.
func BenchmarkDevhostSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"accepted":50,"duplicates":0}`)
	}))
	defer srv.Close()
	s, _ := NewDevhostSender(srv.URL, "token")
	msgs := make([]Message, 50)
	for i := range msgs {
		msgs[i] = Message{ID: strings.Repeat("a", 64), SessionID: strings.Repeat("b", 64), Body: []byte(strings.Repeat("x", 1100)), ApplicationProperties: map[string]string{"tenant": "t", "kind": "k"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(context.Background(), "q", msgs); err != nil {
			b.Fatal(err)
		}
	}
}
