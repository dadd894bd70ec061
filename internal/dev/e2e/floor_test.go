package e2e

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/dev/storetest"
)

// handlerCPUProfile, when set, makes the benchmarks' handler write a CPU profile of its whole run there
// (CONNECTHUB_CPUPROFILE); go test's own -cpuprofile covers devhost, which runs in the test process.
var handlerCPUProfile = flag.String("handler.cpuprofile", "", "write the handler's CPU profile to this file")

// loadClients is how many connections WebhookVersusFloor posts from at once: 16 is the figure;
// fewer or more show how its latencies follow the number of requests waiting for two cores.
var loadClients = flag.Int("webhook.clients", 16, "connections the webhook benchmark's load generator posts from")

// BenchmarkWebhookVersusFloor posts the same bodies from 16 connections (-webhook.clients), in one run,
// to the webhook through devhost, straight to the handler (the envelopes devhost would send) and to a
// bare net/http server that reads the body and answers 202 (the floor: what any Go webhook pays for
// HTTP alone, testdata/floor), and reports all three and the ratios to the floor, so that a change to
// the webhook's path is judged against the floor of the same machine and moment, not a figure from
// another day. Scenarios: the validation handshake, one item, 50 items accepted and queued, and 50
// items with the wrong clientState (what a forger's POST costs).
//
// The load generator is a process of its own (testdata/loadgen), as wrk was when the figures
// were taken. CPU per request is read from /proc/<pid>/task/*/schedstat before and after each run, for
// the handler, the floor, the load generator and this process, which is devhost.
func BenchmarkWebhookVersusFloor(b *testing.B) {
	s := benchStack(b)
	floorURL, floorPID := startFloor(b)
	gen := startLoadgen(b)
	tenant := storetest.NewTenantID(b)
	sub := newSubscriptionID(b)
	state := s.subscribe(b, tenant, sub)
	for _, sc := range []struct {
		name, state string
		items       int    // 0: the validation handshake, an empty POST answered 200 with the token
		query       string // added to the webhook's URL
	}{
		{name: "handshake", query: "?validationToken=Validation%3A%20Testing%20client"},
		{name: "1-item", state: state, items: 1},
		{name: "accepted", state: state, items: 50},
		{name: "wrong-clientState", state: "not-" + state, items: 50},
	} {
		b.Run(sc.name, func(b *testing.B) {
			bodies := []string{""}
			want := http.StatusOK
			if sc.items > 0 {
				bodies, want = make([]string, 64), http.StatusAccepted
				for i := range bodies {
					bodies[i] = strings.ReplaceAll(s.richBody(b, tenant, sub, sc.state, sc.items), "user-", fmt.Sprintf("u%d-", i))
				}
			}
			// Straight to the handler: the envelopes devhost would send, posted to the handler itself
			// (answered 200 with the function's own status inside), so the handler's figures are seen
			// without devhost's HTTP front.
			envelopes := make([]string, len(bodies))
			for i, body := range bodies {
				r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/graph/notifications"+sc.query, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				env, err := s.host.HTTPInvocation("GraphWebhook", r, []byte(body), nil)
				if err != nil {
					b.Fatal(err)
				}
				envelopes[i] = string(env)
			}
			// Each round posts to the three in turn; the figures are of all rounds together, so
			// -benchtime Nx averages N rounds taken side by side.
			var hook, direct, bare loadRun
			for b.Loop() {
				hook.add(gen.post(b, s.host.URL()+"/api/graph/notifications"+sc.query, bodies, s.host.HandlerPID(), want))
				direct.add(gen.post(b, s.host.HandlerURL()+"/GraphWebhook", envelopes, s.host.HandlerPID(), http.StatusOK))
				bare.add(gen.post(b, floorURL, bodies, floorPID, http.StatusAccepted))
			}
			b.ReportMetric(direct.perSec(), "handler-req/s")
			b.ReportMetric(ms(direct.pct(50)), "handler-p50-ms")
			b.ReportMetric(ms(direct.pct(99)), "handler-p99-ms")
			b.ReportMetric(ms(direct.serverCPU()), "handler-direct-cpu-ms/req")
			b.ReportMetric(hook.perSec(), "webhook-req/s")
			b.ReportMetric(ms(hook.pct(50)), "webhook-p50-ms")
			b.ReportMetric(ms(hook.pct(99)), "webhook-p99-ms")
			b.ReportMetric(bare.perSec(), "floor-req/s")
			b.ReportMetric(ms(bare.pct(50)), "floor-p50-ms")
			b.ReportMetric(ms(bare.pct(99)), "floor-p99-ms")
			b.ReportMetric(bare.perSec()/hook.perSec(), "floor/webhook-req/s")
			b.ReportMetric(ms(hook.serverCPU()), "handler-cpu-ms/req")
			b.ReportMetric(ms(bare.serverCPU()), "floor-cpu-ms/req")
			b.ReportMetric(float64(hook.serverCPU())/float64(bare.serverCPU()), "handler/floor-cpu")
			b.ReportMetric(float64(hook.serverSys)/float64(hook.serverTotal), "handler-kernel-share")
			b.ReportMetric(ms(hook.perReq(hook.hostTotal)), "devhost-cpu-ms/req")
			b.ReportMetric(ms(hook.perReq(hook.genTotal)), "loadgen-cpu-ms/req")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// loadRun is one or more runs of loadgen.post: the requests' latencies, the time they took, and the CPU
// that the server process, this process (devhost, when the server is the webhook) and the load generator
// spent on them.
type loadRun struct {
	lat                              []time.Duration // sorted
	elapsed                          time.Duration
	serverTotal, hostTotal, genTotal time.Duration
	serverSys                        time.Duration // of serverTotal, in the kernel (ticks of 10 ms)
}

func (r *loadRun) add(o loadRun) {
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	r.elapsed += o.elapsed
	r.serverTotal += o.serverTotal
	r.hostTotal += o.hostTotal
	r.genTotal += o.genTotal
	r.serverSys += o.serverSys
}

func (r *loadRun) perSec() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// pct is the p-th percentile latency.
func (r *loadRun) pct(p int) time.Duration { return r.lat[len(r.lat)*p/100] }

// perReq is a CPU total per request.
func (r *loadRun) perReq(total time.Duration) time.Duration { return total / time.Duration(len(r.lat)) }
func (r *loadRun) serverCPU() time.Duration                 { return r.perReq(r.serverTotal) }

// loadgen is testdata/loadgen, running: one process for the benchmark's every run.
type loadgen struct {
	pid int
	in  io.Writer
	out *bufio.Reader
}

func startLoadgen(b *testing.B) *loadgen {
	pid, in, out := startHelper(b, "internal/dev/e2e/testdata/loadgen")
	return &loadgen{pid: pid, in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

// startHelper runs the testdata program pkg, a process of its own, with pipes to its stdin and from its
// stdout, until the benchmark ends.
func startHelper(b *testing.B, pkg string) (pid int, in io.WriteCloser, out io.Reader) {
	cmd := exec.Command(binary(b, pkg))
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err = cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid, in, out
}

// post has the load generator post 640 bodies from -webhook.clients connections to url, all of which
// must be answered with status want; pid is the process that serves them. The CPU figures are read
// around the run only, after the load generator has prepared its requests.
func (g *loadgen) post(b *testing.B, url string, bodies []string, pid, want int) loadRun {
	job, err := json.Marshal(map[string]any{"url": url, "clients": *loadClients, "posts": 640, "want": want, "bodies": bodies})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.in.Write(append(job, '\n')); err != nil {
		b.Fatal(err)
	}
	if line, err := g.out.ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("loadgen: %q, %v", line, err)
	}
	server0, sys0, host0, gen0 := processCPU(b, pid), systemTime(b, pid), processCPU(b, os.Getpid()), processCPU(b, g.pid)
	if _, err := io.WriteString(g.in, "go\n"); err != nil {
		b.Fatal(err)
	}
	line, err := g.out.ReadBytes('\n')
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	run := loadRun{serverTotal: processCPU(b, pid) - server0, serverSys: systemTime(b, pid) - sys0,
		hostTotal: processCPU(b, os.Getpid()) - host0, genTotal: processCPU(b, g.pid) - gen0}
	var res struct {
		Latencies []time.Duration
		Elapsed   time.Duration
		Error     string
	}
	if err := json.Unmarshal(line, &res); err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	if res.Error != "" {
		b.Errorf("loadgen: %s", res.Error)
	}
	if len(res.Latencies) == 0 {
		b.Fatal("no request succeeded")
	}
	slices.Sort(res.Latencies)
	run.lat, run.elapsed = res.Latencies, res.Elapsed
	return run
}

// systemTime is the time process pid has spent in the kernel: stime of /proc/<pid>/stat, in ticks of
// 10 ms (USER_HZ 100), so only a run's total is meaningful.
func systemTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("stat of process %d: %v", pid, err)
	}
	// The fields after the command name, which may hold spaces, end with ')'; stime is the 15th field,
	// the 13th after it.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ticks, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		b.Fatalf("stat of process %d: %q", pid, raw)
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// startFloor runs testdata/floor and returns its URL and process id.
func startFloor(b *testing.B) (string, int) {
	pid, _, out := startHelper(b, "internal/dev/e2e/testdata/floor")
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("floor address: %v", err)
	}
	return "http://" + strings.TrimSpace(addr), pid
}

// processCPU is the CPU that process pid's threads have used: the sum of their run times in
// /proc/<pid>/task/*/schedstat (nanoseconds; /proc/<pid>/stat counts in ticks of 10 ms, too coarse for
// the floor's 30 ms a run). A thread that exits takes its time with it; Go's runtime keeps its threads.
func processCPU(b *testing.B, pid int) time.Duration {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		b.Fatalf("cpu of process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread is gone
		}
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			b.Fatalf("cpu of process %d: schedstat %q", pid, raw)
		}
		sum += time.Duration(ns)
	}
	return sum
}
