// Package graph is ConnectHub's only door to Microsoft Graph and the only package that imports
// msgraph-sdk-go (a 4-minute, 4.5 GiB cold build: everything else stays out of its way).
//
// A Client talks to one tenant with one credential: app-only (NewAppCredential, the multi-tenant app's
// client certificate, for users and setPresence) or delegated (a service user's token, for presence
// subscriptions and getPresencesByUserId). Clients speak our own small types, never SDK models.
//
// Exported API:
//
//	New(cred azcore.TokenCredential, o Options) (*Client, error)
//	NewAppCredential(tenant, clientID string, certificate []byte, o AuthOptions) (azcore.TokenCredential, error)
//	NewAppClients(a AppAuth, o Options) *AppClients — one app-only client per tenant, cached:
//	    (*AppClients).For(ctx, tenant) (*Client, error), (*AppClients).Forget(tenant)
//	    (*AppClients).ProveConsent(ctx, tenant) error — a fresh app-only token and the app's own service
//	                                                   principal; ErrNotConsented when Microsoft says no
//
//	(*Client).GetUser(ctx, id) (User, error)                       — ErrNotFound for an unknown id
//	(*Client).UsersDelta(ctx, deltaLink, fn func(UserChange) error) (nextDeltaLink string, err error)
//	                                                             — "" starts a full sync; ErrDeltaExpired: start again
//	(*Client).CreateSubscription(ctx, NewSubscription) (Subscription, error)
//	(*Client).RenewSubscription(ctx, id, expires) (time.Time, error) — PATCH expirationDateTime
//	(*Client).ReauthorizeSubscription(ctx, id) error
//	(*Client).DeleteSubscription(ctx, id) error                  — an already deleted subscription is not an error
//	(*Client).ListSubscriptions(ctx) ([]Subscription, error)
//	(*Client).PresencesByUserID(ctx, ids) ([]Presence, error)      — split into calls of at most 650 ids
//	(*Client).ServicePrincipalByAppID(ctx, appID) (ServicePrincipal, error) — ErrNotFound if there is none
//	(*Client).ContactsDelta(ctx, mailbox, folder, deltaLink, fn func(ContactChange) error) (nextDeltaLink string, err error)
//	                                                             — one contact folder, $select of what the CRM sync maps
//	(*Client).GetContact(ctx, mailbox, folder, id) (Contact, error) — ErrNotFound when it is gone
//	(*Client).CreateContact(ctx, mailbox, folder, ContactWrite) (Contact, error) — with single-value extended properties
//	(*Client).UpdateContact(ctx, mailbox, folder, id, ContactWrite) (Contact, error) — ErrNotFound when it is gone
//	(*Client).DeleteContact(ctx, mailbox, folder, id) error     — ErrNotFound when it is gone already
//	(*Client).EventsDelta(ctx, mailbox, start, end, deltaLink, fn func(EventChange) error) (nextDeltaLink string, err error)
//	                                                             — calendarView delta over a window fixed in the link; UTC, text bodies
//	(*Client).GetEvent(ctx, mailbox, id) (MailboxEvent, error)  — ErrNotFound when it is gone
//	(*Client).CreateEvent(ctx, mailbox, EventWrite) (MailboxEvent, error) — transactionId and extended properties
//	(*Client).UpdateEvent(ctx, mailbox, id, EventWrite) (MailboxEvent, error), (*Client).DeleteEvent(ctx, mailbox, id) error
//	(*Client).FindEvents(ctx, mailbox, prop, value) ([]MailboxEvent, error) — by an extended property's value
//	(*Client).EventsWithProperty(ctx, mailbox, start, end, prop, fn) error — one listing of a window's events carrying prop
//	(*Client).SendMail(ctx, mailbox, Mail) error                 — plain text, not kept in Sent Items
//	(*Client).FindContacts(ctx, mailbox, folder, prop, value, address) ([]Contact, error)
//	                                                             — by an extended property's value, else by e-mail address
//
// Errors are *Error (HTTP status and Graph's error code, never Graph's message, which can name people),
// and *AuthError from ProveConsent (the identity platform's status and AADSTS codes, never its
// description, which names the directory); errors.Is(err, ErrNotFound) tests for 404, Retryable for
// throttling and server errors.
//
// Tests use graphtest: a fake Graph (subscriptions with the validation handshake, users and delta,
// presence, service principals, rich notifications encrypted like Graph) and a fake identity platform
// that issues app-only tokens only in tenants that consented.
//
// Transport: the request adapter is built from msgraph-sdk-go-core with an explicit middleware list
// (retry, redirect, parameter-name decoding, user agent, headers inspection) and WITHOUT the compression
// handler: kiota-http-go v1.5.4 orders its default middleware from a map, and when retry runs before
// compression a retried POST/PATCH goes out labelled gzip with a plain body (kiota-http-go #183). The
// retry handler honours Retry-After on 429, 503 and 504; nothing here loops on its own. Only the request
// builder sub-packages are imported, not the root GraphServiceClient (two minutes less cold build).
package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	abs "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	textser "github.com/microsoft/kiota-serialization-text-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// DefaultBaseURL is Microsoft Graph in the global cloud.
const DefaultBaseURL = "https://graph.microsoft.com"

