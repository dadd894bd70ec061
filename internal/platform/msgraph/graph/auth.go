package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/connecthub/connecthub/internal/platform/msgraph/graphcrypto"
)

const tlsMin = tls.VersionTLS12

// DefaultAuthorityHost is the Microsoft identity platform of the global cloud.
const DefaultAuthorityHost = "https://login.microsoftonline.com/"

// AuthOptions configure how tokens are obtained.
type AuthOptions struct {
	// AuthorityHost is the identity platform (sovereign clouds, tests); empty means the global cloud.
	// It must be https: MSAL refuses anything else.
	AuthorityHost string
	// HTTPClient reaches the authority (tests trust their TLS server through it); nil is the default.
	HTTPClient *http.Client
	// Retry tunes how token requests are retried; the zero value is azcore's default (three retries of
	// 408, 429 and 5xx answers, from 800 ms on). Tests that stage outages shorten it.
	Retry policy.RetryOptions
}

// IsDefaultAuthority reports whether host is the global cloud's identity platform. Anything else is a
// host MSAL's instance discovery (which asks login.microsoftonline.com) does not know: sovereign clouds
// and local fakes.
func IsDefaultAuthority(host string) bool {
	u, err := url.Parse(host)
	return host == "" || err == nil && strings.EqualFold(u.Host, "login.microsoftonline.com")
}

// NewAppCredential is the multi-tenant app's credential in one customer tenant: a client certificate
// (PEM, or PKCS#12 as raw DER or base64, as Key Vault keeps it) presented to that tenant's authority.
func NewAppCredential(tenant, clientID string, certificate []byte, o AuthOptions) (azcore.TokenCredential, error) {
	cert, key, err := graphcrypto.ParseCertificate(certificate, "")
	if err != nil {
		return nil, fmt.Errorf("app credential: %w", err)
	}
	opts := &azidentity.ClientCertificateCredentialOptions{DisableInstanceDiscovery: !IsDefaultAuthority(o.AuthorityHost)}
	opts.Retry = o.Retry
	if o.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: o.AuthorityHost}
	}
	if o.HTTPClient != nil {
		opts.Transport = o.HTTPClient
	}
	cred, err := azidentity.NewClientCertificateCredential(tenant, clientID, []*x509.Certificate{cert}, key, opts)
	if err != nil {
		return nil, fmt.Errorf("app credential: %w", err)
	}
	return cred, nil
}

// SecretGetter reads a secret by name (secrets.Store).
type SecretGetter interface {
	Get(ctx context.Context, name string) (string, error)
}

// AppAuth is what app-only clients need: our application id, where its certificate is, the authority.
type AppAuth struct {
	ClientID string
	Secrets  SecretGetter
	CertName string // secrets.AppClientCertName
	Auth     AuthOptions
}

// AppClients hands out one app-only Client per tenant, built on first use and kept: each holds its
// credential, whose token cache saves a token request per call.
type AppClients struct {
	auth AppAuth
	opts Options

	mu      sync.Mutex
	clients map[string]*Client
}

// NewAppClients returns the per-tenant factory.
func NewAppClients(a AppAuth, o Options) *AppClients {
	return &AppClients{auth: a, opts: o, clients: map[string]*Client{}}
}

// For returns the app-only client of tenant (a GUID).
func (f *AppClients) For(ctx context.Context, tenant string) (*Client, error) {
	if tenant == "" {
		return nil, errors.New("app client: no tenant")
	}
	f.mu.Lock()
	c, ok := f.clients[tenant]
	f.mu.Unlock()
	if ok {
		return c, nil
	}
	pemOrPFX, err := f.auth.Secrets.Get(ctx, f.auth.CertName)
	if err != nil {
		return nil, fmt.Errorf("app client: read certificate: %w", err)
	}
	cred, err := NewAppCredential(tenant, f.auth.ClientID, []byte(pemOrPFX), f.auth.Auth)
	if err != nil {
		return nil, err
	}
	if c, err = New(cred, f.opts); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.clients[tenant]; ok {
		return prev, nil
	}
	f.clients[tenant] = c
	return c, nil
}

// Forget drops tenant's client (after the tenant is deleted, or its certificate rotated).
func (f *AppClients) Forget(tenant string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clients, tenant)
}
