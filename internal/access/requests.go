package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/platform/tenantkey"
)

// An operator's access to a tenant goes request → approval → grant → expiry:
//   - an operator asks (RequestOperatorAccess) with a justification and a duration of at most 8 h;
//   - a security officer approves it (ApproveAccessRequest), never the operator's own: the grant of
//     OperatorSupport runs for the requested time from the approval and then ends by itself;
//   - the tenant admin sees every request and grant on their tenant, and may deny a pending request or
//     revoke a running grant (the tenant keeps the last word on its own data);
//   - a request nobody decides lapses after RequestTTL.
// Every step is an entry of the tenant's authorisation log (access.request, access.approve,
// access.deny, access.use, access.expire, access.revoke).

// RequestTTL is how long a request waits for a decision.
const RequestTTL = 24 * time.Hour

// The states of an access request. Lapsed is never stored: a pending request past RequestTTL is shown
// as lapsed and can no longer be approved.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
	RequestLapsed   = "lapsed"
)

// keepDecided is how long a decided or lapsed request stays listed; the authorisation log keeps the
// history for as long as the tenant's audit trail.
const keepDecided = 30 * 24 * time.Hour

// AccessRequest is an operator's request for time-bound access to a tenant (table accessrequests, in
// the partition of the tenant it asks about).
type AccessRequest struct {
	ID            string `table:"key"`      // newest first
	OperatorID    string `table:"personal"` // object id of the operator (operator tenant)
	Minutes       int    // how long the access should last once approved
	Justification string `table:"sealed"` // why: free text that may name people
	RequestedAt   time.Time
	State         string    // pending, approved, denied
	DecidedBy     string    `table:"personal"` // object id of the officer who approved or the person who denied
	DecidedAt     time.Time // zero while pending
}

func (r *AccessRequest) RowKey() (string, error)   { return tables.SimpleKey("request id", r.ID) }
func (r *AccessRequest) SetRowKey(rk string) error { r.ID = rk; return nil }

// StateAt is the request's state as of now: pending requests past RequestTTL have lapsed.
func (r AccessRequest) StateAt(now time.Time) string {
	if r.State == RequestPending && !now.Before(r.RequestedAt.Add(RequestTTL)) {
		return RequestLapsed
	}
	return r.State
}

// RequestOperatorAccess records an operator's request for d of OperatorSupport on tenant.
func (a *Authorizer) RequestOperatorAccess(ctx context.Context, operator Principal, tenant core.TenantID, d time.Duration, justification string) (AccessRequest, error) {
	r, err := a.requestAccess(ctx, operator, tenant, d, justification)
	return r, a.record(ctx, tenant, operator, "access.request", RoleOperatorSupport.Name, operator.ObjectID, err)
}

func (a *Authorizer) requestAccess(ctx context.Context, operator Principal, tenant core.TenantID, d time.Duration, justification string) (AccessRequest, error) {
	if err := a.Allow(ctx, operator, AccessAsk, TenantResource(tenant)); err != nil {
		return AccessRequest{}, err
	}
	if d < time.Minute || d > MaxOperatorAccess {
		return AccessRequest{}, apperr.New(apperr.Invalid, fmt.Sprintf("minutes must be between 1 and %d", int(MaxOperatorAccess.Minutes())), nil)
	}
	justification = strings.TrimSpace(justification)
	if justification == "" || len(justification) > maxJustification {
		return AccessRequest{}, apperr.New(apperr.Invalid, fmt.Sprintf("a justification of 1..%d characters is required", maxJustification), nil)
	}
	now := a.now().UTC()
	r := AccessRequest{ID: tables.NewestFirstID(now), OperatorID: operator.ObjectID, Minutes: int(d / time.Minute),
		Justification: justification, RequestedAt: now, State: RequestPending}
	if _, err := a.data.Requests.Insert(ctx, tenant, r); err != nil {
		if errors.Is(err, tenantkey.ErrNoKey) { // no key: no such tenant, or its data is already gone
			return AccessRequest{}, apperr.New(apperr.NotFound, "no such tenant", nil)
		}
		return AccessRequest{}, fmt.Errorf("store request: %w", err)
	}
	return r, nil
}

