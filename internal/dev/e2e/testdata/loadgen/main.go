// Command loadgen is the benchmarks' load generator, a process of its own as wrk is: it posts the same
// bodies from a number of keep-alive connections and reports each request's latency. In the benchmark's
// own process, its goroutines waited in the same run queue as devhost's: a response that had arrived
// was timed only once the client goroutine got a turn, so devhost's load was counted twice in the
// latencies, and its CPU had to be told apart from devhost's by subtraction.
//
// It writes each request as one prepared buffer (headers and body, one write) and reads the answer with
// http.ReadResponse, as wrk does with its own parser: the client's cost stays out of the figures.
//
// Protocol, one JSON line each way on stdin and stdout: a job (url, clients, posts, want, bodies) →
// "ready" once the requests are prepared → "go" → the result (latencies in ns, elapsed ns), and again
// for the next job until stdin ends.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

type job struct {
	URL     string   `json:"url"`
	Clients int      `json:"clients"`
	Posts   int      `json:"posts"`
	Want    int      `json:"want"`
	Bodies  []string `json:"bodies"`
}

type result struct {
	Latencies []int64 `json:"latencies"` // ns, in the order they finished
	Elapsed   int64   `json:"elapsed"`   // ns
	Error     string  `json:"error,omitempty"`
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := json.NewEncoder(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return
		} else if err != nil {
			fail(err)
		}
		var j job
		if err := json.Unmarshal(line, &j); err != nil {
			fail(err)
		}
		reqs, addr, err := prepare(j)
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
			fail(fmt.Errorf("want go, got %q: %v", line, err))
		}
		if err := out.Encode(run(j, reqs, addr)); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

// prepare builds each body's whole request.
func prepare(j job) ([][]byte, string, error) {
	u, err := url.Parse(j.URL)
	if err != nil {
		return nil, "", err
	}
	reqs := make([][]byte, len(j.Bodies))
	for i, body := range j.Bodies {
		head := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		reqs[i] = append([]byte(head), body...)
	}
	return reqs, u.Host, nil
}

func run(j job, reqs [][]byte, addr string) result {
	var (
		mu       sync.Mutex
		lat      = make([]int64, 0, j.Posts)
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := range j.Clients {
		wg.Go(func() {
			err := client(j, reqs, addr, c, func(d time.Duration) {
				mu.Lock()
				lat = append(lat, int64(d))
				mu.Unlock()
			})
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r := result{Latencies: lat, Elapsed: int64(time.Since(start))}
	if firstErr != nil {
		r.Error = firstErr.Error()
	}
	return r
}

// client posts requests c, c+Clients, c+2*Clients... over one keep-alive connection (a new one when the
// server closes it), reporting each latency to done; it stops at the first failure.
func client(j job, reqs [][]byte, addr string, c int, done func(time.Duration)) error {
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := c; i < j.Posts; i += j.Clients {
		t := time.Now()
		if conn == nil {
			var err error
			if conn, err = net.Dial("tcp", addr); err != nil {
				return err
			}
			br = bufio.NewReaderSize(conn, 16<<10)
		}
		status, closing, err := post(conn, br, reqs[i%len(reqs)])
		if err != nil {
			return err
		}
		if status != j.Want {
			return fmt.Errorf("status %d, want %d", status, j.Want)
		}
		done(time.Since(t))
		if closing {
			conn.Close()
			conn = nil
		}
	}
	return nil
}

// post writes one request and reads its answer to the end.
func post(conn net.Conn, br *bufio.Reader, req []byte) (status int, closing bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close, err
}
