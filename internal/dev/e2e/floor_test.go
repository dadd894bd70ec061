package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkWebhookVersusFloor posts the same 50-item bodies from 16 clients, in one run, to the webhook
// through devhost and to a bare net/http handler that reads the body and answers 202 (the floor: what
// any Go webhook pays for HTTP alone), and reports both and their ratio, so that a change to the
// webhook's path is judged against the floor of the same machine and moment, not a figure from
// another day.
func BenchmarkWebhookVersusFloor(b *testing.B) {
	s := benchStack(b)
	bodies := s.bodies(b, 50, 64)
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(floor.Close)
	const clients, posts = 16, 640
	run := func(url string) (perSec float64, p50, p99 time.Duration) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for c := range clients {
			wg.Go(func() {
				for i := c; i < posts; i += clients {
					t := time.Now()
					resp, err := client.Post(url, "application/json", strings.NewReader(bodies[i%len(bodies)]))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		perSec = float64(len(lat)) / time.Since(start).Seconds()
		slices.Sort(lat)
		if len(lat) == 0 {
			b.Fatal("no request succeeded")
		}
		return perSec, lat[len(lat)/2], lat[len(lat)*99/100]
	}
	var hook, bare float64
	var hp50, hp99, bp50, bp99 time.Duration
	for b.Loop() {
		hook, hp50, hp99 = run(s.host.URL() + "/api/graph/notifications")
		bare, bp50, bp99 = run(floor.URL)
	}
	b.ReportMetric(hook, "webhook-req/s")
	b.ReportMetric(ms(hp50), "webhook-p50-ms")
	b.ReportMetric(ms(hp99), "webhook-p99-ms")
	b.ReportMetric(bare, "floor-req/s")
	b.ReportMetric(ms(bp50), "floor-p50-ms")
	b.ReportMetric(ms(bp99), "floor-p99-ms")
	b.ReportMetric(bare/hook, "floor/webhook-req/s")
	b.ReportMetric(0, "ns/op")
}
