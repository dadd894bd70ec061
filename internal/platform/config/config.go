// Package config reads the handler's configuration from the environment once, at start, into one typed
// struct, and refuses to start on values that would break a promise (a non-EU region, a body cap of zero).
//
// Every key the code reads is declared in Keys below; nothing else in the module calls os.Getenv for
// configuration (a test scans the source), and local.settings.sample.json lists exactly these keys (a
// test compares both directions).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Key names. Names set by the Functions platform itself are marked; the rest are ours.
const (
	KeyPort              = "FUNCTIONS_CUSTOMHANDLER_PORT"      // platform: where the host expects us
	KeyWorkerID          = "FUNCTIONS_CUSTOMHANDLER_WORKER_ID" // platform: this worker process's id
	KeyEnvironment       = "CONNECTHUB_ENVIRONMENT"            // "local" (devhost, Azurite, file secrets) or "azure"
	KeyRegion            = "CONNECTHUB_REGION"                 // Azure region this instance runs in
	KeyAppID             = "CONNECTHUB_APP_ID"                 // our Entra application (client) id
	KeyVersion           = "CONNECTHUB_VERSION"                // release label shown by Health
	KeyInvocationTimeout = "CONNECTHUB_INVOCATION_TIMEOUT"
	KeyHandoffTimeout    = "CONNECTHUB_HANDOFF_TIMEOUT"
	KeyMaxBodyBytes      = "CONNECTHUB_MAX_BODY_BYTES"

	KeyTablesConnectionString = "CONNECTHUB_TABLES_CONNECTION_STRING" // local only (Azurite)
	KeyTablesAccountURL       = "CONNECTHUB_TABLES_ACCOUNT_URL"       // azure: identity auth
	KeyKeyVaultURL            = "CONNECTHUB_KEYVAULT_URL"             // azure
	KeyManagedIdentityID      = "CONNECTHUB_MANAGED_IDENTITY_CLIENT_ID"
	KeyLocalSecretsFile       = "CONNECTHUB_LOCAL_SECRETS_FILE" // local: encrypted file standing in for Key Vault
	KeyLocalSecretsKey        = "CONNECTHUB_LOCAL_SECRETS_KEY"  // local: base64 32-byte key of that file
	KeyServiceBusNamespace    = "ServiceBusConnection__fullyQualifiedNamespace"
	KeyDevhostQueueURL        = "CONNECTHUB_DEVHOST_QUEUE_URL"   // local: set by devhost for its child
	KeyDevhostQueueToken      = "CONNECTHUB_DEVHOST_QUEUE_TOKEN" // local: set by devhost for its child
	KeyCPUProfile             = "CONNECTHUB_CPUPROFILE"          // local: write a CPU profile of the run here
	KeyTablePrefix            = "CONNECTHUB_TABLE_PREFIX"        // local: put before every table name (tests)

	KeyGraphBaseURL    = "GRAPH_BASE_URL"
	KeyOpenIDConfigURL = "CONNECTHUB_OPENID_CONFIGURATION_URL"
	// KeyAdminOpenIDConfigURL is the OpenID configuration whose keys sign the admin API's access tokens:
	// Entra ID's in Azure (the default), devhost's development issuer on make run (devhost sets it).
	KeyAdminOpenIDConfigURL = "CONNECTHUB_ADMIN_OPENID_CONFIGURATION_URL"
	// KeyPortalAuthority is where the Service Manager portal signs people in: Entra ID in Azure (the
	// default, https://login.microsoftonline.com/), devhost's development issuer on make run (devhost
	// sets it).
	KeyPortalAuthority = "CONNECTHUB_PORTAL_AUTHORITY"
	// KeyOperatorTenantID is ConnectHub's own Entra tenant: its users with ConnectHub.* roles are staff.
	KeyOperatorTenantID  = "CONNECTHUB_OPERATOR_TENANT_ID"
	KeyNotificationCerts = "CONNECTHUB_NOTIFICATION_CERT_NAMES" // secret names, current first, then previous
)

// Key describes one configuration key: whether the Functions platform or devhost sets it (so a person
// never writes it into local settings) and what it is for.
type Key struct {
	Name     string
	Platform bool
	Purpose  string
}

// Keys is every configuration key the handler reads: the core ones below and each capability's own.
var Keys = append(append(append(append([]Key{}, coreKeys...), presenceKeys...), tenantKeys...), crmKeys...)

