package queue

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"
)

// SendRequest is the JSON body of devhost's queue endpoint: POST {base}/{queue} (DevhostSender posts the
// same messages as BatchContentType).
type SendRequest struct {
	Messages []Message `json:"messages"`
}

// SendResult says how many messages were stored and how many were duplicates dropped by MessageID.
type SendResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// DevhostSender sends to devhost's queues over loopback HTTP.
type DevhostSender struct {
	base   string
	token  string
	client *http.Client
}

var _ Sender = (*DevhostSender)(nil)

// NewDevhostSender builds a sender for devhost's endpoint (CONNECTHUB_DEVHOST_QUEUE_URL and _TOKEN).
func NewDevhostSender(base, token string) (*DevhostSender, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("parse devhost queue url: invalid %q", base)
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return nil, fmt.Errorf("devhost queue url must be loopback, got host %q", h)
	}
	return &DevhostSender{
		base:  strings.TrimRight(base, "/"),
		token: token,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// A 50-item batch is about 60 KB: written through the default 4 KB buffer it took a
			// handful of write calls, each a trip through the loopback stack.
			WriteBufferSize: 64 << 10,
		}},
	}, nil
}

// Send posts the batch; the deadline comes from ctx.
func (s *DevhostSender) Send(ctx context.Context, queueName string, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	size := batchSize(msgs)
	var buf []byte
	if p, ok := batchBuffers.Get().(*[]byte); ok && cap(*p) >= size {
		buf = (*p)[:0]
	} else {
		buf = make([]byte, 0, size)
	}
	// The body stays a *bytes.Reader, which the transport writes together with the headers (and may
	// read again for a retry on a connection that died idle); its buffer goes back to the pool once
	// nothing can read it any more (sending).
	snd := &sending{buf: AppendBatch(buf, msgs)}
	trace := &httptrace.ClientTrace{GotConn: snd.gotConn, WroteRequest: snd.wrote}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost,
		s.base+"/"+url.PathEscape(queueName), bytes.NewReader(snd.buf))
	if err != nil {
		return fmt.Errorf("build send request: %w", err)
	}
	defer snd.returned()
	req.Header.Set("Content-Type", BatchContentType)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("send to queue %s: %w", queueName, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("send to queue %s: status %d: %s", queueName, resp.StatusCode, bytes.TrimSpace(msg))
	}
	var res SendResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&res); err != nil {
		return fmt.Errorf("decode send result: %w", err)
	}
	if res.Accepted+res.Duplicates != len(msgs) {
		return fmt.Errorf("send to queue %s: %d of %d messages accounted for", queueName, res.Accepted+res.Duplicates, len(msgs))
	}
	return nil
}

// batchBuffers holds the buffers of batches sent, for the next Send: a batch of 50 items is a large
// allocation (zeroed, then collected) on every webhook POST otherwise.
var batchBuffers sync.Pool

// sending is a batch being sent. Its buffer may be reused once Do has returned (no retry reads the body
// again after that) and every attempt that got a connection has finished writing it (an early answer
// can end Do while the body is still being written). An attempt that never finishes keeps the buffer
// from the pool, to the collector.
type sending struct {
	mu      sync.Mutex
	buf     []byte
	writing int  // attempts that got a connection and have not finished writing
	done    bool // Do returned
}

func (s *sending) gotConn(httptrace.GotConnInfo) {
	s.mu.Lock()
	s.writing++
	s.mu.Unlock()
}

func (s *sending) wrote(httptrace.WroteRequestInfo) {
	s.mu.Lock()
	s.writing--
	s.release()
	s.mu.Unlock()
}

func (s *sending) returned() {
	s.mu.Lock()
	s.done = true
	s.release()
	s.mu.Unlock()
}

func (s *sending) release() {
	if s.done && s.writing == 0 && s.buf != nil {
		if cap(s.buf) <= 1<<20 { // an unusually large batch is left to the collector
			b := s.buf[:0]
			batchBuffers.Put(&b)
		}
		s.buf = nil
	}
}

// TokenMatches compares a presented devhost token in constant time.
func TokenMatches(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
