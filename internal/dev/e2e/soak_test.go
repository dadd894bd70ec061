package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/queue"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// The soak: real encrypted presence notifications through the front door, devhost and the handler to the
// fake RingCentral, with faults on the way, and an account of every notification at the end. `make test`
// runs the small version (the defaults); `make soak` the full one (README, "Soak and faults").
var (
	soakN      = flag.Int("soak.notifications", 3000, "presence notifications to send")
	soakUsers  = flag.Int("soak.users", 100, "licensed users they are spread over (at most 650: one service user)")
	soakItems  = flag.Int("soak.items", 50, "notifications per POST (Graph batches up to about 50 here)")
	soakConc   = flag.Int("soak.clients", 4, "concurrent clients posting, as Graph's senders")
	soakKills  = flag.Int("soak.kill", 1, "times to kill the handler with SIGKILL during the run")
	soakOutage = flag.Duration("soak.outage", 3*time.Second, "Table Storage cut away for this long, two thirds in")
	soakPBX    = flag.Int("soak.pbx-faults", 20, "PBX presence updates answered 503 or 429 with Retry-After: 1 (alternately)")
	soakGraph  = flag.Int("soak.graph-faults", 5, "Graph presence reads answered 429 with Retry-After")
)

// soakUser is Graph's side of the account: what was sent per user, in order.
type soakUser struct {
	id, ext string
	sent    []string // "Available" or "Busy", the PBX userStatus each notification maps to
}

