// Command sandbox runs local stand-ins for the services ConnectHub talks to — Entra ID (authority and
// admin consent), Microsoft Graph, the identity platform's signing keys, RingCentral and a Salesforce
// org — so that the README's set-up walkthroughs can be followed with curl on one machine. They are the
// fakes the tests use.
//
//	sandbox [-settings local.settings.json] [-out sandbox.settings.json] [-addr 127.0.0.1:7072] [-- command ...]
//
// It writes -out, a copy of -settings whose values point the handler at the fakes, then serves its
// control API on -addr (loopback only) and runs the command, if any (make sandbox runs devhost with the
// written settings); the fakes stop when the command exits or on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/connecthub/connecthub/internal/dev/sandbox"
)

func main() {
	code, err := realMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func realMain() (int, error) {
	settingsPath := flag.String("settings", "local.settings.json", "the local settings to copy")
	outPath := flag.String("out", "sandbox.settings.json", "settings file to write, pointing at the fakes")
	dir := flag.String("dir", ".sandbox", "folder for the authority's TLS certificate")
	addr := flag.String("addr", "127.0.0.1:7072", "control API address (loopback only)")
	public := flag.String("public", "http://127.0.0.1:7071", "the app's public URL (devhost's)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return 2, fmt.Errorf("-addr %q: the control API serves on a loopback address only", *addr)
	}
	file, values, err := readSettings(*settingsPath)
	if err != nil {
		return 1, err
	}
	appID := values["CONNECTHUB_APP_ID"]
	if appID == "" {
		return 1, fmt.Errorf("%s has no CONNECTHUB_APP_ID", *settingsPath)
	}

	tb := sandbox.NewTB()
	defer tb.Close()
	sb := sandbox.Start(tb, appID)
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return 1, fmt.Errorf("create %s: %w", *dir, err)
	}
	caFile, err := filepath.Abs(filepath.Join(*dir, "authority.pem"))
	if err != nil {
		return 1, err
	}
	if err := os.WriteFile(caFile, sb.Auth.CertificatePEM(), 0o600); err != nil {
		return 1, fmt.Errorf("write authority certificate: %w", err)
	}
	if err := writeSettings(*outPath, file, sb.Settings(values, caFile, *public)); err != nil {
		return 1, err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return 1, fmt.Errorf("control API: %w", err)
	}
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	fmt.Fprintf(os.Stderr, "\nConnectHub sandbox (development only): fakes of Entra ID, Graph, RingCentral and Salesforce\n")
	fmt.Fprintf(os.Stderr, "  authority  %s (TLS, certificate in %s)\n", sb.Auth.Host(), caFile)
	fmt.Fprintf(os.Stderr, "  graph      %s\n  idp keys   %s\n  ringcentral %s\n  salesforce %s (the org's login host and API)\n",
		sb.Graph.URL(), sb.IDP.ConfigURL(), sb.RC.URL(), sb.SF.URL())
	fmt.Fprintf(os.Stderr, "  settings   %s (for devhost -settings)\n  control API on http://%s:\n", *outPath, ln.Addr())
	for _, r := range sandbox.Routes {
		fmt.Fprintf(os.Stderr, "    %-6s %-52s %s\n", r.Method, r.Path, r.What)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := flag.Args()
	if len(args) == 0 {
		<-ctx.Done()
		return 0, nil
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	// Pass Ctrl-C/SIGTERM on and let the command shut down before its fakes go.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ctx.Err() != nil {
			return 0, nil // stopped by us
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

// readSettings reads a local.settings.json: the whole document (kept as is) and its Values.
func readSettings(path string) (map[string]json.RawMessage, map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read settings: %w", err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var values map[string]string
	if err := json.Unmarshal(file["Values"], &values); err != nil {
		return nil, nil, fmt.Errorf("parse %s Values: %w", path, err)
	}
	return file, values, nil
}

// writeSettings writes the document with new Values; it holds the local keys, so only the owner reads it.
func writeSettings(path string, file map[string]json.RawMessage, values map[string]string) error {
	v, err := json.Marshal(values)
	if err != nil {
		return err
	}
	out := make(map[string]json.RawMessage, len(file))
	for k, x := range file {
		out[k] = x
	}
	out["Values"] = v
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
