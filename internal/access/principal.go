package access

import (
	"errors"
	"slices"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
)

// The app roles ConnectHub's Entra app registration defines (README, "Roles"). A token carries those
// assigned to the user or app in its roles claim.
const (
	AppRoleTenantAdmin     = "ConnectHub.TenantAdmin"
	AppRoleOperator        = "ConnectHub.Operator"
	AppRoleSecurityOfficer = "ConnectHub.SecurityOfficer"
	AppRoleAutomation      = "ConnectHub.Automation"
)

// GlobalAdministrator is the template id of Entra's Global Administrator directory role, as the wids
// claim lists it (Learn, permissions-reference "Global Administrator").
const GlobalAdministrator = "62e90394-69f5-4237-9190-012177145e10"

// Principal is who is calling: a user or app of a tenant, with what the token says about it.
type Principal struct {
	Tenant   core.TenantID
	ObjectID string // canonical object id (oid)
	App      bool   // an app-only token: no user behind it
	AppRoles []string
	// GlobalAdmin: the user holds the Global Administrator directory role of their tenant.
	GlobalAdmin bool
}

// ID names the principal in logs and the audit trail: tenant and object id, never a name.
func (p Principal) ID() string { return string(p.Tenant) + "/" + p.ObjectID }

// Actor is the principal as the audit trail records it.
func (p Principal) Actor(invocationID string) core.Actor {
	kind := "user"
	if p.App {
		kind = "app"
	}
	return core.Actor{ID: p.ObjectID, Kind: kind, InvocationID: invocationID}
}

// HasAppRole reports whether the token carries the app role.
func (p Principal) HasAppRole(role string) bool { return slices.Contains(p.AppRoles, role) }

// Verifier checks an access token's signature, times, audience and issuer
// (validationtoken.Validator.VerifyAccessToken).
type Verifier interface {
	VerifyAccessToken(token string, audiences ...string) (validationtoken.AccessClaims, error)
}

// Authenticator turns an Authorization header into a Principal.
type Authenticator struct {
	verify    Verifier
	audiences []string
}

// NewAuthenticator accepts tokens for the app clientID, by its client id or its application id URI.
func NewAuthenticator(v Verifier, clientID string) (*Authenticator, error) {
	if v == nil || clientID == "" {
		return nil, errors.New("access: a token verifier and the app's client id are required")
	}
	return &Authenticator{verify: v, audiences: []string{clientID, "api://" + clientID}}, nil
}

// ErrNoToken is the answer to a request without a bearer token: the challenge then names no error
// (RFC 6750 §3.1), where a bad token gets error="invalid_token".
var ErrNoToken = apperr.New(apperr.Unauthenticated, "a bearer token is required", nil)

// ErrKeysLoading means the signing keys are not loaded yet (or a new key is being fetched): the caller
// should try again shortly (503), its token may well be good.
var ErrKeysLoading = apperr.New(apperr.Unavailable, "the identity platform's signing keys are loading; try again", nil)

// Authenticate checks "Bearer <token>" and returns the caller. Every failure is Unauthenticated with
// the same public message, so an answer never tells a forger which check failed.
func (a *Authenticator) Authenticate(authorization string) (Principal, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, ErrNoToken
	}
	c, err := a.verify.VerifyAccessToken(strings.TrimSpace(token), a.audiences...)
	switch {
	case errors.Is(err, validationtoken.ErrKeysUnavailable), errors.Is(err, validationtoken.ErrUnknownKey):
		return Principal{}, ErrKeysLoading
	case err != nil:
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", err)
	}
	tenant, err := core.ParseTenantID(c.TenantID)
	if err != nil {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", err)
	}
	oid, err := core.ParseObjectID(c.ObjectID)
	if err != nil {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token", err)
	}
	// An app-only token has no delegated scopes; Entra adds idtyp=app when the app asks for the optional
	// claim, which ConnectHub's registration does. Without either, a token with scopes is a user's.
	app := c.IDType == "app" || (c.IDType == "" && c.Scopes == "")
	return Principal{Tenant: tenant, ObjectID: oid, App: app, AppRoles: c.Roles,
		GlobalAdmin: !app && slices.Contains(c.WIDs, GlobalAdministrator)}, nil
}
