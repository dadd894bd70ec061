package queue

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	body := newBatchBody(AppendBatch(buf, msgs))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/"+url.PathEscape(queueName), body)
	if err != nil {
		body.Close()
		return fmt.Errorf("build send request: %w", err)
	}
	req.ContentLength = int64(len(body.buf))
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

// batchBody is a batch being sent. The transport closes a request's body once it has written it or
// given up, possibly while RoundTrip has already returned, and reads it no more: only then is the
// buffer reused. Read and Close exclude each other, so a Close while a Read is under way (a transport
// abandoning the write) waits for that Read, and every later Read fails.
type batchBody struct {
	mu     sync.Mutex
	r      bytes.Reader
	buf    []byte
	closed bool
}

func newBatchBody(buf []byte) *batchBody {
	b := &batchBody{buf: buf}
	b.r.Reset(buf)
	return b
}

func (b *batchBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBatchClosed
	}
	return b.r.Read(p)
}

func (b *batchBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		if cap(b.buf) <= 1<<20 { // an unusually large batch is left to the collector
			buf := b.buf[:0]
			batchBuffers.Put(&buf)
		}
		b.buf = nil
	}
	return nil
}

var errBatchClosed = errors.New("batch body read after close")

// TokenMatches compares a presented devhost token in constant time.
func TokenMatches(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
