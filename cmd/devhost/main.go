// Command devhost runs ConnectHub locally the way the Azure Functions host runs it in Azure. It is for
// development and tests only; see internal/devhost.
//
//	devhost [-root .] [-settings local.settings.json] [-handler bin/handler] [-addr 127.0.0.1:7071]
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/connecthub/connecthub/internal/dev/devhost"
	"github.com/connecthub/connecthub/internal/platform/config"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
	"github.com/connecthub/connecthub/internal/platform/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := realMain(ctx, log); err != nil {
		log.Error("devhost stopped", "error", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, log *slog.Logger) error {
	root := flag.String("root", ".", "function app root (host.json, functions/)")
	settingsPath := flag.String("settings", "local.settings.json", "local settings file")
	handler := flag.String("handler", "", "handler executable (default: host.json defaultExecutablePath under root)")
	addr := flag.String("addr", "", "listen address (default 127.0.0.1:<Host.LocalHttpPort or 7071>)")
	flag.Parse()

	abs, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	settings, err := devhost.ReadLocalSettings(*settingsPath)
	if err != nil {
		return err
	}
	if *addr == "" {
		port := settings.Host.LocalHTTPPort
		if port == 0 {
			port = 7071
		}
		*addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if *handler != "" {
		if *handler, err = filepath.Abs(*handler); err != nil {
			return err
		}
	}
	h, err := devhost.New(devhost.Options{
		AppRoot: abs, HandlerPath: *handler, Addr: *addr, Settings: settings.Values,
		FunctionKey: settings.Values[devhost.SettingFunctionKey], MasterKey: settings.Values[devhost.SettingMasterKey],
		AppCertificate: appCertificate(abs, settings.Values), Log: log,
	})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nConnectHub devhost (development only) on %s\n", h.URL())
	for _, f := range h.App().Functions {
		t := f.Trigger()
		switch t.Type {
		case "httpTrigger":
			fmt.Fprintf(os.Stderr, "  %-22s %v %s/%s/%s\n", f.Name, t.Methods, h.URL(), h.App().RoutePrefix, t.Route)
		case "timerTrigger":
			fmt.Fprintf(os.Stderr, "  %-22s timer %s (POST %s/admin/functions/%s)\n", f.Name, t.Schedule, h.URL(), f.Name)
		default:
			fmt.Fprintf(os.Stderr, "  %-22s queue %s\n", f.Name, t.QueueName)
		}
	}
	<-ctx.Done()
	log.Info("stopping")
	h.Stop()
	return nil
}

// appCertificate reads the app's client certificate from the local secret file named by the handler's
// settings, at each sign-in (the handler creates it at its first start, after devhost's). It is nil
// without a local secret file.
func appCertificate(root string, settings map[string]string) func() (*x509.Certificate, error) {
	file, key := settings[config.KeyLocalSecretsFile], settings[config.KeyLocalSecretsKey]
	if file == "" || key == "" {
		return nil
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(root, file)
	}
	name := settings[config.KeyAppClientCertName]
	if name == "" {
		name = secrets.AppClientCertName
	}
	return func() (*x509.Certificate, error) {
		store, err := secrets.NewFile(file, key)
		if err != nil {
			return nil, err
		}
		pemText, err := store.Get(context.Background(), name)
		if err != nil {
			return nil, err
		}
		cert, _, err := graphcrypto.ParseCertificate([]byte(pemText), "")
		return cert, err
	}
}