var coreKeys = []Key{
	{KeyPort, true, "port the Functions host gives the custom handler"},
	{KeyWorkerID, true, "id the Functions host gives this worker; answered on GET / so devhost knows it reached its own child"},
	{KeyEnvironment, false, "local or azure: which adapters are wired"},
	{KeyRegion, false, "Azure region of this instance; must be an EU region"},
	{KeyAppID, false, "Entra application id: audience of Graph validation tokens"},
	{KeyVersion, false, "release label reported by Health"},
	{KeyInvocationTimeout, false, "deadline for one invocation inside the handler (Go duration)"},
	{KeyHandoffTimeout, false, "deadline for everything the webhook waits for (storage reads, queue hand-off) before answering 503"},
	{KeyMaxBodyBytes, false, "largest accepted HTTP request body; larger gets 413"},
	{KeyTablesConnectionString, false, "local: Azurite connection string"},
	{KeyTablesAccountURL, false, "azure: table service URL, used with the managed identity"},
	{KeyKeyVaultURL, false, "azure: Key Vault URL"},
	{KeyManagedIdentityID, false, "azure: client id of the user-assigned managed identity"},
	{KeyLocalSecretsFile, false, "local: path of the encrypted secrets file"},
	{KeyLocalSecretsKey, false, "local: base64 key of the encrypted secrets file"},
	{KeyServiceBusNamespace, false, "azure: Service Bus namespace host name"},
	{KeyDevhostQueueURL, true, "local: devhost queue endpoint (set by devhost)"},
	{KeyDevhostQueueToken, true, "local: devhost queue endpoint token (set by devhost)"},
	{KeyCPUProfile, false, "local only: file the handler writes a CPU profile of its whole run to (benchmarks); empty: none"},
	{KeyTablePrefix, false, "local only: letters and digits put before every table name, so stacks sharing one Azurite keep apart (the e2e tests); empty: none"},
	{KeyGraphBaseURL, false, "Microsoft Graph base URL (overridable for tests and sovereign clouds)"},
	{KeyOpenIDConfigURL, false, "OpenID configuration whose keys sign Graph validation tokens"},
	{KeyAdminOpenIDConfigURL, true, "OpenID configuration whose keys sign admin API tokens (Entra ID; devhost's development issuer locally)"},
	{KeyPortalAuthority, true, "identity platform the portal signs people in at (Entra ID; devhost's development issuer locally)"},
	{KeyOperatorTenantID, false, "ConnectHub's own Entra tenant id: its users and apps with ConnectHub.* app roles are staff"},
	{KeyNotificationCerts, false, "secret names of the notification encryption certificates, current first"},
}

// EURegions are the Azure regions inside the EU Data Boundary where ConnectHub may run or keep data.
var EURegions = map[string]bool{
	"northeurope": true, "westeurope": true, "francecentral": true, "francesouth": true,
	"germanywestcentral": true, "germanynorth": true, "swedencentral": true, "swedensouth": true,
	"italynorth": true, "polandcentral": true, "spaincentral": true, "austriaeast": true,
	"belgiumcentral": true, "denmarkeast": true,
}

// knownNonEU are real regions that exist but must be refused; any other name is unknown.
var knownNonEU = map[string]bool{
	"eastus": true, "eastus2": true, "westus": true, "westus2": true, "westus3": true, "centralus": true,
	"uksouth": true, "ukwest": true, "switzerlandnorth": true, "norwayeast": true, "southeastasia": true,
	"australiaeast": true, "japaneast": true, "canadacentral": true, "brazilsouth": true, "centralindia": true,
}

// Environment selects the adapters.
type Environment string

const (
	Local Environment = "local"
	Azure Environment = "azure"
)

// Config is the handler's whole configuration.
type Config struct {
	Port              int
	WorkerID          string
	Environment       Environment
	Region            string
	AppID             string
	Version           string
	InvocationTimeout time.Duration
	HandoffTimeout    time.Duration
	MaxBodyBytes      int64

	TablesConnectionString string
	TablePrefix            string
	TablesAccountURL       string
	KeyVaultURL            string
	ManagedIdentityID      string
	LocalSecretsFile       string
	LocalSecretsKey        string
	ServiceBusNamespace    string
	DevhostQueueURL        string
	DevhostQueueToken      string
	CPUProfile             string

	GraphBaseURL         string
	OpenIDConfigURL      string
	AdminOpenIDConfigURL string
	PortalAuthority      string
	OperatorTenantID     string
	CRMNoticeSender      string // mailbox of the operator tenant that sends CRM sync failure notices; "" sends none
	SalesforceLoginURL   string // local only: where Salesforce token requests go instead of the real hosts
	NotificationCerts    []string

	Presence Presence
	Tenants  Tenants
}

// DefaultNotificationCertName is the Key Vault name of the current notification encryption certificate
// (secrets.NotificationCertName takes its value from here: config imports nothing of the app).
const DefaultNotificationCertName = "notification-encryption-cert"

