package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/connecthub/connecthub/internal/platform/ttlcache"
)

// KeyVaultOptions tune the Key Vault store. Zero values pick the defaults.
type KeyVaultOptions struct {
	Client       *azsecrets.ClientOptions
	CacheTTL     time.Duration // how long values are served from memory (default 5 min)
	CacheMax     int           // entries (default 10,000)
	PollInterval time.Duration // between soft-delete/purge checks (default 1 s)
	PollTimeout  time.Duration // for a deletion to finish (default 2 min)
	Logger       *slog.Logger  // default slog.Default()
}

// KeyVault is a Store on Azure Key Vault (azsecrets). Values are cached in memory for CacheTTL so that
// steady-state work makes no Key Vault call per notification; Set and Delete update the cache at once,
// other instances see changes after CacheTTL at the latest.
type KeyVault struct {
	c     *azsecrets.Client
	cache *ttlcache.Cache[string, string]
	poll  time.Duration
	limit time.Duration
	log   *slog.Logger
}

var (
	_ Store      = (*KeyVault)(nil)
	_ Lister     = (*KeyVault)(nil)
	_ InfoLister = (*KeyVault)(nil)
)

// NewCredential returns the credential for Key Vault (and Table Storage): a user-assigned managed
// identity when managedIdentityClientID is set (in Azure), DefaultAzureCredential otherwise (a
// developer's az login locally).
func NewCredential(managedIdentityClientID string) (azcore.TokenCredential, error) {
	if managedIdentityClientID != "" {
		c, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(managedIdentityClientID),
		})
		if err != nil {
			return nil, fmt.Errorf("create managed identity credential: %w", err)
		}
		return c, nil
	}
	c, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("create default azure credential: %w", err)
	}
	return c, nil
}

// NewKeyVault returns a Store on the vault at vaultURL (https://<name>.vault.azure.net/).
func NewKeyVault(vaultURL string, cred azcore.TokenCredential, o *KeyVaultOptions) (*KeyVault, error) {
	if o == nil {
		o = &KeyVaultOptions{}
	}
	c, err := azsecrets.NewClient(vaultURL, cred, o.Client)
	if err != nil {
		return nil, fmt.Errorf("create key vault client: %w", err)
	}
	kv := &KeyVault{c: c, poll: o.PollInterval, limit: o.PollTimeout, log: o.Logger}
	if kv.poll <= 0 {
		kv.poll = time.Second
	}
	if kv.limit <= 0 {
		kv.limit = 2 * time.Minute
	}
	if kv.log == nil {
		kv.log = slog.Default()
	}
	ttl, max := o.CacheTTL, o.CacheMax
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if max <= 0 {
		max = 10_000
	}
	kv.cache = ttlcache.New[string, string](ttl, max, nil)
	return kv, nil
}

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// Get implements Store.
func (kv *KeyVault) Get(ctx context.Context, name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	if v, ok := kv.cache.Get(name); ok {
		return v, nil
	}
	resp, err := kv.c.GetSecret(ctx, name, "", nil)
	if statusOf(err) == http.StatusNotFound {
		return "", fmt.Errorf("get secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w", name, err)
	}
	var v string
	if resp.Value != nil {
		v = *resp.Value
	}
	kv.cache.Set(name, v)
	return v, nil
}

// Set implements Store. A name that is soft-deleted (Key Vault answers 409) is purged first, where
// purging is allowed, and the write retried.
func (kv *KeyVault) Set(ctx context.Context, name, value string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	kv.cache.Delete(name)
	deadline := time.Now().Add(kv.limit)
	for {
		_, err := kv.c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &value}, nil)
		if err == nil {
			kv.cache.Set(name, value)
			return nil
		}
		if statusOf(err) != http.StatusConflict {
			return fmt.Errorf("set secret %s: %w", name, err)
		}
		// The name is held by a deleted secret (or one being deleted or purged): purge it if it is listed,
		// then retry until the purge has finished in the background.
		ok, perr := kv.purge(ctx, name, false, deadline)
		if perr != nil {
			return fmt.Errorf("set secret %s: purge the deleted one: %w", name, perr)
		}
		if !ok {
			return fmt.Errorf("set secret %s: a deleted secret of this name exists and cannot be purged: %w", name, err)
		}
		if err := kv.wait(ctx, deadline); err != nil {
			return fmt.Errorf("set secret %s: %w", name, err)
		}
	}
}

// List implements Lister.
func (kv *KeyVault) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := kv.ListInfo(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out, nil
}

// ListInfo implements InfoLister. Key Vault has no server-side name filter: it pages through every
// secret's properties (values are not read) and keeps the names with prefix.
func (kv *KeyVault) ListInfo(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	pager := kv.c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			name := p.ID.Name()
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			i := Info{Name: name}
			if p.Attributes != nil && p.Attributes.Updated != nil {
				i.Updated = p.Attributes.Updated.UTC()
			}
			out = append(out, i)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete implements Store: soft delete, wait until Key Vault reports the secret as deleted, then purge.
// Purge is refused (403) on a vault with purge protection; the secret then stays recoverable by an
// operator until the vault's retention ends, and Delete still succeeds.
func (kv *KeyVault) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	kv.cache.Delete(name)
	_, err := kv.c.DeleteSecret(ctx, name, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	// On 404 the secret may have been deleted earlier and not purged: purge looks for that without waiting.
	if _, err := kv.purge(ctx, name, err == nil, time.Now().Add(kv.limit)); err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	kv.cache.Delete(name)
	return nil
}

// purge purges the soft-deleted secret name. With pending set (we just deleted it, or Set was refused
// because of it), it first waits until Key Vault lists it as deleted: DeleteSecret returns before the
// deletion is done. Otherwise a name that is not listed as deleted means there is nothing to purge.
// It reports false when purging is not allowed.
func (kv *KeyVault) purge(ctx context.Context, name string, pending bool, deadline time.Time) (bool, error) {
	for {
		_, err := kv.c.GetDeletedSecret(ctx, name, nil)
		if err == nil {
			break
		}
		if statusOf(err) != http.StatusNotFound {
			return false, fmt.Errorf("get deleted secret: %w", err)
		}
		if !pending {
			return true, nil
		}
		if err := kv.wait(ctx, deadline); err != nil {
			return false, fmt.Errorf("wait for the deletion to finish: %w", err)
		}
	}
	for {
		_, err := kv.c.PurgeDeletedSecret(ctx, name, nil)
		switch statusOf(err) {
		case 0:
			if err != nil {
				return false, fmt.Errorf("purge deleted secret: %w", err)
			}
			return true, nil
		case http.StatusForbidden:
			kv.log.InfoContext(ctx, "secret purge not allowed, left soft-deleted", "secret", name)
			return false, nil
		case http.StatusNotFound:
			return true, nil // purged meanwhile
		case http.StatusConflict: // the soft delete is still being finalised
			if err := kv.wait(ctx, deadline); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("purge deleted secret: %w", err)
		}
	}
}

func (kv *KeyVault) wait(ctx context.Context, deadline time.Time) error {
	if time.Now().After(deadline) {
		return errors.New("timed out waiting for key vault")
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(kv.poll):
		return nil
	}
}
