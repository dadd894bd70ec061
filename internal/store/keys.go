package store

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// joinKey builds a composite row key; each part must already be a valid key part.
func joinKey(parts ...string) string { return strings.Join(parts, keySep) }

func splitKey(what, rk string, n int) ([]string, error) {
	parts := strings.Split(rk, keySep)
	if len(parts) != n {
		return nil, &KeyError{What: what, Reason: fmt.Sprintf("want %d parts", n)}
	}
	return parts, nil
}

// maxForeignID bounds ids we do not control so that their encoding fits a 1 KiB key with a prefix.
const maxForeignID = 600

// encodeForeignID makes an id from another system (a Graph event id may hold / + =) safe for a key,
// reversibly: unpadded base64url uses only letters, digits, - and _.
func encodeForeignID(what, id string) (string, error) {
	if id == "" {
		return "", &KeyError{What: what, Reason: "empty"}
	}
	if len(id) > maxForeignID {
		return "", &KeyError{What: what, Reason: fmt.Sprintf("longer than %d bytes", maxForeignID)}
	}
	return base64.RawURLEncoding.EncodeToString([]byte(id)), nil
}

func decodeForeignID(what, s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", &KeyError{What: what, Reason: "not an encoded id"}
	}
	return string(b), nil
}

// simpleKey validates a single-part key field.
func simpleKey(what, v string) (string, error) {
	if err := validateKeyPart(what, v); err != nil {
		return "", err
	}
	return v, nil
}
