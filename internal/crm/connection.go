package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm/salesforce"
	"github.com/connecthub/connecthub/internal/platform/audit"
	"github.com/connecthub/connecthub/internal/platform/clock"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/secrets"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// Salesforce is what the connection functions need of the Salesforce client.
type Salesforce interface {
	// Test signs in with cred and reads the org's limits: the daily API usage, or a
	// *salesforce.TestFailure naming what failed.
	Test(ctx context.Context, tenant core.TenantID, cred salesforce.Credential) (salesforce.Usage, error)
	// Forget drops the tenant's cached token.
	Forget(tenant core.TenantID)
	// Query runs a SOQL query, handing each record to fn.
	Query(ctx context.Context, tenant core.TenantID, cred salesforce.Credential, soql string, fn func(json.RawMessage) error) (http.Header, error)
}

// Options configure a Service.
type Options struct {
	Store      *registry.Registry
	Data       *Data
	Secrets    secrets.Store
	Sealer     tables.Sealer
	Salesforce Salesforce
	Now        func() time.Time
	Log        *slog.Logger
}

// Service is the tenant admin's CRM connection.
type Service struct {
	o        Options
	auditLog *audit.Log
}

// New returns the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Data == nil || o.Secrets == nil || o.Sealer == nil || o.Salesforce == nil {
		return nil, errors.New("crm: store, data, secrets, sealer and salesforce are required")
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{o: o, auditLog: audit.OpenLog(o.Store.DB())}, nil
}

// ConnectionInput is a connection as an admin sends it: every field is required, the whole connection
// is replaced.
type ConnectionInput struct {
	ConsumerKey string
	Username    string
	Host        string
	PrivateKey  string // PEM
}

// ConnectionView is what an admin sees: never the private key.
type ConnectionView struct {
	Provider     string // "" when none is configured
	ConsumerKey  string
	Username     string
	Host         string
	ConfiguredAt time.Time
	ConfiguredBy string
	TestedAt     time.Time // zero: never tested since it was set
	TestCode     string
}

// TestResult is the outcome of a connection test: OK, or a stable code and a sentence saying what to
// change in Salesforce; when it works, the org's daily API usage.
type TestResult struct {
	Provider string
	OK       bool
	Code     string
	Message  string
	TestedAt time.Time
	Usage    salesforce.Usage
}

var (
	errNoTenant     = apperr.New(apperr.NotFound, "no such tenant", nil)
	errPending      = apperr.New(apperr.Conflict, "the tenant has not given admin consent yet", nil)
	errInactive     = apperr.New(apperr.Conflict, "the tenant is cancelled; reactivate it first", nil)
	errDeleting     = apperr.New(apperr.Conflict, "the tenant's data is being deleted", nil)
	errNotConnected = apperr.New(apperr.Conflict, "no CRM connection is configured; PUT one first", nil)
	storeFailed     = "storage is unavailable; retry"
)

// Limits of the fields: generous for real values, small enough that nothing else fits.
const (
	maxUsername   = 80 // Salesforce: "Username … up to 80 characters" (User object reference)
	maxPrivateKey = 12 << 10
)

// consumerKeyRE: consumer keys are letters, digits, dots and underscores (3MVG9…, 85 characters today).
var consumerKeyRE = regexp.MustCompile(`^[A-Za-z0-9._]{10,255}$`)

func invalid(msg string) error { return apperr.New(apperr.Invalid, msg, nil) }

// validate checks the input and returns the credential to seal. Messages never repeat a value.
func validate(in ConnectionInput) (salesforce.Credential, error) {
	switch {
	case in.ConsumerKey == "":
		return salesforce.Credential{}, invalid("consumerKey is required: the connected app's consumer key (Manage Consumer Details)")
	case !consumerKeyRE.MatchString(in.ConsumerKey):
		return salesforce.Credential{}, invalid("consumerKey must be the connected app's consumer key: 10 to 255 letters, digits, dots or underscores")
	case in.Username == "":
		return salesforce.Credential{}, invalid("username is required: the Salesforce username of the integration user")
	case len(in.Username) > maxUsername || !printable(in.Username) || strings.Count(in.Username, "@") != 1 ||
		strings.HasPrefix(in.Username, "@") || strings.HasSuffix(in.Username, "@"):
		return salesforce.Credential{}, invalid("username must be a Salesforce username: an e-mail-like name of at most 80 characters")
	case in.Host == "":
		return salesforce.Credential{}, invalid("host is required: login.salesforce.com (production) or test.salesforce.com (sandbox)")
	case !salesforce.ValidHost(in.Host):
		return salesforce.Credential{}, invalid("host must be login.salesforce.com (production) or test.salesforce.com (sandbox)")
	case in.PrivateKey == "":
		return salesforce.Credential{}, invalid("privateKey is required: the PEM private key whose certificate is uploaded to the connected app")
	case len(in.PrivateKey) > maxPrivateKey:
		return salesforce.Credential{}, invalid("privateKey is too long for an RSA private key in PEM")
	}
	if _, err := salesforce.ParsePrivateKey(in.PrivateKey); err != nil {
		return salesforce.Credential{}, invalid("privateKey: " + err.Error())
	}
	return salesforce.Credential{ConsumerKey: in.ConsumerKey, Username: in.Username, Host: in.Host, PrivateKeyPEM: in.PrivateKey}, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// tenant reads the registry row; absence is NotFound.
func (s *Service) tenant(ctx context.Context, tenant core.TenantID) (registry.Tenant, error) {
	t, err := s.o.Store.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return registry.Tenant{}, errNoTenant
	}
	if err != nil {
		return registry.Tenant{}, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("read tenant: %w", err))
	}
	return t, nil
}

