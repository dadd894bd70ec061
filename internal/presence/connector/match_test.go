package connector_test

import (
	"testing"

	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/presence/connector"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+1 425 555 0109", "+14255550109"},
		{"+49 (0)30 1234567", "+49301234567"},
		{"+49 30 1234-567", "+49301234567"},
		{"0049 30 1234567", "+49301234567"},
		{"+44.20.7946.0018", "+442079460018"},
		{"+1 425 555 0109;ext=12", "+14255550109"},
		{"+1 425 555 0109 x12", "+14255550109"},
		{"(425) 555-0109", ""}, // national: no country code, never matched
		{"030 1234567", ""},
		{"+1234", ""},
		{"+1234567890123456", ""},
		{"+1 425 CALL NOW", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := connector.NormalizePhone(tt.in); got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDirectoryMatch(t *testing.T) {
	t.Parallel()
	dir := connector.NewDirectory([]connector.Extension{
		{ID: "101", Number: "101", Email: "Ada@Contoso.example", Phones: []string{"+14255550101", ""}},
		{ID: "102", Number: "102", Email: "grace@contoso.example", Phones: []string{"+1 425 555 0102", "+4915112345678"}},
		{ID: "103", Number: "103", Email: "shared@contoso.example", Phones: []string{"+14255550199"}},
		{ID: "104", Number: "104", Email: "shared@contoso.example", Phones: []string{"+14255550199"}},
	})
	tests := []struct {
		name string
		u    connector.User
		want connector.Match
	}{
		{"override wins and is looked up", connector.User{PBXUserID: "102", Email: "ada@contoso.example"}, connector.Match{ExtensionID: "102", Number: "102", By: connector.MatchOverride}},
		{"override unknown to the directory", connector.User{PBXUserID: "999"}, connector.Match{ExtensionID: "999", By: connector.MatchOverride}},
		{"e-mail in any case", connector.User{Email: " ADA@contoso.example"}, connector.Match{ExtensionID: "101", Number: "101", By: connector.MatchEmail}},
		{"e-mail before phone", connector.User{Email: "grace@contoso.example", Phone: "+14255550101"}, connector.Match{ExtensionID: "102", Number: "102", By: connector.MatchEmail}},
		{"phone written differently", connector.User{Email: "nobody@contoso.example", Phone: "+1 (425) 555-0102"}, connector.Match{ExtensionID: "102", Number: "102", By: connector.MatchPhone}},
		{"mobile number", connector.User{Phone: "0049 151 12345678"}, connector.Match{ExtensionID: "102", Number: "102", By: connector.MatchPhone}},
		{"national number never matches", connector.User{Phone: "(425) 555-0101"}, connector.Match{By: connector.MatchNone}},
		{"shared address and number match nobody", connector.User{Email: "shared@contoso.example", Phone: "+14255550199"}, connector.Match{By: connector.MatchNone}},
		{"nothing to match", connector.User{}, connector.Match{By: connector.MatchNone}},
	}
	for _, tt := range tests {
		if got := dir.Match(tt.u); got != tt.want {
			t.Errorf("%s: Match = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	var none *connector.Directory
	if got := none.Match(connector.User{Email: "ada@contoso.example"}); got.By != connector.MatchNone {
		t.Errorf("no directory: %+v", got)
	}
	if got := none.Match(connector.User{PBXUserID: "7"}); got != (connector.Match{ExtensionID: "7", By: connector.MatchOverride}) {
		t.Errorf("no directory, override: %+v", got)
	}
}

func TestUserOf(t *testing.T) {
	t.Parallel()
	got := connector.UserOf(registry.User{ID: "u1", UserPrincipalName: "ada@contoso.example", Phone: "+1 425 555 0101", PBXUserID: "x"})
	want := connector.User{ID: "u1", PBXUserID: "x", Email: "ada@contoso.example", Phone: "+1 425 555 0101"}
	if got != want {
		t.Errorf("UserOf = %+v, want %+v (sign-in name when there is no mail)", got, want)
	}
	if got := connector.UserOf(registry.User{Mail: "a@b.example", UserPrincipalName: "c@d.example"}); got.Email != "a@b.example" {
		t.Errorf("mail should win over the sign-in name: %+v", got)
	}
}
