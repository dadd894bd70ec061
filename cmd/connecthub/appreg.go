package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/connecthub/connecthub/internal/app/appreg"
)

// appRegFlags makes the flag set of an app-registration command (no secret store is involved).
func (c *cli) appRegFlags(name, synopsis, about string) (*flag.FlagSet, *string) {
	fs := c.newFlagSet("app-registration "+name, "app-registration "+synopsis, about)
	caps := fs.String("capabilities", "all", "comma list of the capabilities this deployment offers: presence, pbx-to-teams, rooms, crm (core is always in)")
	return fs, caps
}

// appRegPermissions prints the Microsoft Graph permissions the registration asks for, and why.
func (c *cli) appRegPermissions(_ context.Context, args []string) error {
	fs, capsFlag := c.appRegFlags("permissions", "permissions [--capabilities C]",
		"Lists the Microsoft Graph permissions ConnectHub's app registration asks every customer tenant's\n"+
			"admin to consent to, with the capability that needs each and why.")
	if err := parse(fs, args); err != nil {
		return err
	}
	caps, err := appreg.ParseCapabilities(*capsFlag)
	if err != nil {
		return usagef("--capabilities: %v", err)
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PERMISSION\tTYPE\tCAPABILITY\tWHY")
	for _, p := range appreg.Select(caps) {
		kind := "application"
		if p.Kind == appreg.Scope {
			kind = "delegated"
		}
		why := p.Why
		if p.Narrower != "" {
			why += " (narrower: " + p.Narrower + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Value, kind, p.For, why)
	}
	return w.Flush()
}

// appRegPatch prints the PATCH body that brings an app registration in line with appreg, from the JSON
// az prints for the registration and for Microsoft Graph's service principal; what it changes goes to
// stderr. It changes nothing itself: the operator reads the notes, then applies the body with az rest.
func (c *cli) appRegPatch(_ context.Context, args []string) error {
	fs, capsFlag := c.appRegFlags("patch", "patch --app APP.json --graph-sp GRAPH.json --public-base https://HOST [--capabilities C]",
		"Prints the body of PATCH https://graph.microsoft.com/v1.0/applications/<id> that gives the app\n"+
			"registration what ConnectHub needs: Graph permissions (looked up by name in Graph's service\n"+
			"principal), app roles, redirect URIs, identifier URI, token version and the idtyp claim. What the\n"+
			"registration holds for others is kept; Graph permissions ConnectHub does not use are removed.\n"+
			"What changes is listed on stderr. Typical use (README, \"Prerequisites\"):\n"+
			"  az ad app show --id $CONNECTHUB_APP_ID > app.json\n"+
			"  az ad sp show --id 00000003-0000-0000-c000-000000000000 > graph-sp.json\n"+
			"  bin/connecthub app-registration patch --app app.json --graph-sp graph-sp.json --public-base https://connect.example.eu > patch.json\n"+
			"  az rest --method PATCH --uri https://graph.microsoft.com/v1.0/applications/$(az ad app show --id $CONNECTHUB_APP_ID --query id -o tsv) \\\n"+
			"    --headers Content-Type=application/json --body @patch.json")
	appFile := fs.String("app", "", "the registration as `az ad app show --id <client id>` prints it")
	graphFile := fs.String("graph-sp", "", "Microsoft Graph's service principal as `az ad sp show --id "+appreg.GraphAppID+"` prints it")
	base := fs.String("public-base", "", "the deployment's public base URL (CONNECTHUB_PUBLIC_BASE_URL): https://<custom domain>")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *appFile == "" || *graphFile == "" || *base == "" {
		return usagef("--app, --graph-sp and --public-base are required")
	}
	caps, err := appreg.ParseCapabilities(*capsFlag)
	if err != nil {
		return usagef("--capabilities: %v", err)
	}
	var app appreg.Application
	if err := readJSON(*appFile, &app); err != nil {
		return err
	}
	var graph appreg.GraphServicePrincipal
	if err := readJSON(*graphFile, &graph); err != nil {
		return err
	}
	patch, notes, err := appreg.Plan(app, graph, *base, caps)
	if err != nil {
		return err
	}
	if len(notes) == 0 {
		fmt.Fprintln(c.stderr, "the registration already holds what ConnectHub needs; applying the patch changes nothing")
	}
	for _, n := range notes {
		fmt.Fprintln(c.stderr, "- "+n)
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(patch)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
