package config

import (
	"strings"
	"testing"
	"time"
)

// Every retention period refuses to start outside its legal floor and ceiling, one unit past either
// edge; the edges themselves are allowed.
func TestTenantRetentionFloorsAndCeilings(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		over    map[string]string
		wantErr string
	}
	var tests []tc
	for _, l := range RetentionLimits {
		tests = append(tests,
			tc{l.Key + " at floor", map[string]string{l.Key: l.Min.String()}, ""},
			tc{l.Key + " at ceiling", map[string]string{l.Key: l.Max.String()}, ""},
			tc{l.Key + " below floor", map[string]string{l.Key: (l.Min - time.Second).String()}, l.Key},
			tc{l.Key + " above ceiling", map[string]string{l.Key: (l.Max + time.Second).String()}, l.Key},
			tc{l.Key + " not a duration", map[string]string{l.Key: "30 days"}, l.Key},
		)
	}
	tests = append(tests,
		tc{"booking window 0", map[string]string{KeyBookingWindowDays: "0"}, KeyBookingWindowDays},
		tc{"booking window beyond a few weeks", map[string]string{KeyBookingWindowDays: "57"}, KeyBookingWindowDays},
		tc{"max rows too small", map[string]string{KeyRetentionMaxRows: "99"}, KeyRetentionMaxRows},
		tc{"run budget at the invocation timeout", map[string]string{KeyTenantJobsRunBudget: "60s"}, KeyTenantJobsRunBudget},
		tc{"run budget follows a longer timeout", map[string]string{KeyInvocationTimeout: "5m", KeyTenantJobsRunBudget: "4m"}, ""},
		tc{"run budget too short", map[string]string{KeyTenantJobsRunBudget: "1s"}, KeyTenantJobsRunBudget},
		tc{"redirect https", map[string]string{KeyAdminConsentRedirectURI: "https://app.example.eu/api/onboarding/consent"}, ""},
		tc{"redirect http localhost", map[string]string{KeyAdminConsentRedirectURI: "http://127.0.0.1:7071/api/onboarding/consent"}, ""},
		tc{"redirect http elsewhere", map[string]string{KeyAdminConsentRedirectURI: "http://app.example.eu/cb"}, KeyAdminConsentRedirectURI},
		tc{"redirect with query", map[string]string{KeyAdminConsentRedirectURI: "https://app.example.eu/cb?x=1"}, KeyAdminConsentRedirectURI},
		tc{"redirect relative", map[string]string{KeyAdminConsentRedirectURI: "/api/onboarding/consent"}, KeyAdminConsentRedirectURI},
		tc{"consent asked once", map[string]string{KeyAdminConsentWait: "0s"}, ""},
		tc{"consent wait at its ceiling", map[string]string{KeyAdminConsentWait: "30s"}, ""},
		tc{"consent wait beyond the admin's patience", map[string]string{KeyAdminConsentWait: "31s"}, KeyAdminConsentWait},
		tc{"consent wait negative", map[string]string{KeyAdminConsentWait: "-1s"}, KeyAdminConsentWait},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(env(tt.over))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load error = %v, want it to name %s", err, tt.wantErr)
			}
		})
	}
}

func TestTenantDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Tenants
	want := Tenants{
		CancelledRetention: 24 * time.Hour, SuspendedRetention: 7 * 24 * time.Hour,
		LicenseRetention: 30 * 24 * time.Hour, BillingRetention: 90 * 24 * time.Hour,
		SyncErrorRetention: 7 * 24 * time.Hour, BookingWindowDays: 21, RetentionMaxRows: 50_000,
		JobRunBudget: 40 * time.Second, AdminConsentTTL: 72 * time.Hour, AdminConsentWait: 15 * time.Second,
	}
	if got != want {
		t.Errorf("defaults = %+v\nwant       %+v", got, want)
	}
}
