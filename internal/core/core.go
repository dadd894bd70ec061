// Package core is the kernel every module shares: the tenant id, the one parser of Entra ids, and who
// performs an action. It imports nothing of the project but its own apperr, so any package may import it.
package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/connecthub/connecthub/internal/core/apperr"
)

// TenantID is a Microsoft Entra tenant id in canonical form (lowercase GUID). Only ParseTenantID makes
// one, so a TenantID is always safe to use as a PartitionKey and inside filters and secret names.
type TenantID string

// ErrInvalidID is returned (wrapped in an *IDError) for an id that is not a GUID. Table Storage's key
// errors (store.ErrInvalidKey) are the same sentinel, so one errors.Is covers both.
var ErrInvalidID = errors.New("invalid key")

// IDError says which value was refused and why, without echoing the value (it may be hostile or personal).
type IDError struct {
	What   string // "tenant id", "user id", ...
	Reason string
}

func (e *IDError) Error() string { return fmt.Sprintf("invalid %s: %s", e.What, e.Reason) }

// Unwrap lets callers test with errors.Is(err, ErrInvalidID).
func (e *IDError) Unwrap() error { return ErrInvalidID }

// ParseTenantID accepts a GUID in any letter case, with or without braces, and returns it canonical.
func ParseTenantID(s string) (TenantID, error) {
	id, err := parseGUID("tenant id", s)
	return TenantID(id), err
}

// ReservedTenant is the nil GUID: well-formed, but no customer tenant has it. It names the operator's
// own partition (store.OperatorPartition) and the health probe's tenant, so requests may not name it.
const ReservedTenant TenantID = "00000000-0000-0000-0000-000000000000"

// ParseCustomerTenant reads a customer's tenant id from a request: a GUID that is not ReservedTenant.
// Its error is an apperr Invalid whose message is safe to answer.
func ParseCustomerTenant(s string) (TenantID, error) {
	id, err := ParseTenantID(s)
	if err != nil || id == ReservedTenant {
		return "", apperr.New(apperr.Invalid, "tenant id must be a GUID", err)
	}
	return id, nil
}

// ParseObjectID is ParseTenantID for the other Entra ids (users, service principals): a GUID in any
// case, with or without braces, returned lowercase as Entra writes it.
func ParseObjectID(s string) (string, error) { return parseGUID("object id", s) }

func parseGUID(what, s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if !IsGUID(s) {
		return "", &IDError{What: what, Reason: "not a GUID"}
	}
	return strings.ToLower(s), nil
}

// String returns the canonical GUID.
func (t TenantID) String() string { return string(t) }

// Check re-checks a TenantID that might have been made by a conversion rather than ParseTenantID.
func (t TenantID) Check() error {
	if !IsGUID(string(t)) || strings.ToLower(string(t)) != string(t) {
		return &IDError{What: "tenant id", Reason: "not a canonical GUID (use ParseTenantID)"}
	}
	return nil
}

// IsGUID reports whether s is a GUID in the 8-4-4-4-12 hex form (any case, no braces). The webhook
// asks it several times per notification item, hence the table.
func IsGUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return hexOnly(s[:8]) && hexOnly(s[9:13]) && hexOnly(s[14:18]) && hexOnly(s[19:23]) && hexOnly(s[24:])
}

func hexOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex[s[i]] {
			return false
		}
	}
	return true
}

var isHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdefABCDEF" {
		t[c] = true
	}
	return t
}()

// Actor is who performs an action, as recorded in the audit trail: an object id or a fixed name, never
// a person's name or address.
type Actor struct {
	ID   string // Entra object id of the operator or admin, or a fixed name ("function-key", "system")
	Kind string // user, app, key, system
	// InvocationID joins the audit entry with the function's logs.
	InvocationID string
}

// System is the actor of the jobs.
var System = Actor{ID: "system", Kind: "system"}
