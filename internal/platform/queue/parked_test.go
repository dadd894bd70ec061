package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

func TestParkingLotKeepsTheReasonAndSealsTheBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	env := storetest.NewEnv(t, storetest.Options{Now: clk.Now})
	lot := queue.OpenParkingLot(env.DB)
	tenant := env.NewTenant(t)
	const user = "aaaaaaaa-0000-4000-8000-000000000001"
	d := &queue.Delivery{MessageID: "msg-1", DeliveryCount: 1, EnqueuedTime: clk.Now().Add(-time.Minute),
		Body:                  []byte(`{"value":[{"resource":"communications/presences/` + user + `"}]}`),
		ApplicationProperties: map[string]string{queue.PropTenant: string(tenant), queue.PropKind: "presence"}}
	cause := apperr.New(apperr.Invalid, "presence content does not decrypt", errors.New("cipher: message authentication failed"))
	if err := lot.Park(ctx, queue.Notifications, d, cause); err != nil {
		t.Fatal(err)
	}
	// No tenant, no key: the reason and ids are kept in the operator partition, the body is not.
	junk := &queue.Delivery{MessageID: "msg-2", Body: []byte("junk " + user), ApplicationProperties: map[string]string{queue.PropKind: "x"}}
	if err := lot.Park(ctx, queue.Notifications, junk, apperr.New(apperr.Invalid, "message without a tenant", nil)); err != nil {
		t.Fatal(err)
	}

	page, err := lot.List(ctx, tenant, nil)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("parked = %d, %v; want 1", len(page.Items), err)
	}
	p := page.Items[0]
	if p.MessageID != "msg-1" || p.Kind != "presence" || p.Code != "invalid" || p.Reason != "presence content does not decrypt" ||
		p.Queue != queue.Notifications || p.DeliveryCount != 1 || string(p.Body) != string(d.Body) {
		t.Errorf("parked = %+v", p)
	}
	if strings.Contains(p.Reason, "authentication") {
		t.Error("the wrapped cause leaked into the stored reason")
	}
	raw, err := tables.New[queue.Parked](env.DB, queue.TableParked).GetRaw(ctx, tenant, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := raw["Body"].(string); body == "" || strings.Contains(body, user) {
		t.Errorf("body at rest = %q, want ciphertext", body)
	}
	op, err := lot.List(ctx, core.ReservedTenant, nil)
	if err != nil || len(op.Items) != 1 || op.Items[0].Body != "" || op.Items[0].MessageID != "msg-2" {
		t.Errorf("operator partition = %+v, %v; want msg-2 without its body", op.Items, err)
	}

	// A person's export finds the parked message by the id in its body; erasure deletes it.
	recs, err := lot.Export(ctx, tenant, user)
	if err != nil || len(recs) != 1 || recs[0].Table != queue.TableParked {
		t.Errorf("export = %+v, %v", recs, err)
	}
	if n, err := lot.Erase(ctx, tenant, user); err != nil || n["parkedmessages"] != (tables.Erased{Deleted: 1}) {
		t.Errorf("erase = %v, %v", n, err)
	}

	// Retention: parked messages go after 14 days, in the tenant's partition and the operator's.
	if err := lot.Park(ctx, queue.Notifications, d, cause); err != nil {
		t.Fatal(err)
	}
	if n, err := lot.Sweep(ctx, registry.Tenant{ID: tenant}, clk.Now().Add(queue.ParkedRetention)); err != nil || n[queue.TableParked] != 0 {
		t.Errorf("sweep at exactly 14 days = %v, %v; want nothing yet", n, err)
	}
	n, err := lot.Sweep(ctx, registry.Tenant{ID: tenant}, clk.Now().Add(queue.ParkedRetention+time.Second))
	if err != nil || n[queue.TableParked] != 2 {
		t.Errorf("sweep after 14 days = %v, %v; want the tenant's and the operator's", n, err)
	}
}

// A message of a tenant without a data key (deleted while the message waited) is still parked, under the
// operator and without its body: the tenant's data must not outlive its key, and a park that can never
// succeed would leave the message to be redelivered until it is dead-lettered.
func TestParkingLotWithoutTheTenantsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := storetest.NewEnv(t, storetest.Options{})
	lot := queue.OpenParkingLot(env.DB)
	gone := storetest.NewTenantID(t) // no key was ever created for it
	d := &queue.Delivery{MessageID: "msg-keyless", DeliveryCount: 1, Body: []byte(`{"value":[]}`),
		ApplicationProperties: map[string]string{queue.PropTenant: string(gone), queue.PropKind: "presence"}}
	if err := lot.Park(ctx, queue.Lifecycle, d, apperr.New(apperr.Invalid, "lifecycle message is not a notification", nil)); err != nil {
		t.Fatal(err)
	}
	var found *queue.Parked
	for p, err := range tables.Pages(func(o *tables.ListOptions) (tables.Page[queue.Parked], error) {
		return lot.List(ctx, core.ReservedTenant, o)
	}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if p.MessageID == "msg-keyless" {
			found = &p
		}
	}
	if found == nil || found.Body != "" || found.Queue != queue.Lifecycle || !strings.Contains(found.Properties, string(gone)) {
		t.Fatalf("parked under the operator = %+v; want the ids and the reason, no body", found)
	}
}
