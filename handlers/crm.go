package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/access"
	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/crm"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// CRMAdmin is the tenant admin's CRM connection (internal/crm).
type CRMAdmin interface {
	SetConnection(ctx context.Context, a core.Actor, tenant core.TenantID, in crm.ConnectionInput) (crm.ConnectionView, error)
	GetConnection(ctx context.Context, tenant core.TenantID) (crm.ConnectionView, error)
	DeleteConnection(ctx context.Context, a core.Actor, tenant core.TenantID) error
	TestConnection(ctx context.Context, a core.Actor, tenant core.TenantID) (crm.TestResult, error)
	GetUserMapping(ctx context.Context, tenant core.TenantID, userID string) (crm.UserMapping, bool, error)
	SetUserMapping(ctx context.Context, a core.Actor, tenant core.TenantID, userID string, in crm.MappingInput) (crm.UserMapping, error)
	DeleteUserMapping(ctx context.Context, a core.Actor, tenant core.TenantID, userID string) error
	ListUserMappings(ctx context.Context, tenant core.TenantID, token string, pageSize int) (crm.MappingPage, error)
	SyncHealth(ctx context.Context, tenant core.TenantID) (crm.Health, error)
}

var _ CRMAdmin = (*crm.Service)(nil)

// CRMServices are the services behind the CRM functions.
type CRMServices struct {
	Admin CRMAdmin // Get/Set/DeleteCRMConnection, TestCRMConnection, Get/Set/DeleteCRMUserMapping, ListCRMUserMappings, GetCRMSyncHealth
	Sync  Job      // SyncCRM: each mapped user's contacts to Salesforce
}

// maxCRMBody bounds the connection's body: a 4096-bit RSA key in PEM is about 3.3 KiB; the rest is a
// few short fields.
const maxCRMBody = 16 << 10

