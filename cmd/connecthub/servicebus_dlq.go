package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

// serviceBusDLQ reads and settles a queue's dead-letter subqueue with the operator's az login (the
// Azure Service Bus Data Owner role on the namespace). It is deliberately thin: there is no Service Bus
// to test against here, so it only maps the SDK's calls onto deadLetterQueue.
type serviceBusDLQ struct {
	client *azservicebus.Client
	window time.Duration // the queue's duplicate detection window
}

var _ deadLetterQueue = (*serviceBusDLQ)(nil)

// maxPeek bounds how many dead letters one command reads: a runaway dead-letter queue is listed in part,
// and the operator replays or purges in rounds.
const maxPeek = 5000

func openServiceBusDLQ(namespace string, window time.Duration) (deadLetterQueue, error) {
	cred, err := secrets.NewCredential("") // DefaultAzureCredential: the operator's az login
	if err != nil {
		return nil, err
	}
	c, err := azservicebus.NewClient(namespace, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("create service bus client: %w", err)
	}
	return &serviceBusDLQ{client: c, window: window}, nil
}

func (s *serviceBusDLQ) deadLetterReceiver(q string) (*azservicebus.Receiver, error) {
	r, err := s.client.NewReceiverForQueue(q, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter,
		ReceiveMode: azservicebus.ReceiveModePeekLock})
	if err != nil {
		return nil, fmt.Errorf("open dead-letter queue of %s: %w", q, err)
	}
	return r, nil
}

// List peeks (no lock, no delivery counted) through the dead-letter queue.
func (s *serviceBusDLQ) List(ctx context.Context, q string) ([]devhost.DeadLetter, error) {
	r, err := s.deadLetterReceiver(q)
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	var out []devhost.DeadLetter
	for len(out) < maxPeek {
		page, err := r.PeekMessages(ctx, 250, nil) // continues after the last peeked sequence number
		if err != nil {
			return out, fmt.Errorf("peek dead letters of %s: %w", q, err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			out = append(out, fromServiceBus(m, false))
		}
	}
	return out, nil
}

func (s *serviceBusDLQ) Show(ctx context.Context, q, id string) (devhost.DeadLetter, error) {
	r, err := s.deadLetterReceiver(q)
	if err != nil {
		return devhost.DeadLetter{}, err
	}
	defer r.Close(ctx)
	for seen := 0; seen < maxPeek; {
		page, err := r.PeekMessages(ctx, 250, nil)
		if err != nil {
			return devhost.DeadLetter{}, fmt.Errorf("peek dead letters of %s: %w", q, err)
		}
		if len(page) == 0 {
			break
		}
		seen += len(page)
		for _, m := range page {
			if m.MessageID == id {
				return fromServiceBus(m, true), nil
			}
		}
	}
	return devhost.DeadLetter{}, devhost.ErrNoDeadLetter
}

// Replay locks the dead letter, sends a new message with its MessageId, body, session, content type,
// subject and application properties to the queue, and only then completes the dead letter: a failure
// in between leaves it where it was (at worst both exist, and the workers are idempotent).
func (s *serviceBusDLQ) Replay(ctx context.Context, q, id string) (string, error) {
	var where string
	err := s.settle(ctx, q, id, func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
		if m.EnqueuedTime != nil && time.Since(*m.EnqueuedTime) < s.window {
			return &devhost.DuplicateWindowError{MessageID: id, Until: m.EnqueuedTime.Add(s.window)}
		}
		snd, err := s.client.NewSender(q, nil)
		if err != nil {
			return fmt.Errorf("open sender for %s: %w", q, err)
		}
		defer snd.Close(ctx)
		msgID := m.MessageID
		if err := snd.SendMessage(ctx, &azservicebus.Message{MessageID: &msgID, Body: m.Body, SessionID: m.SessionID,
			ContentType: m.ContentType, Subject: m.Subject, ApplicationProperties: maps.Clone(m.ApplicationProperties)}, nil); err != nil {
			return fmt.Errorf("resubmit to %s: %w", q, err)
		}
		where = q
		return r.CompleteMessage(ctx, m, nil)
	})
	return where, err
}

func (s *serviceBusDLQ) Purge(ctx context.Context, q, id string) error {
	return s.settle(ctx, q, id, func(r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
		return r.CompleteMessage(ctx, m, nil)
	})
}

// settle receives (locks) dead letters until it finds id, applies do to it and abandons the others it
// locked on the way (a dead-letter queue has no MaxDeliveryCount, so that costs nothing).
func (s *serviceBusDLQ) settle(ctx context.Context, q, id string, do func(*azservicebus.Receiver, *azservicebus.ReceivedMessage) error) error {
	r, err := s.deadLetterReceiver(q)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	var locked []*azservicebus.ReceivedMessage
	defer func() {
		for _, m := range locked {
			_ = r.AbandonMessage(context.WithoutCancel(ctx), m, nil)
		}
	}()
	for len(locked) < maxPeek {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second) // an empty queue answers nothing: stop waiting
		batch, err := r.ReceiveMessages(rctx, 50, nil)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("receive dead letters of %s: %w", q, err)
		}
		if len(batch) == 0 {
			break
		}
		for _, m := range batch {
			if m.MessageID == id {
				err := do(r, m)
				if err != nil {
					locked = append(locked, m)
				}
				return err
			}
			locked = append(locked, m)
		}
	}
	return devhost.ErrNoDeadLetter
}

func (s *serviceBusDLQ) Close(ctx context.Context) error { return s.client.Close(ctx) }

func fromServiceBus(m *azservicebus.ReceivedMessage, withBody bool) devhost.DeadLetter {
	d := devhost.DeadLetter{MessageID: m.MessageID, DeliveryCount: int(m.DeliveryCount), BodySize: len(m.Body),
		ApplicationProperties: map[string]string{}}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if m.SequenceNumber != nil {
		d.SequenceNumber = *m.SequenceNumber
	}
	if m.EnqueuedTime != nil {
		d.EnqueuedTime = m.EnqueuedTime.UTC()
	}
	d.SessionID, d.ContentType, d.Subject = str(m.SessionID), str(m.ContentType), str(m.Subject)
	d.DeadLetterReason, d.DeadLetterErrorDescription = str(m.DeadLetterReason), str(m.DeadLetterErrorDescription)
	for k, v := range m.ApplicationProperties {
		d.ApplicationProperties[k] = fmt.Sprint(v)
	}
	d.Tenant = d.ApplicationProperties[queue.PropTenant]
	if withBody {
		d.Body = m.Body
	}
	return d
}