// TestSoak sends the notifications, kills the handler, cuts storage and fails the PBX and Graph on the
// way, then checks per user that the PBX ends in the state of the user's last notification (nothing
// lost), that no user got more distinct pushes than notifications (nothing applied twice; a state pushed
// again at once after a fault is counted apart, see below), and that nothing was dead-lettered or parked.
// It prints the figures.
func TestSoak(t *testing.T) {
	n, users := *soakN, min(max(*soakUsers, 1), 650)
	proxy, conn := storageBehindProxy(t)
	e := startPresence(t, presenceOptions{users: users, maxAttempts: "48", extra: map[string]string{"CONNECTHUB_TABLES_CONNECTION_STRING": conn}})
	// RingCentral's default 40 presence updates a minute per user of the app would make this a test of
	// their rate limit (which the connector honours, see rctest); the soak measures our path, as for a
	// customer whose limits RingCentral raised on request.
	for g := range e.rc.Limits {
		e.rc.Limits[g] = 1_000_000
	}
	// A presence Graph has set before carries a sequence number into the resync, so each notification can
	// be proven newer and is pushed as it stands (one never set would be confirmed by a read instead).
	for _, id := range e.users {
		e.graph.SetPresenceQuietly(string(e.tenant), id, "Offline", "OffWork")
	}
	e.connectServiceUser(t)
	e.subscribe(t)
	waitFor(t, "initial resync", func() bool { return len(e.rc.Pushes()) >= users })
	e.idle(t)
	q := e.s.host.Queue(queue.Notifications)
	dead0 := len(q.DeadLetters())
	reads0 := e.graph.Count(http.MethodPost, "/communications/getPresencesByUserId")
	resync := map[string]int{}
	for _, p := range e.rc.Pushes() {
		resync[p.ExtensionID]++
	}

	// The notifications, encrypted by the fake Graph like the real one, each user's in order.
	us := make([]*soakUser, users)
	for i, id := range e.users {
		us[i] = &soakUser{id: id, ext: e.ext[id]}
	}
	var items []json.RawMessage
	var tokens json.RawMessage
	for i := range n {
		u := us[i%users]
		avail, act, status := "Busy", "InACall", "Busy"
		if len(u.sent)%2 == 1 {
			avail, act, status = "Available", "Available", "Available"
		}
		ds, err := e.graph.SetPresence(string(e.tenant), u.id, avail, act)
		if err != nil || len(ds) != 1 {
			t.Fatalf("notification %d: %d deliveries, %v", i, len(ds), err)
		}
		var body struct {
			Value  []json.RawMessage `json:"value"`
			Tokens json.RawMessage   `json:"validationTokens"`
		}
		if err := json.Unmarshal(ds[0].Body, &body); err != nil || len(body.Value) != 1 {
			t.Fatalf("notification %d: %v", i, err)
		}
		items = append(items, body.Value[0])
		tokens = body.Tokens
		u.sent = append(u.sent, status)
	}
	url := e.front + "/api/graph/notifications"
	var posts []string
	for start := 0; start < n; start += *soakItems {
		b, _ := json.Marshal(map[string]any{"value": items[start:min(start+*soakItems, n)], "validationTokens": tokens})
		posts = append(posts, string(b))
	}

	// Faults on the way: the PBX and Graph fail some calls from the start; the handler is killed at
	// evenly spaced points of the first half; storage goes away two thirds in.
	for i := range *soakPBX {
		f := rctest.Failure{Status: http.StatusServiceUnavailable}
		if i%2 == 1 {
			// A 429 without Retry-After costs the whole tenant RingCentral's 30–60 s penalty (the connector
			// stops until it ends); a short one keeps the run about our path.
			f = rctest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1"}
		}
		e.rc.Fail(http.MethodPut, "/restapi/v1.0/account/~/extension/"+us[i%users].ext+"/", f)
	}
	for range *soakGraph {
		e.graph.Fail(http.MethodPost, "/communications/getPresencesByUserId",
			graphtest.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1", Code: "TooManyRequests"})
	}
	var peakRSS atomic.Int64
	stopSampling := sampleRSS(e.s.host.HandlerPID, &peakRSS)
	defer stopSampling()

	var sent, accepted, retried503 atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	var next atomic.Int64
	killAt := map[int64]bool{}
	for k := range *soakKills {
		killAt[int64(len(posts)*(k+1)/(2*(*soakKills)+1))] = true
	}
	outageAt := int64(len(posts) * 2 / 3)
	var outage sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *soakConc}}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *soakConc)
	for range *soakConc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(posts)) {
					return
				}
				if killAt[i] {
					if err := e.s.host.KillHandler(); err != nil {
						errs <- fmt.Errorf("kill: %w", err)
						return
					}
				}
				if i == outageAt && *soakOutage > 0 {
					proxy.Down()
					outage.Add(1)
					time.AfterFunc(*soakOutage, func() { proxy.Up(); outage.Done() })
				}
				// Graph's sender: 503 and connection errors are retried with backoff (Graph keeps trying
				// for up to 4 hours); anything else is a refusal.
				items := int64(strings.Count(posts[i], `"subscriptionId"`))
				sent.Add(items)
				for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
					t0 := time.Now()
					resp, err := client.Post(url, "application/json", strings.NewReader(posts[i]))
					if err == nil {
						resp.Body.Close()
					}
					if err == nil && resp.StatusCode == http.StatusAccepted {
						latMu.Lock()
						lat = append(lat, time.Since(t0))
						latMu.Unlock()
						accepted.Add(items)
						break
					}
					if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
						errs <- fmt.Errorf("POST %d answered %d", i, resp.StatusCode)
						return
					}
					retried503.Add(1)
					time.Sleep(backoff)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	outage.Wait()
	sendTime := time.Since(start)

	// Every accepted notification is settled once the queues are idle and each user's last state arrived.
	deadline := time.Now().Add(time.Minute + time.Duration(n)*time.Millisecond + 2**soakOutage)
	lastState := func(u *soakUser) string {
		ps := e.pushesTo(u.ext)
		if len(ps) <= resync[u.ext] {
			return ""
		}
		return ps[len(ps)-1].UserStatus
	}
	for _, u := range us {
		for lastState(u) != u.sent[len(u.sent)-1] && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline)+time.Minute)
	defer cancel()
	for _, name := range []string{queue.Notifications, queue.Lifecycle} {
		if err := e.s.host.Queue(name).WaitIdle(ctx); err != nil {
			t.Errorf("queue %s not idle: %v", name, err)
		}
	}
	total := time.Since(start)

	// A push repeated at once is a duplicate write: the handler pushes, then records what it pushed, so a
	// kill or a storage cut between the two makes the retry push the same state again. Setting a PBX
	// presence is idempotent, so it is harmless, and it can only happen to what was in flight at a fault
	// (at most the host's 16 concurrent calls each). Applying a notification twice would show as more
	// distinct pushes than notifications.
	var applied, lost, double, dupWrites int
	for _, u := range us {
		ps := e.pushesTo(u.ext)[resync[u.ext]:]
		applied += len(ps)
		if len(ps) == 0 || ps[len(ps)-1].UserStatus != u.sent[len(u.sent)-1] {
			lost++
			t.Errorf("user %s: PBX ends at %v, last notification says %s", u.id, ps, u.sent[len(u.sent)-1])
		}
		distinct := 0
		for i := range ps {
			if i > 0 && ps[i].UserStatus == ps[i-1].UserStatus {
				dupWrites++
				continue
			}
			distinct++
		}
		double += max(0, distinct-len(u.sent))
	}
	faults := *soakKills
	if *soakOutage > 0 {
		faults++
	}
	if dupWrites > 16*faults {
		t.Errorf("%d duplicate PBX writes: more than the %d faults can explain", dupWrites, faults)
	}
	deadLettered := len(q.DeadLetters()) - dead0
	page, err := queueParked(e)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lat)
	pct := func(p int) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*p/100)]
	}
	fmt.Fprintf(os.Stderr, "soak: in %d, accepted %d (POSTs retried after 503: %d), PBX pushes %d for %d users, "+
		"lost %d users, double-applied %d, duplicate PBX writes at faults %d, dead-lettered %d, parked %d; POST p50 %s p99 %s; sent in %s, settled in %s; "+
		"Graph reads %d; handler peak RSS %d MiB; faults: %d kills, storage out %s, %d PBX, %d Graph\n",
		n, accepted.Load(), retried503.Load(), applied, users, lost, double, dupWrites, deadLettered, page,
		pct(50).Round(100*time.Microsecond), pct(99).Round(100*time.Microsecond), sendTime.Round(time.Millisecond),
		total.Round(time.Millisecond), e.graph.Count(http.MethodPost, "/communications/getPresencesByUserId")-reads0, peakRSS.Load()>>20, *soakKills, *soakOutage, *soakPBX, *soakGraph)
	if sent.Load() != int64(n) || accepted.Load() != int64(n) {
		t.Errorf("accepted %d of %d", accepted.Load(), n)
	}
	if double > 0 || deadLettered > 0 || page > 0 {
		t.Errorf("double-applied %d, dead-lettered %d, parked %d: want none", double, deadLettered, page)
	}
	if *soakKills > 0 && !strings.Contains(e.s.logs.String(), "handler") {
		t.Error("no handler restart in the log")
	}
}

func queueParked(e *presenceEnv) (int, error) {
	page, err := queue.OpenParkingLot(e.s.store.DB()).List(context.Background(), e.tenant, nil)
	return len(page.Items), err
}

// sampleRSS records the largest resident set of the handler process (whichever one runs) until stopped.
func sampleRSS(pid func() int, peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid()) + "/status")
			if err != nil {
				continue
			}
			for _, line := range bytes.Split(b, []byte("\n")) {
				if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
					if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb<<10 > peak.Load() {
						peak.Store(kb << 10)
					}
				}
			}
		}
	}()
	return func() { close(done) }
}
