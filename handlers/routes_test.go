package handlers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

type functionJSON struct {
	Bindings []struct {
		Type      string `json:"type"`
		Direction string `json:"direction"`
		Name      string `json:"name"`
	} `json:"bindings"`
}

// Every functions/<Name>/function.json has a route and every route a folder, with the same trigger type
// and binding names: a mismatch would make the real host send data under a name the code never reads.
func TestRoutesMatchFunctionFolders(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("../functions/*/function.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no function.json found: %v", err)
	}
	folders := map[string]functionJSON{}
	for _, p := range dirs {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f functionJSON
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		folders[filepath.Base(filepath.Dir(p))] = f
	}
	routes := routeTable(t, &App{})
	seen := map[string]bool{}
	for _, r := range routes {
		if seen[r.Name] {
			t.Errorf("route %s declared twice", r.Name)
		}
		seen[r.Name] = true
		f, ok := folders[r.Name]
		if !ok {
			t.Errorf("route %s has no functions/%s/function.json", r.Name, r.Name)
			continue
		}
		var trigger, out string
		var triggerName string
		for _, b := range f.Bindings {
			switch {
			case b.Direction == "in" && (b.Type == azfunc.HTTPTrigger || b.Type == azfunc.ServiceBusTrigger || b.Type == azfunc.TimerTrigger):
				trigger, triggerName = b.Type, b.Name
			case b.Type == "http" && b.Direction == "out":
				out = b.Name
			}
		}
		if trigger != r.Trigger {
			t.Errorf("%s: function.json trigger %q, route %q", r.Name, trigger, r.Trigger)
		}
		if triggerName != r.Binding {
			t.Errorf("%s: function.json trigger binding %q, route reads %q", r.Name, triggerName, r.Binding)
		}
		if out != r.Out {
			t.Errorf("%s: function.json http output %q, route writes %q", r.Name, out, r.Out)
		}
	}
	var orphans []string
	for name := range folders {
		if !seen[name] {
			orphans = append(orphans, name)
		}
	}
	sort.Strings(orphans)
	if len(orphans) > 0 {
		t.Errorf("function folders without a route: %v", orphans)
	}
}
