package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/connecthub/connecthub/internal/dev/devhost"
)

func env(over map[string]string) func(string) (string, bool) {
	base := map[string]string{
		KeyEnvironment: "local", KeyRegion: "westeurope", KeyAppID: "app",
		KeyTablesConnectionString: "x", KeyLocalSecretsFile: "f", KeyLocalSecretsKey: "k",
	}
	for k, v := range over {
		base[k] = v
	}
	return func(k string) (string, bool) { v, ok := base[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		over    map[string]string
		wantErr string
	}{
		{"local defaults", nil, ""},
		{"EU region in another case", map[string]string{KeyRegion: "NorthEurope"}, ""},
		{"non-EU region refused", map[string]string{KeyRegion: "eastus"}, "outside the EU"},
		{"unknown region refused", map[string]string{KeyRegion: "atlantis"}, "unknown region"},
		{"missing region", map[string]string{KeyRegion: ""}, "CONNECTHUB_REGION is required"},
		{"bad environment", map[string]string{KeyEnvironment: "prod"}, "want local or azure"},
		{"hand-off beyond Graph budget", map[string]string{KeyHandoffTimeout: "3s"}, KeyHandoffTimeout},
		{"body cap too small", map[string]string{KeyMaxBodyBytes: "10"}, KeyMaxBodyBytes},
		{"azure refuses keyed connection string", map[string]string{KeyEnvironment: "azure", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb"}, "must not be set in azure mode"},
		{"azure needs https", map[string]string{KeyEnvironment: "azure", KeyTablesConnectionString: "", KeyTablesAccountURL: "http://a", KeyKeyVaultURL: "https://v", KeyServiceBusNamespace: "sb"}, "must be https"},
		{"azure complete", map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0E0E0E0E-0000-4000-8000-0000000000FF", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, ""},
		{"azure needs the operator tenant", map[string]string{KeyEnvironment: "azure", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, KeyOperatorTenantID},
		{"azure refuses the development token issuer", map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0e0e0e0e-0000-4000-8000-0000000000ff", KeyAdminOpenIDConfigURL: "http://127.0.0.1:7071/devissuer/common/v2.0/.well-known/openid-configuration", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, "development issuer is for local use only"},
		{"a CRM notice sender", map[string]string{KeyCRMNoticeSender: "crm-notices@connecthub.example"}, ""},
		{"a CRM notice sender that is a list", map[string]string{KeyCRMNoticeSender: "a@connecthub.example,b@connecthub.example"}, KeyCRMNoticeSender},
		{"a CRM notice sender with a display name", map[string]string{KeyCRMNoticeSender: "ConnectHub <a@connecthub.example>"}, KeyCRMNoticeSender},
		{"a CRM notice sender that is no address", map[string]string{KeyCRMNoticeSender: "notices"}, KeyCRMNoticeSender},
		{"a local fake Salesforce org", map[string]string{KeySalesforceLoginURL: "http://127.0.0.1:7073/"}, ""},
		{"a Salesforce login URL that is no URL", map[string]string{KeySalesforceLoginURL: "login"}, KeySalesforceLoginURL},
		{"azure refuses a Salesforce login URL", map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0e0e0e0e-0000-4000-8000-0000000000ff", KeySalesforceLoginURL: "https://login.salesforce.com", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, "local runs only"},
		{"a local table prefix", map[string]string{KeyTablePrefix: "e2eab12"}, ""},
		{"azure refuses a table prefix", map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0e0e0e0e-0000-4000-8000-0000000000ff", KeyTablePrefix: "x", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, KeyTablePrefix},
		{"azure refuses a loopback https issuer", map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0e0e0e0e-0000-4000-8000-0000000000ff", KeyAdminOpenIDConfigURL: "https://localhost/x", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net", KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}, "local use only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(env(tt.over))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if !EURegions[c.Region] || c.HandoffTimeout != DefaultHandoffTimeout || c.MaxBodyBytes != DefaultMaxBodyBytes {
					t.Errorf("config = %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// local.settings.sample.json lists exactly the keys the handler and devhost read, no more, no less.
func TestSampleSettingsListExactlyTheKeys(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct{ Values map[string]string }
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, k := range Keys {
		if !k.Platform {
			want[k.Name] = true
		}
	}
	for _, k := range devhost.SettingKeys {
		want[k] = true
	}
	var missing, extra []string
	for k := range want {
		if _, ok := sample.Values[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range sample.Values {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("local.settings.sample.json: missing %v, not read by the code %v", missing, extra)
	}
}

// Configuration is read in one place: no other production file calls os.Getenv or os.LookupEnv.
func TestNoEnvironmentReadsOutsideConfig(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`os\.(Getenv|LookupEnv|Environ)\(`)
	allowed := map[string]bool{
		"internal/platform/config/config.go": true, // the one place
		"internal/dev/devhost/supervise.go":  true, // passes the environment on to the child process
		"cmd/withazurite/main.go":            true, // passes the environment on to the wrapped command
		"internal/dev/azurite/azurite.go":    true,
	}
	root := "../../.."
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		// Test helper packages (storetest, ...) read the test harness's variables, not configuration.
		testHelper := strings.HasSuffix(filepath.Base(filepath.Dir(p)), "test")
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || testHelper || allowed[filepath.ToSlash(rel)] {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if re.Match(src) {
			t.Errorf("%s reads the environment; add the key to internal/platform/config instead", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The app settings the Bicep templates give the Function App are keys the handler reads: a setting the
// code ignores is a configuration that silently does nothing.
func TestBicepAppSettingsAreRead(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../../infra/bicep/modules/functionapp.bicep")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, k := range Keys {
		known[k.Name] = true
	}
	re := regexp.MustCompile(`(?m)^\s*((?:CONNECTHUB|GRAPH)_[A-Z0-9_]+)\s*:`)
	found := re.FindAllSubmatch(src, -1)
	if len(found) < 5 {
		t.Fatalf("found only %d app settings in functionapp.bicep; did the layout change?", len(found))
	}
	for _, m := range found {
		if !known[string(m[1])] {
			t.Errorf("functionapp.bicep sets %s, which internal/platform/config does not read", m[1])
		}
	}
}