// Defaults chosen for Graph's budget: a webhook must answer within 3 s, so everything it waits for
// (subscription and tenant reads, the queue hand-off) shares one deadline that gives up well before
// that and answers 503 (Graph retries); 2 s leaves the host, TLS and the network a third of the budget.
// The key keeps its name (HANDOFF) so deployed settings stay valid. One invocation may never run
// longer than the lock and function timeouts of the queues (5 min on Consumption), so 60 s is generous
// but bounded.
const (
	DefaultInvocationTimeout = 60 * time.Second
	DefaultHandoffTimeout    = 2 * time.Second
	DefaultMaxBodyBytes      = 1 << 20
	maxHandoffTimeout        = 2500 * time.Millisecond
)

// FromEnv reads the process environment.
func FromEnv() (Config, error) { return Load(os.LookupEnv) }

// Load reads configuration through lookup (os.LookupEnv in production, a map in tests) and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	var errs []error
	c := Config{
		Environment:            Environment(strings.ToLower(get(KeyEnvironment))),
		Region:                 strings.ToLower(get(KeyRegion)),
		AppID:                  get(KeyAppID),
		Version:                get(KeyVersion),
		TablesConnectionString: get(KeyTablesConnectionString),
		TablePrefix:            get(KeyTablePrefix),
		TablesAccountURL:       get(KeyTablesAccountURL),
		KeyVaultURL:            get(KeyKeyVaultURL),
		ManagedIdentityID:      get(KeyManagedIdentityID),
		LocalSecretsFile:       get(KeyLocalSecretsFile),
		LocalSecretsKey:        get(KeyLocalSecretsKey),
		ServiceBusNamespace:    get(KeyServiceBusNamespace),
		DevhostQueueURL:        get(KeyDevhostQueueURL),
		DevhostQueueToken:      get(KeyDevhostQueueToken),
		CPUProfile:             get(KeyCPUProfile),
		GraphBaseURL:           get(KeyGraphBaseURL),
		OpenIDConfigURL:        get(KeyOpenIDConfigURL),
		AdminOpenIDConfigURL:   get(KeyAdminOpenIDConfigURL),
		PortalAuthority:        get(KeyPortalAuthority),
		OperatorTenantID:       strings.ToLower(get(KeyOperatorTenantID)),
		CRMNoticeSender:        strings.TrimSpace(get(KeyCRMNoticeSender)),
		SalesforceLoginURL:     strings.TrimRight(strings.TrimSpace(get(KeySalesforceLoginURL)), "/"),
	}
	for _, n := range strings.Split(get(KeyNotificationCerts), ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.NotificationCerts = append(c.NotificationCerts, n)
		}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if len(c.NotificationCerts) == 0 {
		c.NotificationCerts = []string{DefaultNotificationCertName}
	}
	if c.GraphBaseURL == "" {
		c.GraphBaseURL = "https://graph.microsoft.com"
	}
	if c.OpenIDConfigURL == "" {
		c.OpenIDConfigURL = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
	}
	if c.AdminOpenIDConfigURL == "" {
		c.AdminOpenIDConfigURL = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
	}
	if c.PortalAuthority == "" {
		c.PortalAuthority = "https://login.microsoftonline.com/"
	}
	if !strings.HasSuffix(c.PortalAuthority, "/") {
		c.PortalAuthority += "/"
	}

	port, err := intOr(get(KeyPort), 0)
	if err != nil || port < 0 || port > 65535 {
		errs = append(errs, fmt.Errorf("%s: not a port: %q", KeyPort, get(KeyPort)))
	}
	c.Port = port
	c.WorkerID = get(KeyWorkerID)
	if c.InvocationTimeout, err = durationOr(get(KeyInvocationTimeout), DefaultInvocationTimeout); err != nil || c.InvocationTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s: want a positive Go duration, got %q", KeyInvocationTimeout, get(KeyInvocationTimeout)))
	}
	if c.HandoffTimeout, err = durationOr(get(KeyHandoffTimeout), DefaultHandoffTimeout); err != nil || c.HandoffTimeout <= 0 || c.HandoffTimeout > maxHandoffTimeout {
		errs = append(errs, fmt.Errorf("%s: want a duration in (0, %s] so Graph's 3 s budget holds, got %q", KeyHandoffTimeout, maxHandoffTimeout, get(KeyHandoffTimeout)))
	}
	maxBody, err := intOr(get(KeyMaxBodyBytes), DefaultMaxBodyBytes)
	if err != nil || maxBody < 1024 || maxBody > 64<<20 {
		errs = append(errs, fmt.Errorf("%s: want bytes between 1024 and 67108864, got %q", KeyMaxBodyBytes, get(KeyMaxBodyBytes)))
	}
	c.MaxBodyBytes = int64(maxBody)

	switch {
	case c.Region == "":
		errs = append(errs, fmt.Errorf("%s is required", KeyRegion))
	case knownNonEU[c.Region]:
		errs = append(errs, fmt.Errorf("%s: %q is outside the EU; ConnectHub keeps data in EU regions only", KeyRegion, c.Region))
	case !EURegions[c.Region]:
		errs = append(errs, fmt.Errorf("%s: unknown region %q", KeyRegion, c.Region))
	}
	if c.AppID == "" {
		errs = append(errs, fmt.Errorf("%s is required", KeyAppID))
	}
	if err := checkURL(KeyGraphBaseURL, c.GraphBaseURL); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL(KeyOpenIDConfigURL, c.OpenIDConfigURL); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL(KeyAdminOpenIDConfigURL, c.AdminOpenIDConfigURL); err != nil {
		errs = append(errs, err)
	}
	if c.OperatorTenantID == "" && c.Environment == Local {
		c.OperatorTenantID = DevOperatorTenant
	}
	if !guidRE.MatchString(c.OperatorTenantID) || c.OperatorTenantID == "00000000-0000-0000-0000-000000000000" {
		errs = append(errs, fmt.Errorf("%s: want ConnectHub's own Entra tenant id (a GUID), got %q", KeyOperatorTenantID, c.OperatorTenantID))
	}
	if err := checkNoticeSender(c.CRMNoticeSender); err != nil {
		errs = append(errs, err)
	}
	if err := checkSalesforceLoginURL(c.Environment, c.SalesforceLoginURL); err != nil {
		errs = append(errs, err)
	}

	switch c.Environment {
	case Local:
		if c.TablesConnectionString == "" {
			errs = append(errs, fmt.Errorf("%s is required in local mode", KeyTablesConnectionString))
		}
		if c.LocalSecretsFile == "" || c.LocalSecretsKey == "" {
			errs = append(errs, fmt.Errorf("%s and %s are required in local mode", KeyLocalSecretsFile, KeyLocalSecretsKey))
		}
	case Azure:
		if c.CPUProfile != "" {
			errs = append(errs, fmt.Errorf("%s is for local runs only", KeyCPUProfile))
		}
		if c.TablePrefix != "" {
			errs = append(errs, fmt.Errorf("%s is for local runs only: in Azure the tables keep the names Bicep gives them", KeyTablePrefix))
		}
		// Identity only: a connection string with a key has no place in Azure.
		if c.TablesConnectionString != "" {
			errs = append(errs, fmt.Errorf("%s must not be set in azure mode: use %s with the managed identity", KeyTablesConnectionString, KeyTablesAccountURL))
		}
		for k, v := range map[string]string{KeyTablesAccountURL: c.TablesAccountURL, KeyKeyVaultURL: c.KeyVaultURL} {
			if err := checkURL(k, v); err != nil {
				errs = append(errs, err)
			} else if !strings.HasPrefix(v, "https://") {
				errs = append(errs, fmt.Errorf("%s must be https", k))
			}
		}
		if c.ServiceBusNamespace == "" {
			errs = append(errs, fmt.Errorf("%s is required in azure mode", KeyServiceBusNamespace))
		}
		// The development token issuer signs for anyone on the machine who asks: it must never be
		// trusted in Azure.
		if u, err := url.Parse(c.AdminOpenIDConfigURL); err == nil && (u.Scheme != "https" || isLoopback(u.Hostname())) {
			errs = append(errs, fmt.Errorf("%s must be Entra ID's https configuration in azure mode; the development issuer is for local use only", KeyAdminOpenIDConfigURL))
		}
		if u, err := url.Parse(c.PortalAuthority); err != nil || u.Scheme != "https" || isLoopback(u.Hostname()) {
			errs = append(errs, fmt.Errorf("%s must be Entra ID (https) in azure mode; the development issuer is for local use only", KeyPortalAuthority))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: want local or azure, got %q", KeyEnvironment, c.Environment))
	}
	errs = append(errs, loadPresence(get, &c)...)
	errs = append(errs, loadTenants(get, &c)...)
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return c, nil
}

func intOr(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	return strconv.Atoi(s)
}

func durationOr(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	return time.ParseDuration(s)
}

func checkURL(key, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", key)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s: not an absolute http(s) URL", key)
	}
	return nil
}

// DevOperatorTenant is the operator tenant of make run when the local settings name none.
const DevOperatorTenant = "0e0e0e0e-0000-4000-8000-0000000000ff"

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
