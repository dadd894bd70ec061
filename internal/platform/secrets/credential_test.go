package secrets

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestNewCredential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clientID string
		wantMI   bool
	}{
		{"local developer", "", false},
		{"user-assigned managed identity", "8f6a5c9e-0000-4000-8000-000000000001", true},
	}
	for _, tc := range tests {
		cred, err := NewCredential(tc.clientID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, isMI := cred.(*azidentity.ManagedIdentityCredential)
		_, isDefault := cred.(*azidentity.DefaultAzureCredential)
		if isMI != tc.wantMI || isDefault == tc.wantMI {
			t.Errorf("%s: got %T, want managed identity = %v", tc.name, cred, tc.wantMI)
		}
	}
}