// crmFunctions are the tenant admin's CRM connection functions. They take the connector permissions
// (the admin who connects the PBX connects the CRM) on their own scope "crm", so a grant can cover one
// without the other.
func (a *App) crmFunctions() []function {
	op := func(name string, g guard, h func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error)) function {
		return function{azfunc.HTTPRoute(name, "req", "res", func(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
			return a.adminCall(ctx, r, maxCRMBody, g, func(ctx context.Context, actor core.Actor, id core.TenantID) (int, any, error) {
				return h(ctx, a.CRM.Admin, actor, id, r)
			})
		}), a.CRM.Admin}
	}
	read := guard{perm: access.ConnectorRead, scope: "crm"}
	write := guard{perm: access.ConnectorWrite, scope: "crm"}
	return []function{
		op("GetCRMConnection", read, func(ctx context.Context, s CRMAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			v, err := s.GetConnection(ctx, id)
			return http.StatusOK, toCRMConnectionJSON(v), err
		}),
		op("SetCRMConnection", write, func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				ConsumerKey string `json:"consumerKey"`
				Username    string `json:"username"`
				Host        string `json:"host"`
				PrivateKey  string `json:"privateKey"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			v, err := s.SetConnection(ctx, actor, id, crm.ConnectionInput{ConsumerKey: body.ConsumerKey, Username: body.Username,
				Host: body.Host, PrivateKey: body.PrivateKey})
			return http.StatusOK, toCRMConnectionJSON(v), err
		}),
		op("DeleteCRMConnection", write, func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DeleteConnection(ctx, actor, id)
		}),
		op("TestCRMConnection", write, func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			res, err := s.TestConnection(ctx, actor, id)
			out := crmTestJSON{Provider: res.Provider, OK: res.OK, Code: res.Code, Message: res.Message, TestedAt: res.TestedAt}
			if res.OK && res.Usage.Max > 0 {
				out.DailyAPIRequests = &apiUsageJSON{Used: res.Usage.Used, Max: res.Usage.Max}
			}
			return http.StatusOK, out, err
		}),
		op("GetCRMUserMapping", read, func(ctx context.Context, s CRMAdmin, _ core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			m, ok, err := s.GetUserMapping(ctx, id, r.Params["userId"])
			return http.StatusOK, toCRMUserJSON(m, ok), err
		}),
		op("SetCRMUserMapping", write, func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			var body struct {
				SalesforceUserID string `json:"salesforceUserId"`
				Contacts         string `json:"contacts"`
				Events           string `json:"events"`
			}
			if err := decodeJSONBody(r, &body); err != nil {
				return 0, nil, err
			}
			m, err := s.SetUserMapping(ctx, actor, id, r.Params["userId"], crm.MappingInput{SalesforceUserID: body.SalesforceUserID,
				Contacts: crm.Direction(body.Contacts), Events: crm.Direction(body.Events)})
			return http.StatusOK, toCRMUserJSON(m, true), err
		}),
		op("DeleteCRMUserMapping", write, func(ctx context.Context, s CRMAdmin, actor core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			return http.StatusNoContent, nil, s.DeleteUserMapping(ctx, actor, id, r.Params["userId"])
		}),
		op("ListCRMUserMappings", read, func(ctx context.Context, s CRMAdmin, _ core.Actor, id core.TenantID, r *azfunc.HTTPRequest) (int, any, error) {
			size := 0
			if v := r.Query.Get("pageSize"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return 0, nil, apperr.New(apperr.Invalid, "pageSize must be 1 to "+strconv.Itoa(crm.MaxPageSize), nil)
				}
				size = n
			}
			p, err := s.ListUserMappings(ctx, id, r.Query.Get("pageToken"), size)
			out := crmUsersJSON{Users: make([]crmUserJSON, 0, len(p.Mappings)), NextPageToken: p.Next}
			for _, m := range p.Mappings {
				out.Users = append(out.Users, toCRMUserJSON(m, true))
			}
			return http.StatusOK, out, err
		}),
		{azfunc.TimerRoute("SyncCRM", "timer", func(ctx context.Context, t *azfunc.TimerInfo) error { return runJob(ctx, t, a.CRM.Sync) }), a.CRM.Sync},
		op("GetCRMSyncHealth", read, func(ctx context.Context, s CRMAdmin, _ core.Actor, id core.TenantID, _ *azfunc.HTTPRequest) (int, any, error) {
			h, err := s.SyncHealth(ctx, id)
			return http.StatusOK, toCRMHealthJSON(h), err
		}),
	}
}

type crmUserJSON struct {
	UserID           string     `json:"userId"`
	Mapped           bool       `json:"mapped"`
	SalesforceUserID string     `json:"salesforceUserId,omitempty"`
	MatchedBy        string     `json:"matchedBy,omitempty"`
	Contacts         string     `json:"contacts,omitempty"`
	Events           string     `json:"events,omitempty"`
	SetAt            *time.Time `json:"setAt,omitempty"`
	SetBy            string     `json:"setBy,omitempty"`
}

type crmUsersJSON struct {
	Users         []crmUserJSON `json:"users"`
	NextPageToken string        `json:"nextPageToken,omitempty"`
}

func toCRMUserJSON(m crm.UserMapping, mapped bool) crmUserJSON {
	if !mapped {
		return crmUserJSON{UserID: m.UserID}
	}
	out := crmUserJSON{UserID: m.UserID, Mapped: true, SalesforceUserID: m.SalesforceUserID, MatchedBy: m.MatchedBy,
		Contacts: string(m.Contacts), Events: string(m.Events), SetBy: m.SetBy}
	if !m.SetAt.IsZero() {
		out.SetAt = &m.SetAt
	}
	return out
}

type crmConnectionJSON struct {
	Configured   bool       `json:"configured"`
	Provider     string     `json:"provider,omitempty"`
	ConsumerKey  string     `json:"consumerKey,omitempty"`
	Username     string     `json:"username,omitempty"`
	Host         string     `json:"host,omitempty"`
	ConfiguredAt *time.Time `json:"configuredAt,omitempty"`
	ConfiguredBy string     `json:"configuredBy,omitempty"`
	LastTest     *lastTest  `json:"lastTest,omitempty"`
}

type lastTest struct {
	OK       bool      `json:"ok"`
	Code     string    `json:"code,omitempty"`
	TestedAt time.Time `json:"testedAt"`
}

func toCRMConnectionJSON(v crm.ConnectionView) crmConnectionJSON {
	out := crmConnectionJSON{Configured: v.Provider != "", Provider: v.Provider, ConsumerKey: v.ConsumerKey, Username: v.Username,
		Host: v.Host, ConfiguredBy: v.ConfiguredBy}
	if !v.ConfiguredAt.IsZero() {
		out.ConfiguredAt = &v.ConfiguredAt
	}
	if !v.TestedAt.IsZero() {
		out.LastTest = &lastTest{OK: v.TestCode == "", Code: v.TestCode, TestedAt: v.TestedAt}
	}
	return out
}

type crmTestJSON struct {
	Provider         string        `json:"provider"`
	OK               bool          `json:"ok"`
	Code             string        `json:"code,omitempty"`
	Message          string        `json:"message,omitempty"`
	TestedAt         time.Time     `json:"testedAt"`
	DailyAPIRequests *apiUsageJSON `json:"dailyApiRequests,omitempty"`
}

type apiUsageJSON struct {
	Used int `json:"used"`
	Max  int `json:"max"`
}

type crmHealthJSON struct {
	Connected      bool            `json:"connected"`
	LastTest       *lastTest       `json:"lastTest,omitempty"`
	FailingUsers   int             `json:"failingUsers"`
	FailingRecords int             `json:"failingRecords"`
	Users          []crmUserHealth `json:"users"`
}

type crmUserHealth struct {
	UserID        string             `json:"userId"`
	Contacts      string             `json:"contacts"`
	Events        string             `json:"events"`
	LastRunAt     *time.Time         `json:"lastRunAt,omitempty"`
	LastSuccessAt *time.Time         `json:"lastSuccessAt,omitempty"`
	Code          string             `json:"code,omitempty"`
	Action        string             `json:"action,omitempty"`
	Synced        int                `json:"synced"`
	Failed        int                `json:"failed"`
	FailedRuns    int                `json:"failedRuns"`
	NotifiedAt    *time.Time         `json:"notifiedAt,omitempty"`
	Failing       []crmFailingRecord `json:"failing"`
}

type crmFailingRecord struct {
	Type          string    `json:"type"`
	DisplayName   string    `json:"displayName"`
	Code          string    `json:"code"`
	Fields        []string  `json:"fields,omitempty"`
	Attempts      int       `json:"attempts"`
	FirstFailedAt time.Time `json:"firstFailedAt"`
	LastFailedAt  time.Time `json:"lastFailedAt"`
	Action        string    `json:"action"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toCRMHealthJSON(h crm.Health) crmHealthJSON {
	out := crmHealthJSON{Connected: h.Connected, FailingUsers: h.FailingUsers, FailingRecords: h.FailingRecords, Users: []crmUserHealth{}}
	if !h.LastTestedAt.IsZero() {
		out.LastTest = &lastTest{OK: h.LastTestCode == "", Code: h.LastTestCode, TestedAt: h.LastTestedAt}
	}
	for _, u := range h.Users {
		j := crmUserHealth{UserID: u.UserID, Contacts: string(u.Contacts), Events: string(u.Events), LastRunAt: timePtr(u.LastRunAt), LastSuccessAt: timePtr(u.LastSuccessAt),
			Code: u.LastCode, Action: u.Action, Synced: u.Synced, Failed: u.Failed, FailedRuns: u.FailedRuns, NotifiedAt: timePtr(u.NotifiedAt),
			Failing: []crmFailingRecord{}}
		for _, f := range u.Failing {
			r := crmFailingRecord{Type: f.Type, DisplayName: f.DisplayName, Code: f.Code, Attempts: f.Attempts,
				FirstFailedAt: f.FirstFailedAt, LastFailedAt: f.LastFailedAt, Action: f.Action}
			if f.Fields != "" {
				r.Fields = strings.Split(f.Fields, ",")
			}
			j.Failing = append(j.Failing, r)
		}
		out.Users = append(out.Users, j)
	}
	return out
}
