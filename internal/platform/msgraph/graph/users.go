package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// User is the profile ConnectHub keeps of a licensed user (all personal: seal before storing).
type User struct {
	ID                string
	DisplayName       string
	UserPrincipalName string
	Mail              string
	BusinessPhones    []string
	MobilePhone       string
	Department        string
	JobTitle          string
	// AccountEnabled is nil when Graph did not say (delta pages carry only changed properties).
	AccountEnabled *bool
}

// userSelect is every property User holds, and nothing more (data minimisation starts at the request).
var userSelect = []string{"id", "displayName", "userPrincipalName", "mail", "businessPhones", "mobilePhone",
	"department", "jobTitle", "accountEnabled"}

// GetUser reads one user's profile by object id (app-only: User.Read.All). ErrNotFound if there is none.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	if id == "" {
		return User{}, errors.New("get user: empty id")
	}
	b := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(id)
	u, err := b.Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
	})
	if err != nil {
		return User{}, wrap("get user", err)
	}
	if u == nil {
		return User{}, &Error{Op: "get user", Status: 200, Code: "emptyBody"}
	}
	return toUser(u), nil
}

func toUser(u models.Userable) User {
	return User{
		ID:                str(u.GetId()),
		DisplayName:       str(u.GetDisplayName()),
		UserPrincipalName: str(u.GetUserPrincipalName()),
		Mail:              str(u.GetMail()),
		BusinessPhones:    u.GetBusinessPhones(),
		MobilePhone:       str(u.GetMobilePhone()),
		Department:        str(u.GetDepartment()),
		JobTitle:          str(u.GetJobTitle()),
		AccountEnabled:    u.GetAccountEnabled(),
	}
}

// UserChange is one item of a users delta page.
type UserChange struct {
	User
	// Removed is set when the user was deleted (Graph's "@removed"; RemovedReason "changed" for a soft
	// delete that can still be restored within 30 days, "deleted" for a permanent one). Only ID is set then.
	Removed       bool
	RemovedReason string
}

// Disabled reports whether the change says the account is disabled (accountEnabled false).
func (u UserChange) Disabled() bool { return u.AccountEnabled != nil && !*u.AccountEnabled }

// UsersDelta runs a users delta query and calls fn for every changed user, page by page, following
// @odata.nextLink. deltaLink "" starts a full enumeration; otherwise it resumes from a link a previous
// call returned (Delta().WithUrl). It returns the new @odata.deltaLink to keep for the next call.
// ErrDeltaExpired means the link is too old: call again with "". If fn fails, the error is returned and
// the old link stays valid (nothing was committed), so the caller can simply retry.
func (c *Client) UsersDelta(ctx context.Context, deltaLink string, fn func(UserChange) error) (string, error) {
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).Delta()
	var cfg *users.DeltaRequestBuilderGetRequestConfiguration
	b := root
	if deltaLink != "" {
		b = root.WithUrl(deltaLink)
	} else {
		cfg = &users.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.DeltaRequestBuilderGetQueryParameters{Select: userSelect},
		}
	}
	for page := 0; ; page++ {
		resp, err := b.GetAsDeltaGetResponse(ctx, cfg)
		if err != nil {
			return "", wrap("users delta", err)
		}
		if resp == nil {
			return "", &Error{Op: "users delta", Status: 200, Code: "emptyBody"}
		}
		for _, u := range resp.GetValue() {
			ch := UserChange{User: toUser(u)}
			if removed, ok := u.GetAdditionalData()["@removed"]; ok {
				ch.Removed = true
				ch.RemovedReason = removedReason(removed)
			}
			if err := fn(ch); err != nil {
				return "", fmt.Errorf("users delta: %w", err)
			}
		}
		if next := str(resp.GetOdataNextLink()); next != "" {
			b, cfg = root.WithUrl(next), nil
			continue
		}
		link := str(resp.GetOdataDeltaLink())
		if link == "" {
			return "", &Error{Op: "users delta", Status: 200, Code: "noDeltaLink"}
		}
		return link, nil
	}
}

// removedReason digs "reason" out of the @removed object as kiota's JSON parser leaves it in
// AdditionalData (a map of parse nodes, or plain values in other serialisers).
func removedReason(v any) string {
	switch m := v.(type) {
	case map[string]any:
		if r, ok := m["reason"]; ok {
			return stringOf(r)
		}
	case map[string]*any:
		if r, ok := m["reason"]; ok && r != nil {
			return stringOf(*r)
		}
	}
	return ""
}

func stringOf(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case *string:
		return str(s)
	case interface{ GetStringValue() (*string, error) }:
		p, _ := s.GetStringValue()
		return str(p)
	}
	return ""
}
