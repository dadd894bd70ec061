package tables

import (
	"context"
	"encoding/json"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/connecthub/connecthub/internal/core"
)

// GetRaw reads a row's stored properties as they are at rest: nothing decoded, sealed fields not
// opened. Tests use it to prove what the typed API cannot show (that a personal field is ciphertext).
func (t *raw) GetRaw(ctx context.Context, tenant core.TenantID, rk string) (map[string]any, error) {
	if err := CheckKey(tenant, rk); err != nil {
		return nil, err
	}
	resp, err := t.client.GetEntity(ctx, string(tenant), rk, nil)
	if err != nil {
		return nil, classify(err)
	}
	var m map[string]any
	err = json.Unmarshal(resp.Value, &m)
	return m, err
}

// PutRaw writes an entity's properties as given, bypassing the codec: tests use it for rows another
// version of the code or another tool might have written.
func (t *raw) PutRaw(ctx context.Context, props map[string]any) error {
	b, err := json.Marshal(props)
	if err != nil {
		return err
	}
	_, err = t.client.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	return err
}
