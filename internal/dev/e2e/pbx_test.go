package e2e

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// startPBXToTeams is startPresence with the tenant's direction set to both, the app granted
// Presence.ReadWrite.All (what setPresence needs, app-only), the service user connected and
// RenewSubscriptions run once: Graph holds the Teams → PBX subscription, RingCentral the PBX → Teams one
// (its handshake went through the front door to PbxWebhook).
func startPBXToTeams(t testing.TB, users int) *presenceEnv {
	t.Helper()
	e := startPresence(t, presenceOptions{users: users})
	e.auth.AppRoles = append(e.auth.AppRoles, "Presence.ReadWrite.All")
	if _, err := e.s.store.Tenants.Update(context.Background(), e.tenant, func(tn *registry.Tenant) error {
		tn.PBXSettings = `{"clientId":"` + e.rc.ClientID + `","direction":"both"}`
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.connectServiceUser(t)
	e.subscribe(t)
	waitFor(t, "initial resync", func() bool { return len(e.rc.Pushes()) >= len(e.users) })
	e.idle(t)
	return e
}

func (e *presenceEnv) teamsWrites(user string) []graphtest.PresenceWrite {
	var out []graphtest.PresenceWrite
	for _, w := range e.graph.PresenceWrites() {
		if w.UserID == user {
			out = append(out, w)
		}
	}
	return out
}

func (e *presenceEnv) deliver(t testing.TB, ext string, ev rctest.PresenceEvent) {
	t.Helper()
	if err := e.rc.Deliver(context.Background(), ext, ev); err != nil {
		t.Fatal(err)
	}
}

func callUp() rctest.PresenceEvent {
	return rctest.PresenceEvent{TelephonyStatus: "CallConnected", UserStatus: "Available", DNDStatus: "TakeAllCalls",
		ActiveCalls: []rctest.Call{{ID: "c1", Direction: "Inbound", TelephonyStatus: "CallConnected", From: "+4930123456"}}}
}

func callDown() rctest.PresenceEvent {
	return rctest.PresenceEvent{TelephonyStatus: "NoCall", UserStatus: "Available", DNDStatus: "TakeAllCalls", ActiveCalls: []rctest.Call{}}
}

func TestPBXToTeamsThroughDevhost(t *testing.T) {
	e := startPBXToTeams(t, 3)
	ctx := context.Background()
	subs := e.rc.Subscriptions()
	if len(subs) != 1 || subs[0].Address != e.front+"/api/pbx/"+string(e.tenant)+"/ringcentral" || len(subs[0].EventFilters) != len(e.users) {
		t.Fatalf("RingCentral holds %+v, want one subscription of every licensed user's extension at our public URL", subs)
	}
	u1, ext1 := e.users[0], e.ext[e.users[0]]

	t.Run("call start makes the right user busy in Teams", func(t *testing.T) {
		pushes := len(e.pushesTo(ext1))
		e.deliver(t, ext1, callUp())
		waitFor(t, "setPresence", func() bool { return len(e.teamsWrites(u1)) == 1 })
		w := e.teamsWrites(u1)[0]
		if w.Op != "set" || w.SessionID != appID || w.Availability != "Busy" || w.Activity != "InACall" || w.Tenant != string(e.tenant) {
			t.Errorf("write = %+v, want Busy/InACall in our app's session", w)
		}
		for _, other := range e.users[1:] {
			if n := len(e.teamsWrites(other)); n != 0 {
				t.Errorf("user %s got %d writes", other, n)
			}
		}
		// Graph reports our session's Busy/InACall through the Teams → PBX subscription: no write back.
		ds := e.graph.TakeDeliveries()
		if len(ds) == 0 {
			t.Fatal("Graph sent no notification of the session's presence")
		}
		e.send(t, ds)
		e.idle(t)
		if n := len(e.pushesTo(ext1)); n != pushes {
			t.Errorf("the echo of our Teams session was pushed to the PBX (%d pushes)", n-pushes)
		}
	})

	t.Run("call end clears our session", func(t *testing.T) {
		e.deliver(t, ext1, callDown())
		waitFor(t, "clearPresence", func() bool { return len(e.teamsWrites(u1)) == 2 })
		if w := e.teamsWrites(u1)[1]; w.Op != "clear" || w.SessionID != appID {
			t.Errorf("write = %+v, want our session cleared", w)
		}
		if s := e.graph.Sessions(string(e.tenant), u1); len(s) != 0 {
			t.Errorf("sessions left in Teams: %v", s)
		}
		e.send(t, e.graph.TakeDeliveries())
		e.idle(t)
	})

	t.Run("an out-of-order event is ignored", func(t *testing.T) {
		u2, ext2 := e.users[1], e.ext[e.users[1]]
		up := e.rc.Event(ext2, callUp())
		down := e.rc.Event(ext2, callDown())
		for _, env := range append(down, up...) { // the newer first
			if code, err := e.rc.Send(ctx, env); err != nil || code != http.StatusOK {
				t.Fatalf("delivery answered %d, %v", code, err)
			}
		}
		e.idle(t)
		if w := e.teamsWrites(u2); len(w) != 0 {
			t.Errorf("writes = %+v, want none: the call's start is older than its end", w)
		}
	})

	t.Run("a Teams meeting's DND on the PBX is not mirrored back", func(t *testing.T) {
		u3, ext3 := e.users[2], e.ext[e.users[2]]
		before := len(e.pushesTo(ext3))
		ds, err := e.graph.SetPresence(string(e.tenant), u3, "DoNotDisturb", "Presenting")
		if err != nil {
			t.Fatal(err)
		}
		e.send(t, ds)
		waitFor(t, "DND on the PBX", func() bool { return len(e.pushesTo(ext3)) == before+1 })
		p := e.pushesTo(ext3)[before]
		// RingCentral reports the DND we set.
		e.deliver(t, ext3, rctest.PresenceEvent{TelephonyStatus: "NoCall", UserStatus: p.UserStatus, DNDStatus: p.DNDStatus})
		e.idle(t)
		if w := e.teamsWrites(u3); len(w) != 0 {
			t.Errorf("writes = %+v, want none: the PBX's DND came from Teams", w)
		}
	})

	t.Run("a forged delivery pushes nothing", func(t *testing.T) {
		writes := len(e.graph.PresenceWrites())
		genuine := e.rc.Event(ext1, callUp())[0]
		for _, forged := range []rctest.Envelope{
			{Address: genuine.Address, Token: "guessed", Body: genuine.Body},
			{Address: genuine.Address, Body: genuine.Body},
		} {
			if code, err := e.rc.Send(ctx, forged); err != nil || code != http.StatusOK {
				t.Fatalf("forged delivery answered %d, %v", code, err)
			}
		}
		e.idle(t)
		if n := len(e.graph.PresenceWrites()); n != writes {
			t.Errorf("a forged delivery wrote presence (%d)", n-writes)
		}
	})

	t.Run("a blacklisted subscription is recreated", func(t *testing.T) {
		old := e.rc.Subscriptions()[0].ID
		e.rc.Blacklist(old, "Webhook responses are failing")
		if err := e.s.host.FireTimer(ctx, "RenewSubscriptions"); err != nil {
			t.Fatal(err)
		}
		subs := e.rc.Subscriptions()
		if len(subs) != 1 || subs[0].ID == old || subs[0].Status != "Active" {
			t.Fatalf("subscriptions = %+v, want one new, active one", subs)
		}
		writes := len(e.teamsWrites(u1))
		e.deliver(t, ext1, callUp())
		waitFor(t, "setPresence through the new subscription", func() bool { return len(e.teamsWrites(u1)) == writes+1 })
	})

	t.Run("erasing a user mid-call clears our Teams session", func(t *testing.T) {
		if s := e.graph.Sessions(string(e.tenant), u1); len(s) != 1 {
			t.Fatalf("before the erasure u1 has %d sessions, want ours", len(s))
		}
		code, body := call(t, http.MethodDelete, e.s.host.URL()+"/api/tenants/"+string(e.tenant)+"/users/"+u1+"/personal-data", "fk", "")
		if code != http.StatusOK {
			t.Fatalf("erase = %d %s", code, body)
		}
		if s := e.graph.Sessions(string(e.tenant), u1); len(s) != 0 {
			t.Errorf("after the erasure u1 still shows our session: %v", s)
		}
		if w := e.teamsWrites(u1); w[len(w)-1].Op != "clear" {
			t.Errorf("last Teams write for u1 = %+v, want our clear", w[len(w)-1])
		}
	})

	t.Run("suspension deletes the RingCentral subscription", func(t *testing.T) {
		code, body := call(t, http.MethodPost, e.s.host.URL()+"/api/tenants/"+string(e.tenant)+"/suspend", "fk", "")
		if code != http.StatusOK {
			t.Fatalf("suspend = %d %s", code, body)
		}
		if subs := e.rc.Subscriptions(); len(subs) != 0 {
			t.Errorf("RingCentral still holds %d subscriptions", len(subs))
		}
	})
}

// BenchmarkPBXEventToSetPresence measures, through devhost, the time from RingCentral posting a presence
// event to our public URL until Graph accepts the setPresence (or clearPresence) it causes — devhost,
// the webhook's checks, the queue hand-off, the worker (Table Storage on Azurite) and the Graph call
// with its app-only token. Every event is a real change (call up, call down). Reported: p50 and p99 ms.
func BenchmarkPBXEventToSetPresence(b *testing.B) {
	e := startPBXToTeams(b, 8)
	signal := e.graph.WriteSignal()
	events := []rctest.PresenceEvent{callUp(), callDown()}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		user := e.users[i%len(e.users)]
		ev := events[(i/len(e.users))%2]
		envs := e.rc.Event(e.ext[user], ev)
		if len(envs) != 1 {
			b.Fatalf("%d subscriptions cover the extension", len(envs))
		}
		start := time.Now()
		if code, err := e.rc.Send(context.Background(), envs[0]); err != nil || code != http.StatusOK {
			b.Fatalf("delivery answered %d, %v", code, err)
		}
		select {
		case <-signal:
		case <-time.After(30 * time.Second):
			b.Fatalf("no Teams write for event %d", i)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
