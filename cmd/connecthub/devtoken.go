package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/dev/devhost"
)

// devToken asks the running devhost's development token issuer for an access token, for curl on
// `make run`. The key that signs it lives in that devhost's memory: a token dies with the devhost.
func (c *cli) devToken(ctx context.Context, args []string) error {
	fs, sf := c.newLocalFlags("dev-token", "dev-token --tenant T --user U [--role R]... [--app] [--global-admin] [--minutes 60]",
		"Prints an access token for ConnectHub's admin API, signed by the development issuer of the devhost\n"+
			"that `make run` started (local only; in Azure tokens come from Entra ID). Use it as\n"+
			"  curl -H \"Authorization: Bearer $(bin/connecthub dev-token --tenant $T --user $U --role ConnectHub.TenantAdmin)\" ...",
		"make run's local settings (the devhost master key and port)")
	tenant := fs.String("tenant", "", "the caller's tenant id (tid)")
	user := fs.String("user", "", "the caller's object id (oid): a user, or with --app the app's service principal")
	var roles multiFlag
	fs.Var(&roles, "role", "an app role to include (repeat): ConnectHub.TenantAdmin, ConnectHub.Operator, ConnectHub.SecurityOfficer, ConnectHub.Automation")
	app := fs.Bool("app", false, "an app-only (client credentials) token")
	globalAdmin := fs.Bool("global-admin", false, "the user holds the Global Administrator directory role")
	minutes := fs.Int("minutes", 60, "lifetime in minutes (1..1440)")
	hostURL := fs.String("host", "", "devhost base URL (default http://127.0.0.1:<Host.LocalHttpPort or 7071>)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tenant == "" || *user == "" {
		return usagef("--tenant and --user are required")
	}
	if _, err := os.Stat(sf.settings); err != nil {
		return usagef("%s not found: dev-token works only on make run's local settings", sf.settings)
	}
	settings, err := devhost.ReadLocalSettings(sf.settings)
	if err != nil {
		return err
	}
	master := settings.Values[devhost.SettingMasterKey]
	if master == "" {
		return fmt.Errorf("%s: %s is not set (make run generates it)", sf.settings, devhost.SettingMasterKey)
	}
	base := *hostURL
	if base == "" {
		port := settings.Host.LocalHTTPPort
		if port == 0 {
			port = 7071
		}
		base = "http://127.0.0.1:" + strconv.Itoa(port)
	}
	body, _ := json.Marshal(devhost.DevTokenRequest{Tenant: *tenant, User: *user, Roles: roles, App: *app,
		GlobalAdmin: *globalAdmin, Minutes: *minutes})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/devissuer/token", bytes.NewReader(body))
	if err != nil {
		return usagef("--host: %v", err)
	}
	req.Header.Set("x-functions-key", master)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask devhost for a token (is make run running?): %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("devhost refused: %d %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		return errors.New("devhost answered no token")
	}
	fmt.Fprintln(c.stdout, out.AccessToken)
	return nil
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
