package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/app/appreg"
)

// The operator's path: az's JSON of the registration and of Graph's service principal in, the PATCH
// body out on stdout (nothing else there, so it can go straight to a file) and the changes on stderr.
func TestAppRegistrationPatch(t *testing.T) {
	const fixtures = "../../internal/app/appreg/testdata/"
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := realMain(context.Background(), append([]string{"app-registration"}, args...), nil, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	base := []string{"patch", "--app", fixtures + "app-new.json", "--graph-sp", fixtures + "graph-sp.json", "--public-base", "https://connect.example.eu"}

	out, errOut, err := run(append(base, "--capabilities", "rooms")...)
	if err != nil {
		t.Fatalf("patch: %v (%s)", err, errOut)
	}
	var p appreg.Patch
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("stdout is not the patch JSON: %v\n%s", err, out)
	}
	graph := p.RequiredResourceAccess[len(p.RequiredResourceAccess)-1]
	// core (User.Read.All, openid, profile) and rooms (Place.Read.All a…03, Calendars.Read a…04).
	want := []appreg.ResourceAccess{{ID: "a0000000-0000-4000-8000-000000000001", Type: appreg.Role},
		{ID: "b0000000-0000-4000-8000-000000000001", Type: appreg.Scope}, {ID: "b0000000-0000-4000-8000-000000000002", Type: appreg.Scope},
		{ID: "a0000000-0000-4000-8000-000000000003", Type: appreg.Role}, {ID: "a0000000-0000-4000-8000-000000000004", Type: appreg.Role}}
	if graph.ResourceAppID != appreg.GraphAppID || !slices.Equal(graph.ResourceAccess, want) {
		t.Errorf("Graph permissions = %+v, want %+v", graph, want)
	}
	if !strings.Contains(errOut, "- Microsoft Graph application permission Calendars.Read added") ||
		!strings.Contains(errOut, "User.Read removed") {
		t.Errorf("stderr = %q, want the changes listed", errOut)
	}

	// Applied (as Graph would) and asked again: nothing left to change.
	var app map[string]any
	b, _ := os.ReadFile(fixtures + "app-new.json")
	if err := json.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	var patch map[string]any
	_ = json.Unmarshal([]byte(out), &patch)
	for k, v := range patch {
		if k == "web" || k == "api" {
			for kk, vv := range v.(map[string]any) {
				app[k].(map[string]any)[kk] = vv
			}
			continue
		}
		app[k] = v
	}
	applied := filepath.Join(t.TempDir(), "app.json")
	b, _ = json.Marshal(app)
	if err := os.WriteFile(applied, b, 0o600); err != nil {
		t.Fatal(err)
	}
	again := slices.Clone(base)
	again[2] = applied
	if _, errOut, err := run(append(again, "--capabilities", "rooms")...); err != nil || !strings.Contains(errOut, "already holds") {
		t.Errorf("second patch: %v, stderr %q; want nothing to change", err, errOut)
	}

	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"patch", "--app", fixtures + "app-new.json"}, true, "are required"},
		{append(slices.Clone(base), "--capabilities", "rooms,phones"), true, `unknown capability "phones"`},
		{[]string{"patch", "--app", fixtures + "graph-sp.json", "--graph-sp", fixtures + "graph-sp.json", "--public-base", "https://x.example"}, false, "not ConnectHub's registration"},
		{[]string{"patch", "--app", fixtures + "app-new.json", "--graph-sp", fixtures + "app-new.json", "--public-base", "https://x.example"}, false, "not Microsoft Graph's"},
		{[]string{"patch", "--app", "missing.json", "--graph-sp", fixtures + "graph-sp.json", "--public-base", "https://x.example"}, false, "missing.json"},
	} {
		_, _, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, new(usageError)) != tc.usage {
			t.Errorf("%v: err = %v, want it to say %q (usage error: %v)", tc.args, err, tc.want, tc.usage)
		}
	}
}

func TestAppRegistrationPermissions(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := realMain(context.Background(), []string{"app-registration", "permissions", "--capabilities", "crm"}, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(appreg.Select([]appreg.Capability{appreg.CRM})) {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, p := range appreg.Select([]appreg.Capability{appreg.CRM}) {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, p.Value+" ") }) {
			t.Errorf("no line for %s:\n%s", p.Value, out.String())
		}
	}
	if strings.Contains(out.String(), "Place.Read.All") || !strings.Contains(out.String(), "Contacts.Read when every user syncs to-crm only") {
		t.Errorf("output:\n%s", out.String())
	}
}
