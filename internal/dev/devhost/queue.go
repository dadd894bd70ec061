package devhost

import (
	"context"
	"sync"
	"time"

	"github.com/connecthub/connecthub/internal/platform/queue"
)

// Defaults of a Service Bus queue as ConnectHub creates them (infra/bicep).
const (
	DefaultMaxDeliveryCount = 10
	DefaultDuplicateWindow  = 10 * time.Minute
	DefaultLockDuration     = 5 * time.Minute
)

// Redelivery backoff after a failed delivery. Service Bus makes an abandoned message available again at
// once; with the real host that is spaced out by the worker's own retries and scheduled enqueue, but a
// burst of failures (a handler restarting, a dependency blinking) would burn all ten deliveries of a
// message here within milliseconds and dead-letter work that could have succeeded. devhost therefore
// waits before it redelivers: the delivery count and the dead-lettering are as in Service Bus, only
// the spacing differs.
const (
	DefaultRedeliveryMin = 50 * time.Millisecond
	DefaultRedeliveryMax = time.Second
)

// ReasonMaxDeliveryCountExceeded is the DeadLetterReason Service Bus itself sets when a message's delivery
// count reaches the queue's MaxDeliveryCount.
const ReasonMaxDeliveryCountExceeded = "MaxDeliveryCountExceeded"

// Message is a stored queue message.
type Message struct {
	queue.Message
	SequenceNumber int64
	EnqueuedTime   time.Time
	DeliveryCount  int
	// DeadLetterReason and DeadLetterError travel with a dead-lettered message, as Service Bus's
	// DeadLetterReason and DeadLetterErrorDescription properties do.
	DeadLetterReason string
	DeadLetterError  string
	lockedUntil      time.Time
}

// QueueSettings override a queue's defaults; zero fields keep them.
type QueueSettings struct {
	DuplicateWindow              time.Duration
	RedeliveryMin, RedeliveryMax time.Duration
}

func (s QueueSettings) apply(q *Queue) {
	if s.DuplicateWindow > 0 {
		q.DuplicateWindow = s.DuplicateWindow
	}
	if s.RedeliveryMin > 0 {
		q.RedeliveryMin = s.RedeliveryMin
	}
	if s.RedeliveryMax > 0 {
		q.RedeliveryMax = s.RedeliveryMax
	}
}

// Queue is an in-memory queue with the Service Bus semantics the app relies on: a message is locked
// while a receiver has it (peek-lock), completed on success, abandoned on failure (available again with
// DeliveryCount+1), dead-lettered once DeliveryCount reaches MaxDeliveryCount; a MessageID seen within
// DuplicateWindow is dropped; ScheduledEnqueueTime hides a message until then; with sessions, messages
// of one SessionID are delivered one at a time, in order.
type Queue struct {
	Name             string
	MaxDeliveryCount int
	DuplicateWindow  time.Duration
	LockDuration     time.Duration
	// RedeliveryMin is the wait before the first redelivery of a failed message, doubling per failed
	// delivery up to RedeliveryMax; zero redelivers at once as Service Bus does.
	RedeliveryMin, RedeliveryMax time.Duration
	Sessions                     bool
	now                          func() time.Time

	mu         sync.Mutex
	seq        int64
	active     []*Message
	dead       []*Message
	seen       map[string]time.Time
	seenOrder  []seenID // seen's ids in the order they were stored, to expire them from the front
	seenHead   int      // seenOrder[:seenHead] are expired
	lockedSess map[string]bool
	notify     chan struct{}
}

// NewQueue makes a queue with Service Bus defaults.
func NewQueue(name string, sessions bool, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{Name: name, MaxDeliveryCount: DefaultMaxDeliveryCount, DuplicateWindow: DefaultDuplicateWindow,
		LockDuration: DefaultLockDuration, RedeliveryMin: DefaultRedeliveryMin, RedeliveryMax: DefaultRedeliveryMax,
		Sessions: sessions, now: now,
		seen: map[string]time.Time{}, lockedSess: map[string]bool{}, notify: make(chan struct{}, 1)}
}

// Send stores messages, dropping duplicates by MessageID, and returns how many were stored and dropped.
func (q *Queue) Send(msgs []queue.Message) (accepted, duplicates int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.forgetExpired(now)
	for _, m := range msgs {
		if m.ID != "" {
			if t, dup := q.seen[m.ID]; dup && now.Sub(t) <= q.DuplicateWindow {
				duplicates++
				continue
			}
			q.remember(m.ID, now)
		}
		q.seq++
		q.active = append(q.active, &Message{Message: m, SequenceNumber: q.seq, EnqueuedTime: now})
		accepted++
	}
	q.wake()
	return accepted, duplicates
}

// seenID is a MessageID and when it was stored.
type seenID struct {
	id string
	at time.Time
}

// remember stores a MessageID for duplicate detection.
func (q *Queue) remember(id string, now time.Time) {
	q.seen[id] = now
	q.seenOrder = append(q.seenOrder, seenID{id, now})
}

