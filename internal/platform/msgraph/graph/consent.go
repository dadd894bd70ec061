package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"
)

// ErrNotConsented matches (errors.Is) Microsoft saying that the app has no usable service principal in a
// tenant: no admin consented there, or the enterprise application was deleted or disabled.
var ErrNotConsented = errors.New("graph: the app is not consented in the tenant")

// notConsentedCodes are the AADSTS codes with which the token endpoint says that. Learn warns that "apps
// that take a dependency on text or error code numbers will be broken over time"
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes, below "Learn"), so a code
// missing here never lets anything through: it only shows as "could not ask" instead of "no".
var notConsentedCodes = []int{
	// "UnauthorizedClient_DoesNotMatchRequest - The application wasn't found in the directory/tenant. This
	// can happen if the application has not been installed by the administrator of the tenant or
	// consented to by any user in the tenant." (Learn, reference-error-codes)
	700016,
	// "The client application {appId} is missing service principal in the tenant {tenant}", 401
	// invalid_client (https://microsoft.github.io/teams-sdk/teams/app-authentication/troubleshooting).
	7000229,
	// "DelegationDoesNotExist - The user or administrator has not consented to use the application with
	// ID X." (Learn, reference-error-codes)
	65001,
	// "UnauthorizedClientApplicationDisabled - The application is disabled." (ibid.)
	7000112,
	// "InvalidTenantName - The tenant name wasn't found in the data store." (ibid.): no such directory.
	90002,
}

// AuthError is a token request the identity platform answered with an error: its HTTP status, OAuth
// error and AADSTS codes. The error_description is dropped on purpose: it names the directory, and
// errors end up in logs.
type AuthError struct {
	Status int
	Code   string // OAuth error, e.g. "unauthorized_client"
	AADSTS []int  // error_codes
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("identity platform: status %d, %s, AADSTS%v", e.Status, e.Code, e.AADSTS)
}

// Is makes errors.Is(err, ErrNotConsented) true for the codes that mean no service principal.
func (e *AuthError) Is(target error) bool {
	return target == ErrNotConsented && slices.ContainsFunc(e.AADSTS, func(c int) bool { return slices.Contains(notConsentedCodes, c) })
}

// authError turns azidentity's failure into an *AuthError when the identity platform answered, keeping
// only what AuthError keeps; without an answer (network, timeout) the error stays as it is.
func authError(err error) error {
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return fmt.Errorf("app-only token: %w", err)
	}
	body, _ := runtime.Payload(afe.RawResponse)
	var e struct {
		Error string `json:"error"`
		Codes []int  `json:"error_codes"`
	}
	_ = json.Unmarshal(body, &e)
	return &AuthError{Status: afe.RawResponse.StatusCode, Code: e.Error, AADSTS: e.Codes}
}

// ServicePrincipal is an app's service principal in a tenant, its "enterprise application" there.
type ServicePrincipal struct {
	ID             string
	AppID          string
	AccountEnabled *bool
}

// ServicePrincipalByAppID reads the service principal of the app appID (GET
// /servicePrincipals(appId='{appId}'), https://learn.microsoft.com/graph/api/serviceprincipal-get). An app
// reads its own without any permission; anyone else's needs Application.Read.All. ErrNotFound if the
// tenant has none.
func (c *Client) ServicePrincipalByAppID(ctx context.Context, appID string) (ServicePrincipal, error) {
	if appID == "" {
		return ServicePrincipal{}, errors.New("get service principal: empty app id")
	}
	// The key is an OData string literal: a quote inside is doubled, or it would end the literal (OData
	// ABNF Construction Rules, SQUOTE-in-string,
	// https://docs.oasis-open.org/odata/odata/v4.01/csprd06/abnf/odata-abnf-construction-rules.txt). The
	// URI template then percent-encodes what the literal holds.
	lit := strings.ReplaceAll(appID, "'", "''")
	b := serviceprincipalswithappid.NewServicePrincipalsWithAppIdRequestBuilderInternal(c.params(), c.adapter, &lit)
	sp, err := b.Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{
			Select: []string{"id", "appId", "accountEnabled"},
		},
	})
	if err != nil {
		return ServicePrincipal{}, wrap("get service principal", err)
	}
	if sp == nil {
		return ServicePrincipal{}, &Error{Op: "get service principal", Status: http.StatusOK, Code: "emptyBody"}
	}
	return ServicePrincipal{ID: str(sp.GetId()), AppID: str(sp.GetAppId()), AccountEnabled: sp.GetAccountEnabled()}, nil
}

// ProveConsent asks Microsoft whether the app was granted access to tenant, and takes nobody's word for
// it: it requests an app-only token for the tenant with a credential of its own, so that no token
// cached from an earlier answer can stand in, and reads the app's own service principal there with it.
//
// nil: the identity platform issued the token and Graph shows the service principal, enabled.
// errors.Is(err, ErrNotConsented): Microsoft said no. Any other error: the question went unanswered, and
// Retryable says whether asking later can help.
func (f *AppClients) ProveConsent(ctx context.Context, tenant string) error {
	if tenant == "" {
		return errors.New("prove consent: no tenant")
	}
	pemOrPFX, err := f.auth.Secrets.Get(ctx, f.auth.CertName)
	if err != nil {
		return fmt.Errorf("prove consent: read certificate: %w", err)
	}
	cred, err := NewAppCredential(tenant, f.auth.ClientID, []byte(pemOrPFX), f.auth.Auth)
	if err != nil {
		return err
	}
	c, err := New(cred, f.opts)
	if err != nil {
		return err
	}
	// The token on its own first, so that the identity platform's answer is told apart from Graph's. It
	// asks what the client will ask (kiota's "<scheme>://<host>/.default", with CAE), so the Graph call
	// below takes it from the credential's cache.
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}, EnableCAE: true}); err != nil {
		return authError(err)
	}
	sp, err := c.ServicePrincipalByAppID(ctx, f.auth.ClientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: graph has no service principal of the app", ErrNotConsented)
	case err != nil:
		return err
	case !strings.EqualFold(sp.AppID, f.auth.ClientID):
		return &Error{Op: "get service principal", Status: http.StatusOK, Code: "otherAppId"}
	case sp.AccountEnabled != nil && !*sp.AccountEnabled:
		return fmt.Errorf("%w: the app's service principal is disabled", ErrNotConsented)
	}
	return nil
}