// AccessRequests lists the tenant's requests, newest first, for whoever reads its grants (the tenant
// admin, a security officer). Requests decided or lapsed more than 30 days ago are dropped on the way.
func (a *Authorizer) AccessRequests(ctx context.Context, by Principal, tenant core.TenantID) ([]AccessRequest, error) {
	if err := a.Allow(ctx, by, AccessRead, TenantResource(tenant)); err != nil {
		return nil, err
	}
	now := a.now()
	var out []AccessRequest
	for r, err := range a.data.Requests.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		ended := r.DecidedAt
		if r.StateAt(now) == RequestLapsed {
			ended = r.RequestedAt.Add(RequestTTL)
		}
		if !ended.IsZero() && now.Sub(ended) > keepDecided {
			_ = a.data.Requests.Delete(ctx, tenant, r.ID) // best effort: the next listing tries again
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// ApproveAccessRequest grants the requesting operator OperatorSupport on tenant for the requested time,
// from now. Only a security officer approves, and never their own request.
func (a *Authorizer) ApproveAccessRequest(ctx context.Context, officer Principal, tenant core.TenantID, requestID string) (Authorisation, error) {
	g, operatorID, err := a.approve(ctx, officer, tenant, requestID)
	return g, a.record(ctx, tenant, officer, "access.approve", RoleOperatorSupport.Name, operatorID, err)
}

func (a *Authorizer) approve(ctx context.Context, officer Principal, tenant core.TenantID, requestID string) (Authorisation, string, error) {
	if err := a.Allow(ctx, officer, AccessApprove, TenantResource(tenant)); err != nil {
		return Authorisation{}, "", err
	}
	now := a.now().UTC()
	r, err := a.decide(ctx, tenant, requestID, func(r *AccessRequest) error {
		if r.OperatorID == officer.ObjectID {
			return apperr.New(apperr.Forbidden, "an officer cannot approve their own access", nil)
		}
		r.State, r.DecidedBy, r.DecidedAt = RequestApproved, officer.ObjectID, now
		return nil
	})
	if err != nil {
		return Authorisation{}, r.OperatorID, err
	}
	// The request is marked approved before the grant exists: if storing the grant fails, the request
	// shows approved with no grant in the list, and the operator asks again — never a grant without
	// a decided request behind it.
	g := Authorisation{PrincipalID: r.OperatorID, Role: RoleOperatorSupport.Name, PrincipalKind: "user",
		PrincipalTenant: string(a.operatorTenant), GrantedAt: now, GrantedBy: officer.ObjectID,
		ExpiresAt: now.Add(time.Duration(r.Minutes) * time.Minute), Justification: r.Justification}
	if _, err := a.data.Authorisations.Upsert(ctx, tenant, g); err != nil {
		return Authorisation{}, r.OperatorID, fmt.Errorf("store grant: %w", err)
	}
	return g, r.OperatorID, nil
}

// DenyAccessRequest closes a pending request without access: a security officer, or the tenant admin
// (AccessGrant) who does not want staff in their tenant now.
func (a *Authorizer) DenyAccessRequest(ctx context.Context, by Principal, tenant core.TenantID, requestID string) error {
	operatorID, err := a.deny(ctx, by, tenant, requestID)
	return a.record(ctx, tenant, by, "access.deny", RoleOperatorSupport.Name, operatorID, err)
}

func (a *Authorizer) deny(ctx context.Context, by Principal, tenant core.TenantID, requestID string) (string, error) {
	res := TenantResource(tenant)
	if a.Allow(ctx, by, AccessApprove, res) != nil && a.Allow(ctx, by, AccessGrant, res) != nil {
		return "", ErrDenied
	}
	now := a.now().UTC()
	r, err := a.decide(ctx, tenant, requestID, func(r *AccessRequest) error {
		r.State, r.DecidedBy, r.DecidedAt = RequestDenied, by.ObjectID, now
		return nil
	})
	return r.OperatorID, err
}

// decide applies fn to a pending request, under optimistic concurrency: two officers deciding at once
// cannot both win, and a request is decided once.
func (a *Authorizer) decide(ctx context.Context, tenant core.TenantID, requestID string, fn func(*AccessRequest) error) (AccessRequest, error) {
	if tables.ValidateKeyPart("request id", requestID) != nil {
		return AccessRequest{}, apperr.New(apperr.NotFound, "no such request", nil)
	}
	now := a.now()
	var operatorID string
	r, err := a.data.Requests.Update(ctx, tenant, requestID, func(r *AccessRequest) error {
		operatorID = r.OperatorID
		if st := r.StateAt(now); st != RequestPending {
			return apperr.New(apperr.Conflict, "the request is "+st, nil)
		}
		return fn(r)
	})
	if errors.Is(err, tables.ErrNotFound) {
		return AccessRequest{}, apperr.New(apperr.NotFound, "no such request", nil)
	}
	if err != nil {
		return AccessRequest{OperatorID: operatorID}, err
	}
	return r, nil
}
