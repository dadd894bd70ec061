package tables

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"
)

// JoinKey builds a composite row key; each part must already be a valid key part.
func JoinKey(parts ...string) string { return strings.Join(parts, KeySep) }

func SplitKey(what, rk string, n int) ([]string, error) {
	parts := strings.Split(rk, KeySep)
	if len(parts) != n {
		return nil, &KeyError{What: what, Reason: fmt.Sprintf("want %d parts", n)}
	}
	return parts, nil
}

// maxForeignID bounds ids we do not control so that their encoding fits a 1 KiB key with a prefix.
const maxForeignID = 600

// EncodeForeignID makes an id from another system (a Graph event id may hold / + =) safe for a key,
// reversibly: unpadded base64url uses only letters, digits, - and _.
func EncodeForeignID(what, id string) (string, error) {
	if id == "" {
		return "", &KeyError{What: what, Reason: "empty"}
	}
	if len(id) > maxForeignID {
		return "", &KeyError{What: what, Reason: fmt.Sprintf("longer than %d bytes", maxForeignID)}
	}
	return base64.RawURLEncoding.EncodeToString([]byte(id)), nil
}

func DecodeForeignID(what, s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", &KeyError{What: what, Reason: "not an encoded id"}
	}
	return string(b), nil
}

// SimpleKey validates a single-part key field.
func SimpleKey(what, v string) (string, error) {
	if err := ValidateKeyPart(what, v); err != nil {
		return "", err
	}
	return v, nil
}

// NewestFirstID makes a row key that sorts newest first (inverted 100-ns ticks) with random bits
// against collisions, so a partition lists its latest audit entries or receipts first.
func NewestFirstID(at time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	inv := uint64(math.MaxInt64) - uint64(at.UTC().UnixNano()/100)
	return fmt.Sprintf("%019d-%s", inv, hex.EncodeToString(r[:]))
}
