package e2e

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/dev/storetest"
)

// The webhook benchmarks measure the full HTTP path as Graph sees it: devhost → handler envelope →
// parse → subscription lookup (cached) → clientState → validation token → queue hand-off → 202. The
// queue consumer is switched off (AzureWebJobs.ProcessNotification.Disabled) so only the webhook is
// measured.
func benchStack(b *testing.B) *stack {
	return startStack(b, func(s map[string]string) {
		s["AzureWebJobs.ProcessNotification.Disabled"] = "true"
		if *handlerCPUProfile != "" {
			s["CONNECTHUB_CPUPROFILE"] = *handlerCPUProfile
		}
	})
}

// bodies pre-builds distinct rich notification POSTs (encryption is Graph's cost, not ours).
func (s *stack) bodies(b *testing.B, items, n int) []string {
	tenant := storetest.NewTenantID(b)
	sub := newSubscriptionID(b)
	state := s.subscribe(b, tenant, sub)
	out := make([]string, n)
	for i := range out {
		out[i] = strings.ReplaceAll(s.richBody(b, tenant, sub, state, items), "user-", fmt.Sprintf("u%d-", i))
	}
	return out
}

func BenchmarkWebhookLatency(b *testing.B) {
	s := benchStack(b)
	url := s.host.URL() + "/api/graph/notifications"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, items := range []int{1, 50} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			bodies := s.bodies(b, items, 64)
			var lat []time.Duration
			b.ResetTimer()
			i := 0
			for b.Loop() {
				start := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode != http.StatusAccepted {
					b.Fatalf("status %d", resp.StatusCode)
				}
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkWebhookThroughput posts 50-item bodies from several clients at once and reports how many
// notifications per second the webhook accepts, in total and per core of this machine.
func BenchmarkWebhookThroughput(b *testing.B) {
	s := benchStack(b)
	url := s.host.URL() + "/api/graph/notifications"
	bodies := s.bodies(b, 50, 64)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[int(next.Add(1))%len(bodies)]
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
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
		}
	})
	perSec := float64(b.N*50) / time.Since(start).Seconds()
	b.ReportMetric(perSec, "notifications/s")
	b.ReportMetric(perSec/float64(runtime.NumCPU()), "notifications/s/core")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
