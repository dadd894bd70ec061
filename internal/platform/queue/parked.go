package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Parking is this product's dead-letter queue for messages that can never succeed (a permanent error,
// a kind no worker takes). A custom handler settles a message only through its answer (success
// completes it, failure abandons it) and Service Bus accepts messages into its dead-letter queue only
// from the receiver that holds them, so the handler cannot dead-letter. Redelivering a message that
// cannot succeed until the queue's MaxDeliveryCount only delays that, ten deliveries later. So a
// permanent failure is parked here — the reason, the ids, the body sealed with the tenant's key — and
// the message is completed; a transient one fails the invocation and Service Bus redelivers it. A
// message that cannot be parked (storage down) fails too, so nothing is ever dropped.

// TableParked holds the parked messages, in the tenant's partition (the operator partition when the
// message names no valid tenant; such a message is kept without its body).
const TableParked = "parkedmessages"

// ParkedRetention is how long a parked message is kept: long enough for an operator to look and
// replay, short enough that a body with personal data does not linger (P14 in the data inventory).
const ParkedRetention = 14 * 24 * time.Hour

// maxParkedProps bounds the stored application properties (set by our intake: tenant, kind, attempt,
// last error code).
const maxParkedProps = 2048

// Tables are the tables the queue layer owns.
var Tables = []tables.Spec{tables.SpecOf[Parked](TableParked, "platform/queue", tables.RetainTenantData)}

// Parked is a message parked after a permanent failure (table parkedmessages).
type Parked struct {
	ID            string `table:"key"` // newest first
	Queue         string // the queue it came from
	MessageID     string // Service Bus message id, to join with the host's and our logs
	Kind          string
	Code          string // apperr code name of the failure, e.g. "invalid"
	Reason        string // the failure's public message: no personal data
	DeliveryCount int
	EnqueuedAt    time.Time
	ParkedAt      time.Time
	Properties    string `table:"personal"` // application properties as JSON (capped): the tenant id and our codes
	Body          string `table:"sealed"`   // the message body, sealed with the tenant's key; empty without a tenant
}

func (p *Parked) RowKey() (string, error)   { return tables.SimpleKey("parked id", p.ID) }
func (p *Parked) SetRowKey(rk string) error { p.ID = rk; return nil }

// ParkingLot is the parked messages table.
type ParkingLot struct {
	t   *tables.Table[Parked, *Parked]
	now func() time.Time
}

// OpenParkingLot returns the parked messages table of db.
func OpenParkingLot(db *tables.DB) *ParkingLot {
	return &ParkingLot{t: tables.New[Parked](db, TableParked), now: db.Now}
}

// Park stores d with the reason it cannot succeed.
func (l *ParkingLot) Park(ctx context.Context, queue string, d *Delivery, cause error) error {
	now := l.now().UTC()
	p := Parked{ID: tables.NewestFirstID(now), Queue: queue, MessageID: d.MessageID, Kind: d.ApplicationProperties[PropKind],
		Code: codeName(cause), Reason: truncate(publicReason(cause), 512), DeliveryCount: d.DeliveryCount, ParkedAt: now}
	if !d.EnqueuedTime.IsZero() {
		p.EnqueuedAt = d.EnqueuedTime.UTC()
	}
	props, _ := json.Marshal(d.ApplicationProperties)
	p.Properties = truncate(string(props), maxParkedProps)
	p.Kind = truncate(p.Kind, 64)
	p.MessageID = truncate(p.MessageID, 128)
	partition, err := core.ParseTenantID(d.ApplicationProperties[PropTenant])
	if err != nil || partition == core.ReservedTenant {
		partition = core.ReservedTenant // no tenant, no key: keep the reason and the ids only
	} else {
		p.Body = string(d.Body)
	}
	_, err = l.t.Insert(ctx, partition, p)
	if errors.Is(err, tables.ErrNoKey) {
		// The tenant's key is gone (the tenant was deleted while the message waited) or never was: its
		// data must not outlive it, so the reason and the ids are kept without the body, under the operator.
		p.Body = ""
		_, err = l.t.Insert(ctx, core.ReservedTenant, p)
	}
	if err != nil {
		return fmt.Errorf("park message: %w", err)
	}
	return nil
}

// List pages over the tenant's parked messages, newest first (core.ReservedTenant: those without one).
func (l *ParkingLot) List(ctx context.Context, tenant core.TenantID, opts *tables.ListOptions) (tables.Page[Parked], error) {
	return l.t.List(ctx, tenant, opts)
}

// Sweep deletes the tenant's parked messages older than ParkedRetention (the retention job runs it
// for every live tenant), and those of the operator partition (messages without a tenant), which no
// tenant's run would otherwise reach; that second query finds nothing most of the time.
func (l *ParkingLot) Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error) {
	cutoff := now.Add(-ParkedRetention)
	n := 0
	for _, p := range []core.TenantID{t.ID, core.ReservedTenant} {
		if err := tables.CheckTenant(p); err != nil {
			return nil, err
		}
		m, err := l.t.DeleteWhere(ctx, p, tables.Filter("PartitionKey eq ? and ParkedAt lt ?", p, cutoff))
		n += m
		if err != nil {
			return map[string]int{TableParked: n}, fmt.Errorf("sweep parked messages: %w", err)
		}
	}
	return map[string]int{TableParked: n}, nil
}

// Export lists the tenant's parked messages whose body names the person.
func (l *ParkingLot) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return l.t.ExportWhere(ctx, tenant, func(p *Parked) bool { return strings.Contains(p.Body, userID) })
}

// Erase deletes the tenant's parked messages whose body names the person.
func (l *ParkingLot) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	return l.t.EraseWhere(ctx, tenant, func(p *Parked) bool { return strings.Contains(p.Body, userID) }, nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// codeName and publicReason describe a failure without its wrapped cause, which may hold data.
func codeName(err error) string { return apperr.CodeOf(err).String() }

func publicReason(err error) string {
	if err == nil {
		return ""
	}
	return apperr.PublicMessage(err)
}

// Answers names the tables a person's export and erasure cover here.
func (l *ParkingLot) Answers() []string { return []string{TableParked} }
