package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadPresence(t *testing.T) {
	t.Parallel()
	azure := map[string]string{KeyEnvironment: "azure", KeyOperatorTenantID: "0e0e0e0e-0000-4000-8000-0000000000ff", KeyTablesConnectionString: "", KeyTablesAccountURL: "https://a.table.core.windows.net",
		KeyKeyVaultURL: "https://v.vault.azure.net", KeyServiceBusNamespace: "sb.servicebus.windows.net"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	tests := []struct {
		name    string
		over    map[string]string
		wantErr string
		check   func(p Presence) bool
	}{
		{"local defaults", nil, "", func(p Presence) bool {
			return p.PublicBaseURL == "http://localhost:7071" && p.OAuthRedirectURI == "http://localhost:7071/api/auth/callback" &&
				p.SubscriptionLifetime == DefaultPresenceLifetime && p.RenewMargin == DefaultPresenceRenewMargin &&
				p.AuthorityHost == "https://login.microsoftonline.com/" && p.AppClientCertName == DefaultAppClientCertName &&
				p.PBXMaxAttempts == DefaultPBXMaxAttempts
		}},
		{"azure without public URL: presence off", azure, "", func(p Presence) bool { return p.PublicBaseURL == "" && p.OAuthRedirectURI == "" }},
		{"azure public URL must be https", with(azure, KeyPublicBaseURL, "http://connecthub.example"), "must be https", nil},
		{"azure https public URL derives the redirect", with(azure, KeyPublicBaseURL, "https://connecthub.example/"), "", func(p Presence) bool {
			return p.OAuthRedirectURI == "https://connecthub.example/api/auth/callback"
		}},
		{"authority must be https", map[string]string{KeyAuthorityHost: "http://login.example"}, KeyAuthorityHost, nil},
		{"authority gets its trailing slash", map[string]string{KeyAuthorityHost: "https://login.example"}, "", func(p Presence) bool {
			return p.AuthorityHost == "https://login.example/"
		}},
		{"lifetime above Graph's 60 minutes", map[string]string{KeyPresenceLifetime: "61m"}, KeyPresenceLifetime, nil},
		{"margin not below lifetime", map[string]string{KeyPresenceLifetime: "30m", KeyPresenceRenewMargin: "30m"}, KeyPresenceRenewMargin, nil},
		{"margin too small", map[string]string{KeyPresenceRenewMargin: "1m"}, KeyPresenceRenewMargin, nil},
		{"attempts out of range", map[string]string{KeyPBXMaxAttempts: "0"}, KeyPBXMaxAttempts, nil},
		{"retry delay parsed", map[string]string{KeyPBXRetryDelay: "250ms"}, "", func(p Presence) bool { return p.PBXRetryDelay == 250*time.Millisecond }},
		{"retry delay too long", map[string]string{KeyPBXRetryDelay: "1h"}, KeyPBXRetryDelay, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(env(tt.over))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Load error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(c.Presence) {
				t.Errorf("presence config = %+v", c.Presence)
			}
		})
	}
}
