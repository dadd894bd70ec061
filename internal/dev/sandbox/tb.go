// Package sandbox runs the project's fakes of Entra ID, Microsoft Graph, the identity platform's signing
// side and RingCentral as one local process beside `make sandbox`'s devhost, with a small control API for
// what a real tenant or PBX would do by itself (a user signs in, a presence changes, an extension is
// added). The fakes are the ones the tests use, so the sandbox answers exactly as the tests' services do.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// TB lets the fakes, which take a testing.TB, run in a binary. It embeds the interface only to satisfy
// its unexported method; every method the fakes call is overridden here, and any other one panics on
// the nil interface, which is the loud failure wanted if a fake starts to need more.
type TB struct {
	testing.TB

	// Out receives the log lines (default os.Stderr); Exit ends the process after Fatal (default os.Exit).
	Out  io.Writer
	Exit func(code int)

	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

// NewTB is a TB logging to stderr.
func NewTB() *TB { return &TB{Out: os.Stderr, Exit: os.Exit} }

func (t *TB) Helper()      {}
func (t *TB) Name() string { return "sandbox" }

func (t *TB) Context() context.Context { return context.Background() }
func (t *TB) Output() io.Writer        { return t.Out }

// Cleanup registers f for Close, which runs the functions last registered first, as testing does.
func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// Close runs the cleanups and removes the temporary folders.
func (t *TB) Close() {
	t.mu.Lock()
	fs, dirs := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

func (t *TB) Log(args ...any)                 { fmt.Fprintln(t.Out, append([]any{"sandbox:"}, args...)...) }
func (t *TB) Logf(format string, args ...any) { fmt.Fprintf(t.Out, "sandbox: "+format+"\n", args...) }

// Error and Errorf log and mark the sandbox failed; the fakes use them for a request they cannot answer.
func (t *TB) Error(args ...any)                 { t.Log(args...); t.Fail() }
func (t *TB) Errorf(format string, args ...any) { t.Logf(format, args...); t.Fail() }

func (t *TB) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

func (t *TB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// FailNow ends the process: a fake that cannot go on (a key it cannot generate) leaves nothing to serve.
// Cleanups are not run, since FailNow may be called from a fake's own request handler, whose server's
// Close would wait for that very request.
func (t *TB) FailNow() {
	t.Fail()
	t.Exit(1)
}

func (t *TB) Fatal(args ...any)                 { t.Log(args...); t.FailNow() }
func (t *TB) Fatalf(format string, args ...any) { t.Logf(format, args...); t.FailNow() }

// TempDir is a fresh folder removed by Close.
func (t *TB) TempDir() string {
	d, err := os.MkdirTemp("", "connecthub-sandbox-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirs = append(t.dirs, d)
	return d
}
