package e2e

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/dev/faultproxy"
	"github.com/connecthub/connecthub/internal/dev/storetest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

// storageBehindProxy points the handler's Table Storage at a fault proxy in front of Azurite.
func storageBehindProxy(t testing.TB) (*faultproxy.Proxy, string) {
	t.Helper()
	conn := storetest.ConnectionString(t)
	m := regexp.MustCompile(`TableEndpoint=([^;]+)`).FindStringSubmatch(conn)
	if m == nil {
		t.Fatalf("no TableEndpoint in the connection string")
	}
	u, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	proxied := *u
	proxied.Host = p.Addr()
	return p, regexp.MustCompile(`TableEndpoint=[^;]+`).ReplaceAllLiteralString(conn, "TableEndpoint="+proxied.String())
}

// TestStorageOutageLosesNothing: presence changes accepted just before Table Storage goes away (the
// webhook answers from its caches) fail in the worker while it is gone, come back later as scheduled
// copies instead of burning their deliveries, and are all applied once it is back: nothing dead-lettered,
// nothing parked. The queue dead-letters after one failed delivery here, so each message the worker
// failed on and did not schedule again would show up as a dead letter (with immediate redelivery and
// Service Bus's 10 deliveries that happens after about 90 s of outage).
func TestStorageOutageLosesNothing(t *testing.T) {
	proxy, conn := storageBehindProxy(t)
	e := startPresence(t, presenceOptions{users: 6, extra: map[string]string{"CONNECTHUB_TABLES_CONNECTION_STRING": conn}})
	ctx := context.Background()
	e.connectServiceUser(t)
	e.subscribe(t)
	waitFor(t, "initial resync", func() bool {
		for _, u := range e.users {
			if len(e.pushesTo(e.ext[u])) == 0 {
				return false
			}
		}
		return true
	})
	e.idle(t)
	q := e.s.host.Queue(queue.Notifications)
	q.MaxDeliveryCount = 1
	dead := len(q.DeadLetters())

	// Warm the webhook's caches (subscription, tenant state) with one change, then take storage away.
	warm, err := e.graph.SetPresence(string(e.tenant), e.users[0], "Busy", "InACall")
	if err != nil {
		t.Fatal(err)
	}
	e.send(t, warm)
	waitFor(t, "the warm-up push", func() bool { return len(e.pushesTo(e.ext[e.users[0]])) == 2 })
	proxy.Down()
	downAt := time.Now()
	for _, u := range e.users[1:] {
		ds, err := e.graph.SetPresence(string(e.tenant), u, "DoNotDisturb", "Presenting")
		if err != nil {
			t.Fatal(err)
		}
		e.send(t, ds)
	}
	time.Sleep(15*time.Second - time.Since(downAt))
	proxy.Up()

	deadline := time.Now().Add(60 * time.Second)
	for _, u := range e.users[1:] {
		for {
			ps := e.pushesTo(e.ext[u])
			if len(ps) > 0 && ps[len(ps)-1].DNDStatus == "DoNotAcceptAnyCalls" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %s: the change accepted during the outage was never applied (pushes %+v)", u, ps)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	e.idle(t)
	if n := len(q.DeadLetters()); n != dead {
		t.Errorf("%d messages dead-lettered by the outage", n-dead)
	}
	page, err := queue.OpenParkingLot(e.s.store.DB()).List(ctx, e.tenant, nil)
	if err != nil || len(page.Items) != 0 {
		t.Errorf("parked: %+v, %v", page.Items, err)
	}
	if !strings.Contains(e.s.logs.String(), `"msg":"queue message retried later"`) {
		t.Error("no message was retried later: the outage did not reach the worker")
	}
}

// The lifecycle queue is settled by a router too: a lifecycle message that can never succeed is parked
// after one delivery with its reason, not redelivered until Service Bus dead-letters it.
func TestLifecycleQueueParksWhatCannotSucceed(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	tenant := storetest.NewTenantID(t)
	if err := tenantkey.New(s.secrets, tenantkey.Options{}).CreateTenantKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	base, token := s.host.QueueEndpoint()
	sender, err := queue.NewDevhostSender(base, token)
	if err != nil {
		t.Fatal(err)
	}
	q := s.host.Queue(queue.Lifecycle)
	dead := len(q.DeadLetters())
	if err := sender.Send(ctx, queue.Lifecycle, []queue.Message{{ID: "lc-broken", Body: []byte(`{"lifecycleEvent":`),
		ApplicationProperties: map[string]string{queue.PropTenant: string(tenant), queue.PropKind: "presence"}}}); err != nil {
		t.Fatal(err)
	}
	lot := queue.OpenParkingLot(s.store.DB())
	var parked []queue.Parked
	waitFor(t, "the broken lifecycle message parked", func() bool {
		page, err := lot.List(ctx, tenant, nil)
		parked = page.Items
		return err == nil && len(parked) == 1
	})
	if p := parked[0]; p.Code != "invalid" || p.DeliveryCount != 1 || p.Queue != queue.Lifecycle {
		t.Errorf("parked = %+v; want invalid, after one delivery, from the lifecycle queue", p)
	}
	if err := q.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(q.DeadLetters()); n != dead {
		t.Errorf("%d dead-lettered", n-dead)
	}
}