// writable says whether the connection may change: active or suspended (an admin prepares a suspended
// tenant's return). A pending tenant has no data key yet; a cancelled one is on its way out.
func writable(t registry.Tenant) error {
	switch t.State {
	case registry.TenantActive, registry.TenantSuspended:
		return nil
	case registry.TenantPending:
		return errPending
	case registry.TenantDeleting:
		return errDeleting
	default:
		return errInactive
	}
}

// audit appends an entry; outcome follows err. A failed append fails a successful request, so no
// change goes unaudited. Only ids go in: the provider, never the username or consumer key.
func (s *Service) audit(ctx context.Context, tenant core.TenantID, a core.Actor, action string, err error) error {
	return s.trail().Record(ctx, tenant, a, action, "crm", ProviderSalesforce, err)
}

func (s *Service) trail() audit.Trail {
	return audit.Trail{Table: s.auditLog, Now: s.o.Now, Log: s.o.Log}
}

// SetConnection validates and stores the tenant's Salesforce connection: the credential sealed into the
// secret store first, then the row. It does not call Salesforce (TestConnection does), so an org that is
// down or not yet pre-authorised cannot block the set-up.
func (s *Service) SetConnection(ctx context.Context, a core.Actor, tenant core.TenantID, in ConnectionInput) (ConnectionView, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return ConnectionView{}, err
	}
	if err := writable(t); err != nil {
		if errors.Is(err, errDeleting) {
			return ConnectionView{}, err // nothing may be written into a tenant being deleted, the audit trail included
		}
		return ConnectionView{}, s.audit(ctx, tenant, a, "crm.connection.set", err)
	}
	cred, err := validate(in)
	if err != nil {
		return ConnectionView{}, s.audit(ctx, tenant, a, "crm.connection.set", err)
	}
	if err := saveCredential(ctx, s.o.Secrets, s.o.Sealer, tenant, cred); err != nil {
		return ConnectionView{}, s.audit(ctx, tenant, a, "crm.connection.set",
			apperr.New(apperr.Unavailable, "the secret store is unavailable; retry", err))
	}
	c := Connection{Provider: ProviderSalesforce, ConsumerKey: cred.ConsumerKey, Host: cred.Host, Username: cred.Username,
		ConfiguredAt: s.o.Now(), ConfiguredBy: a.ID}
	if _, err := s.o.Data.Connections.Upsert(ctx, tenant, c); err != nil {
		return ConnectionView{}, s.audit(ctx, tenant, a, "crm.connection.set",
			apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("write connection: %w", err)))
	}
	s.o.Salesforce.Forget(tenant)
	if err := s.audit(ctx, tenant, a, "crm.connection.set", nil); err != nil {
		return ConnectionView{}, err
	}
	return view(c), nil
}

func view(c Connection) ConnectionView {
	return ConnectionView{Provider: c.Provider, ConsumerKey: c.ConsumerKey, Username: c.Username, Host: c.Host,
		ConfiguredAt: c.ConfiguredAt, ConfiguredBy: c.ConfiguredBy, TestedAt: c.TestedAt, TestCode: c.TestCode}
}

// connection reads the tenant's row; ok is false when none is configured.
func (s *Service) connection(ctx context.Context, tenant core.TenantID) (Connection, bool, error) {
	c, err := s.o.Data.Connections.Get(ctx, tenant, ProviderSalesforce)
	if errors.Is(err, tables.ErrNotFound) {
		return Connection{}, false, nil
	}
	if err != nil {
		return Connection{}, false, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("read connection: %w", err))
	}
	return c, true, nil
}

// GetConnection shows the tenant's connection (Provider "" when none is configured).
func (s *Service) GetConnection(ctx context.Context, tenant core.TenantID) (ConnectionView, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return ConnectionView{}, err
	}
	c, ok, err := s.connection(ctx, tenant)
	if err != nil || !ok {
		return ConnectionView{}, err
	}
	return view(c), nil
}

