package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// ServiceBusSender sends with azservicebus using the managed identity. One sender per queue is created
// lazily and kept: AMQP links are expensive to open and the webhook path must not pay for it per request.
type ServiceBusSender struct {
	client  *azservicebus.Client
	mu      sync.Mutex
	senders map[string]*azservicebus.Sender
}

var _ Sender = (*ServiceBusSender)(nil)

// NewServiceBusSender connects to namespace (host name, e.g. sb-connecthub-weu.servicebus.windows.net).
func NewServiceBusSender(namespace string, cred azcore.TokenCredential) (*ServiceBusSender, error) {
	c, err := azservicebus.NewClient(namespace, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("create service bus client: %w", err)
	}
	return &ServiceBusSender{client: c, senders: map[string]*azservicebus.Sender{}}, nil
}

func (s *ServiceBusSender) sender(queueName string) (*azservicebus.Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if snd, ok := s.senders[queueName]; ok {
		return snd, nil
	}
	snd, err := s.client.NewSender(queueName, nil)
	if err != nil {
		return nil, fmt.Errorf("create sender for %s: %w", queueName, err)
	}
	s.senders[queueName] = snd
	return snd, nil
}

// Send packs msgs into as few batches as the namespace's size limit allows and sends them in order.
// If a later batch fails, earlier ones are already stored; the caller answers "retry" and the
// deterministic MessageIDs make the resent ones duplicates that Service Bus drops.
func (s *ServiceBusSender) Send(ctx context.Context, queueName string, msgs []Message) error {
	snd, err := s.sender(queueName)
	if err != nil {
		return err
	}
	batch, err := snd.NewMessageBatch(ctx, nil)
	if err != nil {
		return fmt.Errorf("new batch for %s: %w", queueName, err)
	}
	for i := range msgs {
		m := toSB(&msgs[i])
		err := batch.AddMessage(m, nil)
		if errors.Is(err, azservicebus.ErrMessageTooLarge) && batch.NumMessages() > 0 {
			if err := snd.SendMessageBatch(ctx, batch, nil); err != nil {
				return fmt.Errorf("send batch to %s: %w", queueName, err)
			}
			if batch, err = snd.NewMessageBatch(ctx, nil); err != nil {
				return fmt.Errorf("new batch for %s: %w", queueName, err)
			}
			err = batch.AddMessage(m, nil)
		}
		if err != nil {
			return fmt.Errorf("add message %d to batch: %w", i, err)
		}
	}
	if batch.NumMessages() > 0 {
		if err := snd.SendMessageBatch(ctx, batch, nil); err != nil {
			return fmt.Errorf("send batch to %s: %w", queueName, err)
		}
	}
	return nil
}

// Close closes every sender and the client.
func (s *ServiceBusSender) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, snd := range s.senders {
		errs = append(errs, snd.Close(ctx))
	}
	errs = append(errs, s.client.Close(ctx))
	return errors.Join(errs...)
}

func toSB(m *Message) *azservicebus.Message {
	id := m.ID
	out := &azservicebus.Message{MessageID: &id, Body: m.Body, ScheduledEnqueueTime: m.ScheduledEnqueueTime}
	if m.SessionID != "" {
		sid := m.SessionID
		out.SessionID = &sid
	}
	if m.ContentType != "" {
		ct := m.ContentType
		out.ContentType = &ct
	}
	if m.Subject != "" {
		sub := m.Subject
		out.Subject = &sub
	}
	if len(m.ApplicationProperties) > 0 {
		out.ApplicationProperties = make(map[string]any, len(m.ApplicationProperties))
		for k, v := range m.ApplicationProperties {
			out.ApplicationProperties[k] = v
		}
	}
	return out
}
