package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TenantID is a Microsoft Entra tenant id in canonical form (lowercase GUID). Only ParseTenantID makes
// one, so a TenantID is always safe to use as a PartitionKey and inside filters and secret names.
type TenantID string

// ErrInvalidKey is returned (wrapped in a *KeyError) for a tenant id or key Table Storage cannot hold or
// that we refuse to store.
var ErrInvalidKey = errors.New("invalid key")

// KeyError says which value was refused and why, without echoing the value (it may be hostile or personal).
type KeyError struct {
	What   string // "tenant id", "row key", "resource", ...
	Reason string
}

func (e *KeyError) Error() string { return fmt.Sprintf("invalid %s: %s", e.What, e.Reason) }

// Unwrap lets callers test with errors.Is(err, ErrInvalidKey).
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// ParseTenantID accepts a GUID in any letter case, with or without braces, and returns it canonical.
func ParseTenantID(s string) (TenantID, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if !isGUID(s) {
		return "", &KeyError{What: "tenant id", Reason: "not a GUID"}
	}
	return TenantID(strings.ToLower(s)), nil
}

// String returns the canonical GUID.
func (t TenantID) String() string { return string(t) }

// valid re-checks a TenantID that might have been made by a conversion rather than ParseTenantID.
func (t TenantID) valid() error {
	if !isGUID(string(t)) || strings.ToLower(string(t)) != string(t) {
		return &KeyError{What: "tenant id", Reason: "not a canonical GUID (use ParseTenantID)"}
	}
	return nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// maxKeyBytes is Table Storage's limit for PartitionKey and RowKey (1 KiB).
const maxKeyBytes = 1024

// keySep joins the parts of composite row keys; validateKeyPart refuses it inside a part.
const keySep = "|"

// ValidateKey checks a row key (or a part of one) against what Table Storage forbids in keys
// (/ \ # ?, control characters, more than 1 KiB) and what we forbid on top: ' (batch sub-requests do not
// escape it, see go-sdk-notes), invalid UTF-8 and the empty string.
func ValidateKey(what, k string) error {
	switch {
	case k == "":
		return &KeyError{What: what, Reason: "empty"}
	case len(k) > maxKeyBytes:
		return &KeyError{What: what, Reason: "longer than 1024 bytes"}
	case !utf8.ValidString(k):
		return &KeyError{What: what, Reason: "not valid UTF-8"}
	}
	for _, r := range k {
		switch {
		case r == '/' || r == '\\' || r == '#' || r == '?':
			return &KeyError{What: what, Reason: fmt.Sprintf("contains forbidden character %q", r)}
		case r == '\'':
			return &KeyError{What: what, Reason: "contains a single quote"}
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return &KeyError{What: what, Reason: "contains a control character"}
		}
	}
	return nil
}

// validateKeyPart is ValidateKey plus: no key separator, so composite keys split unambiguously.
func validateKeyPart(what, k string) error {
	if err := ValidateKey(what, k); err != nil {
		return err
	}
	if strings.Contains(k, keySep) {
		return &KeyError{What: what, Reason: "contains " + keySep}
	}
	return nil
}
