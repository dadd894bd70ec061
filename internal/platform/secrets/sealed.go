package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/connecthub/connecthub/internal/core"
)

// Sealer seals a value with the tenant's data key (tenantkey.Keys, which is also the table engine's
// Sealer); label and key are associated data, so a value opens only as what it was stored as.
type Sealer interface {
	Seal(ctx context.Context, tenant core.TenantID, label, key string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenant core.TenantID, label, key string, sealed []byte) ([]byte, error)
}

// ErrNoSealed: the secret is missing, or is not a sealed JSON value.
var ErrNoSealed = errors.New("sealed secret missing or unreadable")

// SetSealed stores v as JSON sealed with the tenant's data key under name. A tenant credential (PBX,
// CRM) is kept this way: in Key Vault, and encrypted apart from it, so crypto-shredding the tenant kills
// it too.
func SetSealed(ctx context.Context, sec Store, sealer Sealer, tenant core.TenantID, name, label, key string, v any) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sealed, err := sealer.Seal(ctx, tenant, label, key, plain)
	if err != nil {
		return err
	}
	return sec.Set(ctx, name, base64.StdEncoding.EncodeToString(sealed))
}

// GetSealed opens the value SetSealed stored under name into v. Missing, not sealed or not JSON is
// ErrNoSealed; a key that does not open it is the sealer's error.
func GetSealed(ctx context.Context, sec Store, sealer Sealer, tenant core.TenantID, name, label, key string, v any) error {
	raw, err := sec.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return ErrNoSealed
	}
	if err != nil {
		return err
	}
	sealed, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return fmt.Errorf("%w: not sealed", ErrNoSealed)
	}
	plain, err := sealer.Open(ctx, tenant, label, key, sealed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%w: %v", ErrNoSealed, err)
	}
	return nil
}