// forgetExpired drops the ids stored longer than DuplicateWindow ago. They are stored in time order, so
// a send costs what expired, not a walk over every id of the last ten minutes (hundreds of thousands in
// a benchmark). An id stored out of order (a test's clock set back) is forgotten after the ones stored
// before it; until then the window is checked where the id is looked up.
func (q *Queue) forgetExpired(now time.Time) {
	for q.seenHead < len(q.seenOrder) {
		e := q.seenOrder[q.seenHead]
		if now.Sub(e.at) <= q.DuplicateWindow {
			break
		}
		if t, ok := q.seen[e.id]; ok && t.Equal(e.at) {
			delete(q.seen, e.id)
		}
		q.seenOrder[q.seenHead] = seenID{}
		q.seenHead++
	}
	// Compact once half the slice is spent, so each id is moved at most once on average.
	if q.seenHead > len(q.seenOrder)/2 {
		q.seenOrder = append(q.seenOrder[:0], q.seenOrder[q.seenHead:]...)
		q.seenHead = 0
	}
}

func (q *Queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// receive locks the first deliverable message, or returns nil. The returned copy carries the new
// DeliveryCount.
func (q *Queue) receive() *Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, m := range q.active {
		if m.ScheduledEnqueueTime != nil && m.ScheduledEnqueueTime.After(now) {
			continue
		}
		if m.lockedUntil.After(now) {
			continue
		}
		if q.Sessions && m.SessionID != "" && q.lockedSess[m.SessionID] {
			continue
		}
		if q.Sessions && m.SessionID != "" && q.earlierInSession(m) {
			continue
		}
		m.lockedUntil = now.Add(q.LockDuration)
		m.DeliveryCount++
		if q.Sessions && m.SessionID != "" {
			q.lockedSess[m.SessionID] = true
		}
		cp := *m
		return &cp
	}
	return nil
}

// earlierInSession reports whether an older message of m's session is still waiting (scheduled later):
// session order is by sequence number.
func (q *Queue) earlierInSession(m *Message) bool {
	for _, o := range q.active {
		if o == m {
			return false
		}
		if o.SessionID == m.SessionID {
			return true
		}
	}
	return false
}

// settle completes (ok) or abandons the message with sequence number seq. An abandoned message whose
// DeliveryCount reached MaxDeliveryCount moves to the dead-letter queue with the reason Service Bus uses
// (DeadLetterReason MaxDeliveryCountExceeded) and errText, the last failure, as its description; settle
// then returns a copy of it.
func (q *Queue) settle(seq int64, ok bool, errText string) *Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range q.active {
		if m.SequenceNumber != seq {
			continue
		}
		if q.Sessions && m.SessionID != "" {
			delete(q.lockedSess, m.SessionID)
		}
		switch {
		case ok:
			q.active = append(q.active[:i], q.active[i+1:]...)
		case m.DeliveryCount >= q.MaxDeliveryCount:
			q.active = append(q.active[:i], q.active[i+1:]...)
			m.DeadLetterReason = ReasonMaxDeliveryCountExceeded
			m.DeadLetterError = errText
			m.lockedUntil = time.Time{}
			q.dead = append(q.dead, m)
			q.wake()
			cp := *m
			return &cp
		default:
			// Abandoned: hidden until its backoff has passed (the lock field doubles as "not before").
			m.lockedUntil = q.now().Add(q.redeliveryDelay(m.DeliveryCount))
		}
		q.wake()
		return nil
	}
	return nil
}

// redeliveryDelay is the wait after the n-th failed delivery: RedeliveryMin·2^(n-1), at most
// RedeliveryMax.
func (q *Queue) redeliveryDelay(n int) time.Duration {
	if q.RedeliveryMin <= 0 {
		return 0
	}
	d := q.RedeliveryMin
	for i := 1; i < n && d < q.RedeliveryMax; i++ {
		d *= 2
	}
	return min(d, max(q.RedeliveryMax, q.RedeliveryMin))
}

// release gives a received message back untouched: the delivery did not happen (the handler could not be
// reached), so its DeliveryCount is restored and it is available at once.
func (q *Queue) release(seq int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.active {
		if m.SequenceNumber != seq {
			continue
		}
		if q.Sessions && m.SessionID != "" {
			delete(q.lockedSess, m.SessionID)
		}
		if m.DeliveryCount > 0 {
			m.DeliveryCount--
		}
		m.lockedUntil = time.Time{}
		q.wake()
		return
	}
}

// Stats is a snapshot of a queue's counts.
type Stats struct {
	Active     int `json:"active"`
	DeadLetter int `json:"deadLetter"`
}

// Stats returns the current counts.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Active: len(q.active), DeadLetter: len(q.dead)}
}

// DeadLetters returns copies of the dead-lettered messages.
func (q *Queue) DeadLetters() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return copies(q.dead)
}

// copies copies messages so callers never see (or race with) the queue's own.
func copies(ms []*Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

// WaitIdle blocks until the queue has no active message or ctx ends; tests use it instead of sleeping.
func (q *Queue) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if q.Stats().Active == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// nextWake says when a scheduled or locked message becomes deliverable, so the pump sleeps exactly as
// long as needed.
func (q *Queue) nextWake() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	best := time.Second
	for _, m := range q.active {
		for _, t := range []time.Time{m.lockedUntil, derefTime(m.ScheduledEnqueueTime)} {
			if d := t.Sub(now); d > 0 && d < best {
				best = d
			}
		}
	}
	return best
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Snapshot returns copies of the active (not yet completed) messages, in order.
func (q *Queue) Snapshot() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return copies(q.active)
}