// Options configure a Client.
type Options struct {
	// BaseURL is Graph's root without the version (GRAPH_BASE_URL): DefaultBaseURL, a sovereign cloud, or
	// a test server. Tokens are only ever sent to this host.
	BaseURL string
	// Transport carries the requests under the middleware (tests: an httptest server's transport).
	// Nil means a TLS 1.2+ transport of our own.
	Transport http.RoundTripper
	// MaxRetries bounds the retries of 429/503/504 answers (default 3, at most 10).
	MaxRetries int
	// Timeout bounds one call including its retries (default 60 s).
	Timeout time.Duration
}

// Client calls Graph for one tenant with one credential. It is safe for concurrent use.
type Client struct {
	adapter *core.GraphRequestAdapterBase
	base    string // with /v1.0
	scope   string // what kiota asks tokens for: "<scheme>://<host>/.default" of the base URL
}

// New builds a client that authenticates every request with cred.
func New(cred azcore.TokenCredential, o Options) (*Client, error) {
	if cred == nil {
		return nil, errors.New("new graph client: no credential")
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("new graph client: base URL %q is not an absolute http(s) URL", o.BaseURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	// Scopes are left to kiota: "<scheme>://<host>/.default" of the request URL, which is right for the
	// global and the sovereign clouds. The allowed-hosts list keeps tokens away from any other host (an
	// @odata.nextLink pointing elsewhere gets no token).
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, nil, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("new graph client: %w", err)
	}
	retry := khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{
		MaxRetries: o.MaxRetries,
		// Graph's Retry-After can reach minutes; a queue or timer invocation must not hang that long, so
		// give up once the waits add up to more than the call's budget and let the caller's retry decide.
		ShouldRetry: func(delay time.Duration, _ int, _ *http.Request, _ *http.Response) bool { return delay < o.Timeout/2 },
	})
	middleware := []khttp.Middleware{
		retry,
		khttp.NewRedirectHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
	}
	parent := o.Transport
	if parent == nil {
		parent = defaultTransport()
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(parent, middleware...),
		// Redirects are the redirect middleware's job (it drops the Authorization header across hosts).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       o.Timeout,
	}
	adapter, err := core.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, core.GraphClientOptions{GraphServiceLibraryVersion: "connecthub"}, parseNodes(), writers(), httpClient)
	if err != nil {
		return nil, fmt.Errorf("new graph client: %w", err)
	}
	base := u.String() + "/v1.0"
	adapter.SetBaseUrl(base)
	return &Client{adapter: adapter, base: base, scope: u.Scheme + "://" + u.Host + "/.default"}, nil
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig.MinVersion = tlsMin
	return t
}

// parseNodes and writers are per-client registries: the SDK's root client registers into global
// defaults, which we do not import.
func parseNodes() absser.ParseNodeFactory {
	r := absser.NewParseNodeFactoryRegistry()
	r.ContentTypeAssociatedFactories["application/json"] = jsonser.NewJsonParseNodeFactory()
	r.ContentTypeAssociatedFactories["text/plain"] = textser.NewTextParseNodeFactory()
	return r
}

func writers() absser.SerializationWriterFactory {
	r := absser.NewSerializationWriterFactoryRegistry()
	r.ContentTypeAssociatedFactories["application/json"] = jsonser.NewJsonSerializationWriterFactory()
	r.ContentTypeAssociatedFactories["text/plain"] = textser.NewTextSerializationWriterFactory()
	return r
}

func (c *Client) params() map[string]string { return map[string]string{"baseurl": c.base} }

// ErrNotFound matches a 404 from Graph (errors.Is).
var ErrNotFound = errors.New("graph: not found")

// ErrDeltaExpired means a delta link is no longer valid (410 Gone, syncStateNotFound and relatives):
// start a full sync with an empty link.
var ErrDeltaExpired = errors.New("graph: delta link expired")

// Error is a failed Graph call: the HTTP status and Graph's error code. Graph's message is dropped on
// purpose: it can contain names or addresses, and errors end up in logs.
type Error struct {
	Op     string // what we were doing, e.g. "create subscription"
	Status int
	Code   string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("graph %s: status %d, code %s", e.Op, e.Status, e.Code)
	}
	return fmt.Sprintf("graph %s: status %d", e.Op, e.Status)
}

// Is makes errors.Is(err, ErrNotFound) true for 404 and errors.Is(err, ErrDeltaExpired) for an expired
// delta token.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrDeltaExpired:
		return e.Status == http.StatusGone || strings.EqualFold(e.Code, "syncStateNotFound") ||
			strings.EqualFold(e.Code, "resyncRequired") || strings.EqualFold(e.Code, "syncStateInvalid")
	}
	return false
}

// Retryable reports whether trying again later can help (throttling, a server error, no answer).
func Retryable(err error) bool {
	if errors.Is(err, ErrNotConsented) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusRequestTimeout
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500 || ae.Status == http.StatusRequestTimeout
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// wrap turns what kiota returns into our *Error, keeping transport errors as they are.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		e := &Error{Op: op, Status: oe.ResponseStatusCode}
		if me := oe.GetErrorEscaped(); me != nil && me.GetCode() != nil {
			e.Code = *me.GetCode()
		}
		return e
	}
	var ae *abs.ApiError
	if errors.As(err, &ae) {
		return &Error{Op: op, Status: ae.ResponseStatusCode}
	}
	return fmt.Errorf("graph %s: %w", op, err)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
