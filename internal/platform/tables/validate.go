package tables

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/connecthub/connecthub/internal/core"
)

// ErrInvalidKey is returned (wrapped in a *KeyError) for a tenant id or key Table Storage cannot hold or
// that we refuse to store.
var ErrInvalidKey = core.ErrInvalidID

// KeyError says which value was refused and why, without echoing the value (it may be hostile or personal).
type KeyError struct {
	What   string // "tenant id", "row key", "resource", ...
	Reason string
}

func (e *KeyError) Error() string { return fmt.Sprintf("invalid %s: %s", e.What, e.Reason) }

// Unwrap lets callers test with errors.Is(err, ErrInvalidKey).
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// CheckTenant re-checks a tenant id that might have been made by a conversion rather than parsing.
func CheckTenant(t core.TenantID) error {
	if err := t.Check(); err != nil {
		return &KeyError{What: "tenant id", Reason: "not a canonical GUID (use core.ParseTenantID)"}
	}
	return nil
}

// maxKeyBytes is Table Storage's limit for PartitionKey and RowKey (1 KiB).
const maxKeyBytes = 1024

// KeySep joins the parts of composite row keys; ValidateKeyPart refuses it inside a part.
const KeySep = "|"

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

// ValidateKeyPart is ValidateKey plus: no key separator, so composite keys split unambiguously.
func ValidateKeyPart(what, k string) error {
	if err := ValidateKey(what, k); err != nil {
		return err
	}
	if strings.Contains(k, KeySep) {
		return &KeyError{What: what, Reason: "contains " + KeySep}
	}
	return nil
}
