// Package secrets keeps ConnectHub's secrets (tenant data keys, service-user refresh tokens, PBX
// and CRM credentials, certificates) behind one small interface: Azure Key Vault in Azure, an encrypted local
// file for `make run`, memory in tests. Secret names are derived from tenant ids here and nowhere else.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/config"
)

// ErrNotFound is returned by Get when no secret has the name.
var ErrNotFound = errors.New("secret not found")

// Store is what the rest of the code needs from a secret store.
type Store interface {
	// Get returns the current value, or ErrNotFound.
	Get(ctx context.Context, name string) (string, error)
	// Set creates the secret or replaces its value.
	Set(ctx context.Context, name, value string) error
	// Delete removes the secret and purges it where the store allows; deleting a missing secret is not
	// an error.
	Delete(ctx context.Context, name string) error
}

// Lister lists secret names, for deleting every secret of a tenant (retention). Every store here
// implements it.
type Lister interface {
	// List returns the names of the current (not deleted) secrets that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Info is what an operator may see of a secret: its name and when its value last changed, never the value.
type Info struct {
	Name    string
	Updated time.Time // zero when the store does not know
}

// InfoLister lists secrets with their update times (the operator command's `secrets list`). Every store
// here implements it.
type InfoLister interface {
	// ListInfo returns the current secrets whose names start with prefix, sorted by name.
	ListInfo(ctx context.Context, prefix string) ([]Info, error)
}

// Creator stores a secret only where its name holds none, in one step: the local stores have it (the
// handler's first start generates a certificate the operator may be importing in that same moment).
// Key Vault has no such call, and nothing in Azure generates a secret.
type Creator interface {
	// Create stores value under name unless name holds a value; it reports whether it stored it.
	Create(ctx context.Context, name, value string) (bool, error)
}

// Names of the app-wide secrets.
const (
	// The defaults of the settings that name them; config owns the values because it imports nothing.
	NotificationCertName = config.DefaultNotificationCertName // PKCS#12 of Graph's rich-notification certificate
	AppClientCertName    = config.DefaultAppClientCertName    // PKCS#12 of the multi-tenant app's client certificate
	PortalKeyName        = "portal-key"                       // the portal's sealing key (sign-in state), created at first use
)

// TenantSecretPrefix starts the name of every secret that belongs to the tenant (data key, PBX credential,
// service-user tokens), so that all of them can be found and deleted with the tenant.
func TenantSecretPrefix(t core.TenantID) string { return "t-" + string(t) + "-" }

// TenantDataKeyName names the tenant's 256-bit data key (see internal/platform/tenantkey).
func TenantDataKeyName(t core.TenantID) string { return "t-" + string(t) + "-datakey" }

// PBXCredentialName names the tenant's PBX credential (e.g. RingCentral tokens).
func PBXCredentialName(t core.TenantID) string { return "t-" + string(t) + "-pbx" }

// CRMCredentialName names the tenant's CRM connection credential (the Salesforce connected app's consumer
// key, integration user, host and private key, sealed by internal/crm).
func CRMCredentialName(t core.TenantID) string { return "t-" + string(t) + "-crm" }

// ServiceUserTokenName names the refresh token of the tenant's delegated service user. userID is the
// user's Entra object id (a GUID).
func ServiceUserTokenName(t core.TenantID, userID string) (string, error) {
	u, err := core.ParseObjectID(userID)
	if err != nil {
		return "", errors.New("service user token name: user id is not a GUID")
	}
	return "t-" + string(t) + "-su-" + u, nil
}

// maxNameLen is Key Vault's limit on secret names.
const maxNameLen = 127

// ValidName checks a name against Key Vault's rules (1–127 of 0-9 a-z A-Z -), which every store
// enforces so that a name working locally works in Azure.
func ValidName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("secret name: length must be 1..%d", maxNameLen)
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '-')
	}) >= 0 {
		return errors.New("secret name: only letters, digits and - are allowed")
	}
	return nil
}
