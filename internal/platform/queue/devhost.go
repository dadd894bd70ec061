package queue

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
		}},
	}, nil
}

// Send posts the batch; the deadline comes from ctx.
func (s *DevhostSender) Send(ctx context.Context, queueName string, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	body := AppendBatch(make([]byte, 0, batchSize(msgs)), msgs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/"+url.PathEscape(queueName), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build send request: %w", err)
	}
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

// TokenMatches compares a presented devhost token in constant time.
func TokenMatches(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
