// Command handler is the ConnectHub custom handler: the Azure Functions host (or devhost) starts it with
// FUNCTIONS_CUSTOMHANDLER_PORT and sends it one HTTP request per invocation.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/connecthub/connecthub/internal/app"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/platform/config"
)

func main() {
	// The webhook path allocates about 1 MB per 50-item POST and keeps little alive, so the default
	// GOGC=100 collects every few requests; 400 cuts webhook p50 by ~20% here. The soft memory limit
	// keeps the larger heap target far below a Flex Consumption instance's 2 GB.
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(1 << 30)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every line logged with a context carries its function, invocation id and tenant (core.NewLogHandler).
	log := slog.New(core.NewLogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	slog.SetDefault(log)
	if err := realMain(ctx, log); err != nil {
		log.Error("handler stopped", "error", err)
		os.Exit(1)
	}
}

// cpuProfile writes a CPU profile of the run to path (config.KeyCPUProfile, local only; benchmarks:
// go test ./internal/dev/e2e -handler.cpuprofile), when it is set; the returned func ends it.
func cpuProfile(path string, log *slog.Logger) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.Error("cpu profile not started", "error", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

func realMain(ctx context.Context, log *slog.Logger) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	if cfg.Port == 0 {
		return fmt.Errorf("%s is not set: the Functions host (or devhost) starts this binary", config.KeyPort)
	}
	defer cpuProfile(cfg.CPUProfile, log)()
	w, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close(context.Background()) }()
	// A function whose service is not wired stops the handler here, with the function named, instead of
	// answering 503 at call time.
	routes, err := w.App.Routes()
	if err != nil {
		return err
	}
	srv := azfunc.NewServer(routes, cfg.InvocationTimeout, cfg.MaxBodyBytes, log)
	srv.WorkerID = cfg.WorkerID
	return srv.Serve(ctx, cfg.Port, func(addr string) {
		log.Info("handler listening", "addr", addr, "region", cfg.Region, "environment", string(cfg.Environment))
	})
}
