package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/presence/setup"
)

// ConnectorAdmin configures a tenant's presence sync: PBX connector, user extensions, presence mapping
// (internal/presence/setup).
type ConnectorAdmin interface {
	SetConnector(ctx context.Context, a core.Actor, tenant core.TenantID, in setup.ConnectorInput) (setup.ConnectorView, error)
	GetConnector(ctx context.Context, tenant core.TenantID) (setup.ConnectorView, error)
	DeleteConnector(ctx context.Context, a core.Actor, tenant core.TenantID) error
	TestConnector(ctx context.Context, a core.Actor, tenant core.TenantID) (setup.TestResult, error)
	GetUserExtension(ctx context.Context, tenant core.TenantID, userID string) (setup.UserExtension, error)
	SetUserExtension(ctx context.Context, a core.Actor, tenant core.TenantID, userID, extensionID string) (setup.UserExtension, error)
	DeleteUserExtension(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error
	ListExtensions(ctx context.Context, tenant core.TenantID, pageToken string, pageSize int) (setup.ExtensionPage, error)
	GetMapping(ctx context.Context, tenant core.TenantID) (setup.MappingView, error)
	SetMapping(ctx context.Context, a core.Actor, tenant core.TenantID, overrides map[string]string) (setup.MappingView, error)
}

var _ ConnectorAdmin = (*setup.Service)(nil)

// ConnectorServices are the services behind the connector, extension and mapping functions.
type ConnectorServices struct {
	Admin ConnectorAdmin // GetConnector, SetConnector, DeleteConnector, TestConnector, Get/Set/DeleteUserExtension, ListExtensions, Get/SetPresenceMapping
}

// maxSetupBody bounds these functions' bodies: a JWT credential or a full presence mapping is larger
// than the tenant actions' few fields.
const maxSetupBody = 16 << 10

type setupHandler func(ctx context.Context, s ConnectorAdmin, a core.Actor, tenant core.TenantID, r *azfunc.HTTPRequest) (int, any, error)

// connectorRoutes are the tenant admin's presence set-up functions; all need a function key and record
// the X-ConnectHub-Actor in the audit trail like the operator actions.
func (a *App) connectorFunctions() []function {
	op := func(name string, g guard, h setupHandler) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.setupOp(ctx, r, g, h)
		}), a.Connector.Admin}
	}
	read := guard{perm: access.ConnectorRead, scope: "connector"}
	write := guard{perm: access.ConnectorWrite, scope: "connector"}
	userRead := guard{perm: access.ConnectorRead, scope: "users/{userId}"}
	userWrite := guard{perm: access.ConnectorWrite, scope: "users/{userId}"}
	return []function{
		op("GetConnector", read, func(ctx context.Context, s ConnectorAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.GetConnector(ctx, id)
			return http.StatusOK, toConnectorJSON(v), err
		}),
		op("SetConnector", write, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Kind         string `json:"kind"`
				ClientID     string `json:"clientId"`
				ClientSecret string `json:"clientSecret"`
				JWT          string `json:"jwt"`
				URL          string `json:"url"`
				Secret       string `json:"secret"`
				Direction    string `json:"direction"`
				CallPresence string `json:"callPresence"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			v, err := s.SetConnector(ctx, actor, id, setup.ConnectorInput{Kind: body.Kind, ClientID: body.ClientID,
				ClientSecret: body.ClientSecret, JWT: body.JWT, URL: body.URL, Secret: body.Secret,
				Direction: body.Direction, CallPresence: body.CallPresence})
			return http.StatusOK, toConnectorJSON(v), err
		}),
		op("DeleteConnector", write, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DeleteConnector(ctx, actor, id)
		}),
		op("TestConnector", write, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			res, err := s.TestConnector(ctx, actor, id)
			return http.StatusOK, testJSON{Kind: res.Kind, OK: res.OK, Code: res.Code, Message: res.Message, TestedAt: res.TestedAt}, err
		}),
		op("GetUserExtension", userRead, func(ctx context.Context, s ConnectorAdmin, _ core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			e, err := s.GetUserExtension(ctx, id, r.Params["userId"])
			return http.StatusOK, toExtensionJSON(e), err
		}),
		op("SetUserExtension", userWrite, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				ExtensionID string `json:"extensionId"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			e, err := s.SetUserExtension(ctx, actor, id, r.Params["userId"], body.ExtensionID)
			return http.StatusOK, toExtensionJSON(e), err
		}),
		op("DeleteUserExtension", userWrite, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DeleteUserExtension(ctx, actor, id, r.Params["userId"])
		}),
		op("ListExtensions", guard{perm: access.ConnectorRead, scope: "users"}, func(ctx context.Context, s ConnectorAdmin, _ core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			size := 0
			if v := r.Query.Get("pageSize"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return 0, nil, apperr.New(apperr.Invalid, "pageSize must be 1 to "+strconv.Itoa(setup.MaxPageSize), nil)
				}
				size = n
			}
			p, err := s.ListExtensions(ctx, id, r.Query.Get("pageToken"), size)
			out := extensionsJSON{Kind: p.Kind, Directory: p.Directory, DirectoryError: p.DirectoryError,
				Users: make([]extensionJSON, 0, len(p.Users)), NextPageToken: p.Next}
			for _, u := range p.Users {
				out.Users = append(out.Users, toExtensionJSON(u))
			}
			return http.StatusOK, out, err
		}),
		op("GetPresenceMapping", read, func(ctx context.Context, s ConnectorAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			m, err := s.GetMapping(ctx, id)
			return http.StatusOK, mappingJSON(m), err
		}),
		op("SetPresenceMapping", write, func(ctx context.Context, s ConnectorAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				Overrides map[string]string `json:"overrides"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			m, err := s.SetMapping(ctx, actor, id, body.Overrides)
			return http.StatusOK, mappingJSON(m), err
		}),
	}
}

// setupOp runs a set-up function of the presence capability.
func (a *App) setupOp(ctx context.Context, r *azfunc.HTTPRequest, g guard, h setupHandler) azfunc.HTTPResponse {
	return a.adminCall(ctx, r, maxSetupBody, g, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
		return h(ctx, a.Connector.Admin, actor, id, r)
	})
}

type connectorJSON struct {
	Configured   bool       `json:"configured"`
	Kind         string     `json:"kind,omitempty"`
	ClientID     string     `json:"clientId,omitempty"`
	Endpoint     string     `json:"endpoint,omitempty"`
	ConfiguredAt *time.Time `json:"configuredAt,omitempty"`
	ConfiguredBy string     `json:"configuredBy,omitempty"`
	Direction    string     `json:"direction,omitempty"`
	CallPresence string     `json:"callPresence,omitempty"`
}

func toConnectorJSON(v setup.ConnectorView) connectorJSON {
	out := connectorJSON{Configured: v.Kind != "", Kind: v.Kind, ClientID: v.ClientID, Endpoint: v.Endpoint, ConfiguredBy: v.ConfiguredBy,
		Direction: v.Direction, CallPresence: v.CallPresence}
	if !v.ConfiguredAt.IsZero() {
		out.ConfiguredAt = &v.ConfiguredAt
	}
	return out
}

type testJSON struct {
	Kind     string    `json:"kind"`
	OK       bool      `json:"ok"`
	Code     string    `json:"code,omitempty"`
	Message  string    `json:"message,omitempty"`
	TestedAt time.Time `json:"testedAt"`
}

type extensionJSON struct {
	UserID          string `json:"userId"`
	ExtensionID     string `json:"extensionId,omitempty"`
	ExtensionNumber string `json:"extensionNumber,omitempty"`
	MatchedBy       string `json:"matchedBy"`
}

func toExtensionJSON(e setup.UserExtension) extensionJSON {
	return extensionJSON{UserID: e.UserID, ExtensionID: e.ExtensionID, ExtensionNumber: e.ExtensionNumber, MatchedBy: e.MatchedBy}
}

type extensionsJSON struct {
	Kind           string          `json:"kind,omitempty"`
	Directory      bool            `json:"directory"`
	DirectoryError string          `json:"directoryError,omitempty"`
	Users          []extensionJSON `json:"users"`
	NextPageToken  string          `json:"nextPageToken,omitempty"`
}

type mappingJSON struct {
	Overrides map[string]string `json:"overrides"`
	Effective map[string]string `json:"effective"`
}
