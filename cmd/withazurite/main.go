// Command withazurite runs a command with the pinned Azurite Table service beside it, and stops Azurite
// when the command ends, fails or is interrupted. `make test` and `make run` use it so that neither leaves
// an emulator behind.
//
//	withazurite [-port 10002] [-location .azurite] [-tls] -- go test ./...
//
// The command sees CONNECTHUB_TEST_TABLES (a connection string for the plain-HTTP instance) and, with -tls,
// CONNECTHUB_TEST_TABLES_OAUTH_URL and CONNECTHUB_TEST_TABLES_CA (a second instance over HTTPS with
// Azurite's OAuth, for token-credential clients).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/connecthub/connecthub/internal/dev/azurite"
)

func main() {
	code, err := realMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "withazurite:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func realMain() (int, error) {
	bin := flag.String("bin", "tools/node_modules/.bin/azurite-table", "path to azurite-table")
	port := flag.Int("port", 0, "table port for the plain instance (0 = a free port)")
	location := flag.String("location", "", "workspace folder (empty = in-memory)")
	withTLS := flag.Bool("tls", false, "also start an HTTPS+OAuth instance for token-credential tests")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		return 2, errors.New("usage: withazurite [flags] -- command [args...]")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	plain, err := azurite.Start(ctx, azurite.Options{Bin: *bin, Port: *port, Location: *location})
	if err != nil {
		return 1, err
	}
	defer plain.Stop()
	env := append(os.Environ(), "CONNECTHUB_TEST_TABLES="+plain.ConnectionString())
	if *withTLS {
		dir, err := os.MkdirTemp("", "azurite-tls-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		secure, err := azurite.Start(ctx, azurite.Options{Bin: *bin, TLS: true, Dir: dir})
		if err != nil {
			return 1, err
		}
		defer secure.Stop()
		env = append(env, "CONNECTHUB_TEST_TABLES_OAUTH_URL="+secure.AccountURL(), "CONNECTHUB_TEST_TABLES_CA="+secure.CAFile)
	}
	fmt.Fprintf(os.Stderr, "withazurite: Azurite Table on 127.0.0.1:%d\n", plain.Port)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdin, os.Stdout, os.Stderr, env
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	// Pass Ctrl-C/SIGTERM on to the command and let it finish its own shutdown before Azurite goes.
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}