// DeleteConnection removes the row first (nothing syncs without it), then the credential. Deleting what
// is not configured succeeds: the admin wants it gone and it is.
func (s *Service) DeleteConnection(ctx context.Context, a core.Actor, tenant core.TenantID) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if t.State == registry.TenantDeleting {
		return errDeleting // the retention job deletes the credential with everything else
	}
	if err := s.o.Data.Connections.Delete(ctx, tenant, ProviderSalesforce); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return s.audit(ctx, tenant, a, "crm.connection.delete",
			apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("delete connection: %w", err)))
	}
	if err := s.o.Secrets.Delete(ctx, secrets.CRMCredentialName(tenant)); err != nil {
		return s.audit(ctx, tenant, a, "crm.connection.delete",
			apperr.New(apperr.Unavailable, "the connection is off but its credential could not be deleted; retry", err))
	}
	s.o.Salesforce.Forget(tenant)
	return s.audit(ctx, tenant, a, "crm.connection.delete", nil)
}

// TestConnection signs in to the org with the stored credential and reads its limits, as the sync will.
// A failed check is an answer (OK false), not an error; the row keeps the outcome and the audit trail
// records it as failed.
func (s *Service) TestConnection(ctx context.Context, a core.Actor, tenant core.TenantID) (TestResult, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return TestResult{}, err
	}
	if t.State == registry.TenantDeleting {
		return TestResult{}, errDeleting
	}
	if _, ok, err := s.connection(ctx, tenant); err != nil {
		return TestResult{}, err
	} else if !ok {
		return TestResult{}, errNotConnected
	}
	res := TestResult{Provider: ProviderSalesforce, TestedAt: s.o.Now(), OK: true}
	var cred salesforce.Credential
	err = loadCredential(ctx, s.o.Secrets, s.o.Sealer, tenant, &cred)
	var f *salesforce.TestFailure
	switch {
	case errors.Is(err, errNoCredential):
		res.OK, res.Code, res.Message = false, "crm_credential_missing", "the stored credential is missing or unreadable; PUT the connection again"
	case err != nil:
		return TestResult{}, apperr.New(apperr.Unavailable, "the test could not run; retry", err)
	default:
		res.Usage, err = s.o.Salesforce.Test(ctx, tenant, cred)
		switch {
		case err == nil:
		case errors.As(err, &f):
			res.OK, res.Code, res.Message = false, f.Code, f.Message
		default:
			return TestResult{}, apperr.New(apperr.Unavailable, "the test could not run; retry", err)
		}
	}
	// The outcome stays on the row for GET and, later, Health; a connection deleted meanwhile stays gone.
	if _, err := s.o.Data.Connections.Update(ctx, tenant, ProviderSalesforce, func(c *Connection) error {
		c.TestedAt, c.TestCode = res.TestedAt, res.Code
		return nil
	}); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return TestResult{}, apperr.New(apperr.Unavailable, storeFailed, fmt.Errorf("record test: %w", err))
	}
	outcome := audit.Success
	if !res.OK {
		outcome = audit.Failed
		s.o.Log.InfoContext(ctx, "crm connection test failed", "provider", ProviderSalesforce, "code", res.Code)
	}
	if err := s.trail().Write(ctx, tenant, a, "crm.connection.test", "crm", ProviderSalesforce, outcome); err != nil {
		return TestResult{}, err
	}
	return res, nil
}

// ----- the sealed credential -----

// credentialLabel binds the sealed credential to its purpose (associated data of the tenant key), so a
// PBX credential can never be opened as a CRM one or the other way round.
const credentialLabel = "crm-credential"

var errNoCredential = errors.New("crm credential missing or unreadable")

// saveCredential seals cred with the tenant key into the secret store, as the PBX connector does its
// credential: crypto-shredding the tenant kills it too.
func saveCredential(ctx context.Context, sec secrets.Store, sealer tables.Sealer, tenant core.TenantID, cred salesforce.Credential) error {
	if err := secrets.SetSealed(ctx, sec, sealer, tenant, secrets.CRMCredentialName(tenant), credentialLabel, ProviderSalesforce, cred); err != nil {
		return fmt.Errorf("save crm credential: %w", err)
	}
	return nil
}

// loadCredential opens the tenant's credential into cred; missing or undecodable is errNoCredential.
func loadCredential(ctx context.Context, sec secrets.Store, sealer tables.Sealer, tenant core.TenantID, cred *salesforce.Credential) error {
	err := secrets.GetSealed(ctx, sec, sealer, tenant, secrets.CRMCredentialName(tenant), credentialLabel, ProviderSalesforce, cred)
	if errors.Is(err, secrets.ErrNoSealed) {
		return errNoCredential
	}
	if err != nil {
		return fmt.Errorf("load crm credential: %w", err)
	}
	return nil
}
