package graphsubs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphsubs"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/registry"
)

// A queued notification is read back to the subscription it names, of the keeper's kind only: one we no
// longer hold is dropped, another kind's or a malformed message can never succeed (Invalid: parked).
func TestReceived(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	tenant := storetest.NewTenantID(t)
	for id, kind := range map[string]registry.SubscriptionKind{"sub-crm": registry.KindCRM, "sub-room": registry.KindBooking} {
		if _, err := st.Subscriptions.Insert(ctx, tenant, registry.Subscription{ID: id, Kind: kind, Resource: "/users/u1/contacts",
			ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	k := &graphsubs.Keeper{Subs: st.Subscriptions, Kind: registry.KindCRM, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	msg := func(body string) *queue.Delivery {
		return &queue.Delivery{Body: []byte(body), ApplicationProperties: map[string]string{queue.PropTenant: string(tenant)}}
	}
	_, got, sub, held, err := k.Received(ctx, msg(`{"subscriptionId":"sub-crm","changeType":"updated","resource":"Users/u1/Contacts/c1"}`))
	if err != nil || !held || got != tenant || sub.ID != "sub-crm" || sub.Resource != "/users/u1/contacts" {
		t.Fatalf("held subscription: %v %v %+v %v", got, held, sub, err)
	}
	if _, _, _, held, err := k.Received(ctx, msg(`{"subscriptionId":"sub-gone"}`)); err != nil || held {
		t.Errorf("a subscription no longer held: held %v, %v; want dropped", held, err)
	}
	for name, body := range map[string]string{"another kind's": `{"subscriptionId":"sub-room"}`, "not a notification": `[1,2]`} {
		if _, _, _, _, err := k.Received(ctx, msg(body)); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if _, _, _, _, err := k.Received(ctx, &queue.Delivery{Body: []byte(`{"subscriptionId":"sub-crm"}`)}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("no tenant: %v, want Invalid", err)
	}
}
