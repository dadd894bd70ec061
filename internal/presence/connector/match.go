package connector

import (
	"strings"

	"github.com/connecthub/connecthub/internal/platform/registry"
)

// Extension is one account at the PBX a user can be matched to, as the PBX's directory lists it.
type Extension struct {
	ID     string   // what presence is pushed to (RingCentral: the extension id)
	Number string   // the short extension number admins know
	Email  string   // personal: only to match, never logged or returned
	Phones []string // personal: E.164 numbers of the account, only to match
}

// How a user was matched to an extension.
const (
	MatchOverride = "override" // an admin set User.PBXUserID
	MatchEmail    = "email"    // the user's mail equals the extension's contact e-mail
	MatchPhone    = "phone"    // the user's phone (E.164) equals one of the extension's numbers
	MatchNone     = "none"
)

// Match is the extension a user maps to and how. ExtensionID is empty for MatchNone; Number is known
// only when the directory listed the extension.
type Match struct {
	ExtensionID string
	Number      string
	By          string
}

// UserOf is what a connector needs of a stored user: its explicit mapping, the address and the number to
// match by. Graph gives no mail to some accounts; their sign-in name is the address then.
func UserOf(u registry.User) User {
	cu := User{ID: u.ID, PBXUserID: u.PBXUserID, Email: u.Mail, Phone: u.Phone}
	if cu.Email == "" {
		cu.Email = u.UserPrincipalName
	}
	return cu
}

// Directory indexes a PBX's extensions for matching: the one place that decides which extension a user
// maps to, shared by the push path and the admin listing, so what an admin sees is what gets pushed.
type Directory struct {
	exts    []Extension
	byID    map[string]int
	byEmail map[string]int
	byPhone map[string]int
}

// NewDirectory indexes exts. An address or a number that two extensions share matches neither: a guess
// would push one person's presence to another's phone.
func NewDirectory(exts []Extension) *Directory {
	d := &Directory{exts: exts, byID: map[string]int{}, byEmail: map[string]int{}, byPhone: map[string]int{}}
	add := func(m map[string]int, k string, i int) {
		if k == "" {
			return
		}
		if j, dup := m[k]; dup && j != i {
			m[k] = -1
			return
		}
		m[k] = i
	}
	for i, e := range exts {
		d.byID[e.ID] = i
		add(d.byEmail, normalEmail(e.Email), i)
		for _, p := range e.Phones {
			add(d.byPhone, NormalizePhone(p), i)
		}
	}
	return d
}

// Len is the number of extensions listed.
func (d *Directory) Len() int { return len(d.exts) }

// Match finds u's extension: the admin's override first, then the e-mail, then the phone number.
func (d *Directory) Match(u User) Match {
	if u.PBXUserID != "" {
		m := Match{ExtensionID: u.PBXUserID, By: MatchOverride}
		if d != nil {
			if i, ok := d.byID[u.PBXUserID]; ok {
				m.Number = d.exts[i].Number
			}
		}
		return m
	}
	if d == nil {
		return Match{By: MatchNone}
	}
	if i, ok := d.byEmail[normalEmail(u.Email)]; ok && i >= 0 && u.Email != "" {
		return Match{ExtensionID: d.exts[i].ID, Number: d.exts[i].Number, By: MatchEmail}
	}
	if p := NormalizePhone(u.Phone); p != "" {
		if i, ok := d.byPhone[p]; ok && i >= 0 {
			return Match{ExtensionID: d.exts[i].ID, Number: d.exts[i].Number, By: MatchPhone}
		}
	}
	return Match{By: MatchNone}
}

func normalEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormalizePhone returns the E.164 form (+ and 8 to 15 digits) of a number written with the usual
// separators (spaces, dashes, dots, brackets) and an international prefix (+ or 00), or "" when the
// number has no country code: a national number could belong to anyone abroad, so it never matches.
// Extensions (";ext=", " x123") are dropped: they name a desk behind the number, not the number; a
// bracketed trunk zero after the country code is dropped as it is when dialling from abroad.
func NormalizePhone(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ";xX"); i >= 0 {
		s = s[:i]
	}
	// "+49 (0)30 …": the bracketed trunk zero is dialled only nationally.
	s = strings.ReplaceAll(s, "(0)", "")
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\u00a0':
		default:
			return ""
		}
	}
	n := b.String()
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	if !strings.HasPrefix(n, "+") {
		return ""
	}
	digits := n[1:]
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return ""
	}
	return n
}

// Has reports whether the directory lists an extension with id.
func (d *Directory) Has(id string) bool {
	if d == nil {
		return false
	}
	_, ok := d.byID[id]
	return ok
}
