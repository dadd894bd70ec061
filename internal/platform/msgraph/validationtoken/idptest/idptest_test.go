package idptest_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
)

const (
	appID   = "925bff9f-f6e2-4a69-b858-f71ea2b9b6d0"
	tenantA = "9f4ebab6-520d-49c0-85cc-7b25c78d4a93"
	tenantB = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
)

func validator(t *testing.T, p *idptest.Platform) *validationtoken.Validator {
	t.Helper()
	v, err := validationtoken.New(validationtoken.Config{Audience: appID, OpenIDConfigURL: p.ConfigURL(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return v
}

// The metadata's issuer and the keys' issuer are templates: a validator that compared them literally
// would accept a token whose iss is the template itself and refuse every real one.
func TestTemplatedIssuer(t *testing.T) {
	t.Parallel()
	p := idptest.New(t)
	v := validator(t, p)
	now := time.Now()
	other := p.AddKey(t, "https://login.microsoftonline.com/"+tenantB+"/v2.0")
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	literal := idptest.Claims(appID, tenantA, now)
	literal["iss"] = idptest.TemplatedIssuer
	tests := []struct {
		name  string
		token string
		valid bool
	}{
		{"v2 token, tid substituted", p.Mint(t, idptest.Claims(appID, tenantA, now)), true},
		{"v1 token signed by the v2 set's key", p.Mint(t, idptest.ClaimsV1(appID, tenantA, now)), true},
		{"issuer is the template itself", p.Mint(t, literal), false},
		{"key of another tenant's issuer", other.Mint(t, idptest.Claims(appID, tenantA, now)), false},
		{"that key for its own tenant", other.Mint(t, idptest.Claims(appID, tenantB, now)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tid, err := v.Validate(tt.token)
			if got := err == nil; got != tt.valid {
				t.Fatalf("Validate = %q, %v; want valid %v", tid, err, tt.valid)
			}
			if !tt.valid && !errors.Is(err, validationtoken.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}
