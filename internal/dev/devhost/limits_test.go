package devhost

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestListenerLimits checks the Kestrel-like limits with short test values: the answers, not their timing.
func TestListenerLimits(t *testing.T) {
	h, _ := startHost(t, func(o *Options) {
		o.Limits = Limits{MaxRequestBody: 1024, HeaderTimeout: 200 * time.Millisecond, RequestTimeout: 300 * time.Millisecond}
	})
	webhook := h.URL() + "/api/graph/notifications"

	t.Run("body over the limit is 413, declared or not", func(t *testing.T) {
		resp, err := http.Post(webhook, "application/json", strings.NewReader(strings.Repeat("x", 2048)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("declared 2 KB = %d, want 413", resp.StatusCode)
		}
		// Chunked: no Content-Length to refuse up front, so the cap applies while reading.
		resp, err = http.Post(webhook, "application/json", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked 2 KB = %d, want 413", resp.StatusCode)
		}
		// At the limit it is the handler's business (a validation request, which it answers 200).
		resp, err = http.Post(webhook+"?validationToken=t", "text/plain", strings.NewReader(strings.Repeat("y", 1024)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a body at the limit = %d, want the handler's 200", resp.StatusCode)
		}
	})

	t.Run("headers never finished: the connection is closed", func(t *testing.T) {
		c := dial(t, h)
		if _, err := io.WriteString(c, "POST /api/graph/notifications HTTP/1.1\r\nHost: devhost\r\n"); err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(c) // returns when the server closes; the conn deadline only stops a broken test
		if err != nil {
			t.Fatalf("connection not closed: %v", err)
		}
		if len(raw) > 0 && !strings.HasPrefix(string(raw), "HTTP/1.1 408") {
			t.Errorf("answer to unfinished headers = %q, want none or 408", raw)
		}
	})

	t.Run("body sent too slowly is 408", func(t *testing.T) {
		c := dial(t, h)
		if _, err := io.WriteString(c, "POST /api/graph/notifications HTTP/1.1\r\nHost: devhost\r\nContent-Length: 100\r\n\r\nonly part"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Errorf("slow body = %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
		}
	})
}

func dial(t *testing.T, h *Host) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.mainAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}
