// Package devhost is a development host for the ConnectHub custom handler. It is for development and
// tests only — production runs on the real Azure Functions host.
//
// Azure Functions Core Tools cannot be installed offline, so devhost reproduces what the real host does
// for the features this app uses: it reads host.json and functions/*/function.json, starts the handler
// binary with FUNCTIONS_CUSTOMHANDLER_PORT and waits for it, serves HTTP triggers on /api/<route> with
// authLevel honoured, fires timer triggers on their NCRONTAB schedules and on demand
// (POST /admin/functions/<Name>), and keeps in-memory queues with Service Bus semantics (peek-lock,
// delivery count, redelivery, dead-letter after MaxDeliveryCount, duplicate detection, scheduled enqueue,
// sessions). Invocations use the exact envelope of the real host, double encoding included
// (shared/reference/customhandler-protocol.md).
package devhost

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// HostJSON is the part of host.json devhost reads.
type HostJSON struct {
	Version         string `json:"version"`
	FunctionTimeout string `json:"functionTimeout"`
	CustomHandler   struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	Extensions struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
		ServiceBus struct {
			MaxConcurrentCalls    int `json:"maxConcurrentCalls"`
			MaxConcurrentSessions int `json:"maxConcurrentSessions"`
		} `json:"serviceBus"`
	} `json:"extensions"`
}

// Binding is one entry of function.json "bindings".
type Binding struct {
	Type              string   `json:"type"`
	Direction         string   `json:"direction"`
	Name              string   `json:"name"`
	AuthLevel         string   `json:"authLevel"`
	Methods           []string `json:"methods"`
	Route             string   `json:"route"`
	QueueName         string   `json:"queueName"`
	Connection        string   `json:"connection"`
	IsSessionsEnabled bool     `json:"isSessionsEnabled"`
	Schedule          string   `json:"schedule"`
	RunOnStartup      bool     `json:"runOnStartup"`
	DataType          string   `json:"dataType"`
}

// Function is one functions/<Name>/function.json.
type Function struct {
	Name     string
	Bindings []Binding `json:"bindings"`
	Disabled bool      `json:"disabled"`
}

// Trigger returns the function's trigger binding.
func (f *Function) Trigger() *Binding {
	for i := range f.Bindings {
		if strings.HasSuffix(f.Bindings[i].Type, "Trigger") {
			return &f.Bindings[i]
		}
	}
	return nil
}

// HTTPOut returns the name of the http output binding ("$return" allowed), or "".
func (f *Function) HTTPOut() string {
	for _, b := range f.Bindings {
		if b.Type == "http" && b.Direction == "out" {
			return b.Name
		}
	}
	return ""
}

// App is a loaded function app folder.
type App struct {
	Root            string
	Host            HostJSON
	Functions       []*Function
	FunctionTimeout time.Duration
	RoutePrefix     string
}

// LoadApp reads host.json and every functions/*/function.json under root. The real host looks for
// function folders beside host.json; this repository keeps them under functions/ and `make package`
// lays them out flat, so both layouts are accepted.
func LoadApp(root string) (*App, error) {
	raw, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("read host.json: %w", err)
	}
	app := &App{Root: root, RoutePrefix: "api", FunctionTimeout: 30 * time.Minute}
	if err := json.Unmarshal(raw, &app.Host); err != nil {
		return nil, fmt.Errorf("parse host.json: %w", err)
	}
	if app.Host.Version != "2.0" {
		return nil, fmt.Errorf("host.json: version must be \"2.0\", got %q", app.Host.Version)
	}
	if app.Host.CustomHandler.Description.DefaultExecutablePath == "" {
		return nil, fmt.Errorf("host.json: customHandler.description.defaultExecutablePath is required")
	}
	if p := app.Host.Extensions.HTTP.RoutePrefix; p != nil {
		app.RoutePrefix = strings.Trim(*p, "/")
	}
	if t := app.Host.FunctionTimeout; t != "" {
		d, err := parseTimeSpan(t)
		if err != nil {
			return nil, fmt.Errorf("host.json functionTimeout: %w", err)
		}
		app.FunctionTimeout = d
	}
	matches, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil {
		return nil, err
	}
	flat, _ := filepath.Glob(filepath.Join(root, "*", "function.json"))
	matches = append(matches, flat...)
	seen := map[string]bool{}
	for _, m := range matches {
		name := filepath.Base(filepath.Dir(m))
		if seen[name] {
			return nil, fmt.Errorf("function %s declared twice", name)
		}
		seen[name] = true
		raw, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		f := &Function{Name: name}
		if err := json.Unmarshal(raw, f); err != nil {
			return nil, fmt.Errorf("parse %s: %w", m, err)
		}
		if f.Trigger() == nil {
			return nil, fmt.Errorf("%s: no trigger binding", m)
		}
		app.Functions = append(app.Functions, f)
	}
	if len(app.Functions) == 0 {
		return nil, fmt.Errorf("no functions found under %s", root)
	}
	sort.Slice(app.Functions, func(i, j int) bool { return app.Functions[i].Name < app.Functions[j].Name })
	return app, nil
}

// Function returns the named function or nil.
func (a *App) Function(name string) *Function {
	for _, f := range a.Functions {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// parseTimeSpan parses .NET's "hh:mm:ss" (and "d.hh:mm:ss").
func parseTimeSpan(s string) (time.Duration, error) {
	var days, h, m int
	var sec float64
	if strings.Count(s, ":") != 2 {
		return 0, fmt.Errorf("want hh:mm:ss, got %q", s)
	}
	rest := s
	if i := strings.Index(s, "."); i >= 0 && i < strings.Index(s, ":") {
		if _, err := fmt.Sscanf(s[:i], "%d", &days); err != nil {
			return 0, fmt.Errorf("bad days in %q", s)
		}
		rest = s[i+1:]
	}
	if _, err := fmt.Sscanf(strings.ReplaceAll(rest, ":", " "), "%d %d %g", &h, &m, &sec); err != nil {
		return 0, fmt.Errorf("want hh:mm:ss, got %q", s)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)), nil
}
