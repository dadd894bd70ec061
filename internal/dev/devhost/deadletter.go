package devhost

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// DeadLetter is a dead-lettered message as devhost's admin API shows it (and `connecthub dlq` prints
// it): the fields of a Service Bus dead letter an operator needs to decide, with the tenant taken from
// the application properties. Body is set only when one message is asked for.
type DeadLetter struct {
	MessageID                  string            `json:"messageId"`
	SequenceNumber             int64             `json:"sequenceNumber"`
	SessionID                  string            `json:"sessionId,omitempty"`
	ContentType                string            `json:"contentType,omitempty"`
	Subject                    string            `json:"subject,omitempty"`
	EnqueuedTime               time.Time         `json:"enqueuedTime"`
	DeliveryCount              int               `json:"deliveryCount"`
	DeadLetterReason           string            `json:"deadLetterReason"`
	DeadLetterErrorDescription string            `json:"deadLetterErrorDescription"`
	Tenant                     string            `json:"tenant,omitempty"`
	ApplicationProperties      map[string]string `json:"applicationProperties,omitempty"`
	BodySize                   int               `json:"bodySize"`
	Body                       []byte            `json:"body,omitempty"`
}

// ReplayResult is the answer to a replay: the new message's sequence number.
type ReplayResult struct {
	MessageID      string `json:"messageId"`
	SequenceNumber int64  `json:"sequenceNumber"`
}

func deadLetterView(m *Message, withBody bool) DeadLetter {
	d := DeadLetter{MessageID: m.ID, SequenceNumber: m.SequenceNumber, SessionID: m.SessionID, ContentType: m.ContentType,
		Subject: m.Subject, EnqueuedTime: m.EnqueuedTime.UTC(), DeliveryCount: m.DeliveryCount,
		DeadLetterReason: m.DeadLetterReason, DeadLetterErrorDescription: m.DeadLetterError,
		Tenant: m.ApplicationProperties[queue.PropTenant], ApplicationProperties: m.ApplicationProperties, BodySize: len(m.Body)}
	if withBody {
		d.Body = m.Body
	}
	return d
}

// ErrNoDeadLetter says the dead-letter queue holds no message with that id.
var ErrNoDeadLetter = errors.New("no dead letter with that message id")

// DuplicateWindowError refuses a replay that duplicate detection would drop. Service Bus accepts such a
// send and silently drops it (the MessageId was seen within the queue's duplicate detection window), so
// the dead letter would be gone and nothing processed; devhost refuses instead and keeps the dead letter.
type DuplicateWindowError struct {
	MessageID string
	Until     time.Time
}

func (e *DuplicateWindowError) Error() string {
	return fmt.Sprintf("message id %q is inside the queue's duplicate detection window until %s: a resubmission now would be dropped as a duplicate; replay after that",
		e.MessageID, e.Until.UTC().Format(time.RFC3339))
}

// deadLetterIndex finds the oldest dead letter with message id; the caller holds q.mu.
func (q *Queue) deadLetterIndex(id string) int {
	for i, m := range q.dead {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// DeadLetter returns a copy of the oldest dead letter with message id.
func (q *Queue) DeadLetter(id string) (Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.deadLetterIndex(id)
	if i < 0 {
		return Message{}, ErrNoDeadLetter
	}
	return *q.dead[i], nil
}

// Replay resubmits the oldest dead letter with message id to the queue, as an operator resubmits from
// Service Bus: a new message (new sequence number, delivery count 0) with the same MessageId, body,
// session, content type, subject and every application property; the dead letter is removed. Within
// the duplicate detection window it is refused (DuplicateWindowError).
func (q *Queue) Replay(id string) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.deadLetterIndex(id)
	if i < 0 {
		return 0, ErrNoDeadLetter
	}
	now := q.now()
	if seen, ok := q.seen[id]; ok && now.Sub(seen) <= q.DuplicateWindow {
		return 0, &DuplicateWindowError{MessageID: id, Until: seen.Add(q.DuplicateWindow)}
	}
	m := q.dead[i]
	q.dead = append(q.dead[:i], q.dead[i+1:]...)
	props := make(map[string]string, len(m.ApplicationProperties))
	for k, v := range m.ApplicationProperties {
		props[k] = v
	}
	q.remember(id, now)
	q.seq++
	q.active = append(q.active, &Message{Message: queue.Message{ID: m.ID, SessionID: m.SessionID, ContentType: m.ContentType,
		Subject: m.Subject, Body: m.Body, ApplicationProperties: props}, SequenceNumber: q.seq, EnqueuedTime: now})
	q.wake()
	return q.seq, nil
}

// Purge deletes the oldest dead letter with message id.
func (q *Queue) Purge(id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.deadLetterIndex(id)
	if i < 0 {
		return ErrNoDeadLetter
	}
	q.dead = append(q.dead[:i], q.dead[i+1:]...)
	return nil
}

// serveDeadLetters is devhost's dead-letter admin API (master key, like the real host's /admin routes):
//
//	GET    /admin/queues/{queue}/deadletter               list (without bodies)
//	GET    /admin/queues/{queue}/deadletter/{id}          one, with its body
//	POST   /admin/queues/{queue}/deadletter/{id}/replay   resubmit to the queue
//	DELETE /admin/queues/{queue}/deadletter/{id}          purge
//
// {id} is the MessageId, path-escaped.
func (h *Host) serveDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !keyMatches(presentedKey(r), h.opts.MasterKey) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	// Split the escaped path so a message id may contain "/".
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), "/admin/queues/")
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		parts[i] = u
	}
	if len(parts) < 2 || parts[1] != "deadletter" {
		http.NotFound(w, r)
		return
	}
	q := h.queues[parts[0]]
	if q == nil {
		http.Error(w, "no such queue", http.StatusNotFound)
		return
	}
	switch {
	case len(parts) == 2 && r.Method == http.MethodGet:
		dead := q.DeadLetters()
		out := make([]DeadLetter, 0, len(dead))
		for i := range dead {
			out = append(out, deadLetterView(&dead[i], false))
		}
		writeJSON(w, http.StatusOK, map[string]any{"queue": q.Name, "deadLetters": out})
	case len(parts) == 3 && r.Method == http.MethodGet:
		m, err := q.DeadLetter(parts[2])
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, deadLetterView(&m, true))
	case len(parts) == 3 && r.Method == http.MethodDelete:
		if err := q.Purge(parts[2]); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		h.log.Warn("dead letter purged", "queue", q.Name, "message_id", truncate(parts[2], 128))
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 4 && parts[3] == "replay" && r.Method == http.MethodPost:
		seq, err := q.Replay(parts[2])
		var dup *DuplicateWindowError
		switch {
		case errors.Is(err, ErrNoDeadLetter):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case errors.As(err, &dup):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h.log.Info("dead letter replayed", "queue", q.Name, "message_id", truncate(parts[2], 128), "sequence_number", seq)
		writeJSON(w, http.StatusOK, ReplayResult{MessageID: parts[2], SequenceNumber: seq})
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
