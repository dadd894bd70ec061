// Package queue hands messages to a Service Bus queue. In Azure the Sender is azservicebus; with devhost it
// is devhost's in-memory queues behind a loopback endpoint. Both honour the same contract: Send returns nil
// only when every message is durably accepted (or dropped as a duplicate of an accepted MessageID), so a
// caller that answers "accepted" upstream after Send never acknowledges what was not stored.
package queue

import (
	"context"
	"time"
)

// Message application properties the intake sets on every queued item, so workers need no second
// lookup: the tenant (a canonical GUID) and the notification kind the worker is chosen by.
const (
	PropTenant = "tenantId"
	PropKind   = "kind"
)

// Queue names, as declared in functions/*/function.json and infra.
const (
	Notifications = "notifications"
	Lifecycle     = "lifecycle"
)

// Message is one queue message. ID drives duplicate detection, so it must be deterministic for the same
// logical item; SessionID (Service Bus) is also the ordering key.
type Message struct {
	ID                    string            `json:"messageId"`
	SessionID             string            `json:"sessionId,omitempty"`
	ContentType           string            `json:"contentType,omitempty"`
	Subject               string            `json:"subject,omitempty"`
	Body                  []byte            `json:"body"`
	ApplicationProperties map[string]string `json:"applicationProperties,omitempty"`
	ScheduledEnqueueTime  *time.Time        `json:"scheduledEnqueueTime,omitempty"`
}

// Sender sends messages to a named queue.
type Sender interface {
	Send(ctx context.Context, queue string, msgs []Message) error
}

// Delivery is a message as a queue-triggered function receives it.
type Delivery struct {
	Body                  []byte
	MessageID             string
	SessionID             string
	DeliveryCount         int
	EnqueuedTime          time.Time
	ContentType           string
	Subject               string
	ApplicationProperties map[string]string
}
