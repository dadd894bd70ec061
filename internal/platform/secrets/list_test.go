package secrets

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/secrets/kvtest"
)

// Every store lists exactly the current names under a prefix, so the retention job can delete all of a
// tenant's secrets without knowing each name (service-user tokens carry a user id).
func TestListByTenantPrefix(t *testing.T) {
	t.Parallel()
	a := core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e5f")
	b := core.TenantID("6f1b3c1e-2d4a-4b5c-8d9e-0a1b2c3d4e60")
	su, err := ServiceUserTokenName(a, "11111111-2222-3333-4444-555555555555")
	if err != nil {
		t.Fatal(err)
	}
	fv := kvtest.New(t)
	file, err := NewFile(filepath.Join(t.TempDir(), "s.enc"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	stores := []struct {
		name string
		s    interface {
			Store
			Lister
		}
	}{
		{"memory", NewMemory()},
		{"file", file},
		{"keyvault", newTestVault(t, fv, &kvtest.Credential{})},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			for _, n := range []string{TenantDataKeyName(a), PBXCredentialName(a), su, TenantDataKeyName(b), NotificationCertName, "gone"} {
				if err := tc.s.Set(ctx, n, "v"); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.s.Delete(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			got, err := tc.s.List(ctx, TenantSecretPrefix(a))
			want := []string{TenantDataKeyName(a), PBXCredentialName(a), su}
			slices.Sort(want)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("List(tenant a) = %v, %v; want %v", got, err, want)
			}
			all, err := tc.s.List(ctx, "")
			if err != nil || len(all) != 5 || slices.Contains(all, "gone") {
				t.Errorf("List(\"\") = %v, %v; want the 5 current names", all, err)
			}
		})
	}
}

// An operator's listing shows each current secret's name and when it last changed, and never a value.
func TestListInfoShowsNamesAndUpdateTimes(t *testing.T) {
	t.Parallel()
	fv := kvtest.New(t)
	file, err := NewFile(filepath.Join(t.TempDir(), "s.enc"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	stores := []struct {
		name string
		s    interface {
			Store
			InfoLister
		}
	}{
		{"memory", NewMemory()},
		{"file", file},
		{"keyvault", newTestVault(t, fv, &kvtest.Credential{})},
	}
	for _, tc := range stores {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := time.Now().Add(-time.Second)
			for _, n := range []string{"b-two", "a-one", "gone", "other"} {
				if err := tc.s.Set(ctx, n, "value-"+n); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.s.Delete(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			got, err := tc.s.ListInfo(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, i := range got {
				names = append(names, i.Name)
				if i.Updated.Before(before) || i.Updated.After(time.Now().Add(time.Second)) {
					t.Errorf("%s updated %v; want the time of its Set (after %v)", i.Name, i.Updated, before)
				}
			}
			if want := []string{"a-one", "b-two", "other"}; !slices.Equal(names, want) {
				t.Errorf("ListInfo names = %v, want %v", names, want)
			}
			if got, _ := tc.s.ListInfo(ctx, "b-"); len(got) != 1 || got[0].Name != "b-two" {
				t.Errorf("ListInfo(b-) = %v, want b-two only", got)
			}
		})
	}
}
