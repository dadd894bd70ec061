package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
)

// TableSessions holds the portal's sign-in sessions, in the signed-in person's tenant partition.
const TableSessions = "portalsessions"

// Tables are the tables the portal owns.
var Tables = []tables.Spec{
	tables.SpecOf[Session](TableSessions, "portal", tables.RetainTenantData),
}

// Data is the portal's tables.
type Data struct {
	Sessions *tables.Table[Session, *Session]
}

// OpenData returns the portal's tables on db.
func OpenData(db *tables.DB) *Data {
	return &Data{Sessions: tables.New[Session](db, TableSessions)}
}

// Session is one signed-in browser: who signed in (as their access token said at sign-in) and until
// when. The browser holds only "<tenant>.<secret>" in an HttpOnly cookie; the row key is the secret's
// SHA-256, so a copy of the table opens no session. No token is kept anywhere: the principal is what the
// token proved when the session began, and the session ends when that token would have.
type Session struct {
	ID          string `table:"key"`      // hex SHA-256 of the cookie's secret
	ObjectID    string `table:"personal"` // the signed-in user's Entra object id
	AppRoles    string // comma-separated app roles of the token (ConnectHub.TenantAdmin, …)
	GlobalAdmin bool
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

func (s *Session) RowKey() (string, error)   { return tables.SimpleKey("session", s.ID) }
func (s *Session) SetRowKey(rk string) error { s.ID = rk; return nil }

// Principal is the session's caller, as the admin functions check it.
func (s Session) Principal(tenant core.TenantID) Principal {
	var roles []string
	if s.AppRoles != "" {
		roles = strings.Split(s.AppRoles, ",")
	}
	return Principal{Tenant: tenant, ObjectID: s.ObjectID, AppRoles: roles, GlobalAdmin: s.GlobalAdmin}
}

// MaxSession bounds a session whatever its token said.
const MaxSession = 8 * time.Hour

// errNoSession is any cookie that opens no live session; the portal then offers to sign in.
var errNoSession = errors.New("no session")

// newSession stores a session for p until expires and returns the cookie value and the CSRF token.
func (d *Data) newSession(ctx context.Context, p Principal, now, expires time.Time) (cookie string, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	s := Session{ID: digest(secret), ObjectID: p.ObjectID, AppRoles: strings.Join(p.AppRoles, ","),
		GlobalAdmin: p.GlobalAdmin, CreatedAt: now, ExpiresAt: expires}
	if _, err := d.Sessions.Insert(ctx, p.Tenant, s); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return string(p.Tenant) + "." + base64.RawURLEncoding.EncodeToString(secret), nil
}

// open reads the session a cookie names; a cookie that is malformed, unknown or past its time is
// errNoSession.
func (d *Data) open(ctx context.Context, cookie string, now time.Time) (core.TenantID, Session, []byte, error) {
	t, enc, ok := strings.Cut(cookie, ".")
	if !ok {
		return "", Session{}, nil, errNoSession
	}
	tenant, err := core.ParseTenantID(t)
	if err != nil {
		return "", Session{}, nil, errNoSession
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(secret) != 32 {
		return "", Session{}, nil, errNoSession
	}
	s, err := d.Sessions.Get(ctx, tenant, digest(secret))
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return "", Session{}, nil, errNoSession
	case err != nil:
		return "", Session{}, nil, fmt.Errorf("read session: %w", err)
	case !now.Before(s.ExpiresAt):
		return "", Session{}, nil, errNoSession
	}
	return tenant, s, secret, nil
}

// end deletes the session a cookie names (sign-out); an unknown one is already gone.
func (d *Data) end(ctx context.Context, cookie string) error {
	t, enc, _ := strings.Cut(cookie, ".")
	tenant, err := core.ParseTenantID(t)
	if err != nil {
		return nil
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil
	}
	if err := d.Sessions.Delete(ctx, tenant, digest(secret)); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return err
	}
	return nil
}

func digest(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// csrfToken is the session's anti-forgery token: derived from the cookie's secret, so it needs no
// storage, and useless without the cookie (a form of another site cannot read it).
func csrfToken(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("connecthub portal csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func csrfMatches(secret []byte, presented string) bool {
	return subtle.ConstantTimeCompare([]byte(csrfToken(secret)), []byte(presented)) == 1
}

// Export lists the person's sessions (when each began and ends).
func (d *Data) Export(ctx context.Context, tenant core.TenantID, userID string) ([]tables.Record, error) {
	return d.Sessions.ExportWhere(ctx, tenant, func(s *Session) bool { return s.ObjectID == userID })
}

// Erase deletes the person's sessions: it signs them out everywhere.
func (d *Data) Erase(ctx context.Context, tenant core.TenantID, userID string) (tables.Erasure, error) {
	return d.Sessions.EraseWhere(ctx, tenant, func(s *Session) bool { return s.ObjectID == userID }, nil)
}

// Answers names the tables a person's export and erasure cover here.
func (d *Data) Answers() []string { return []string{TableSessions} }

// Sweep deletes a tenant's sessions that have ended (the retention job's rule for live tenants): a
// session row outlives its use by at most a retention run.
func (d *Data) Sweep(ctx context.Context, t registry.Tenant, now time.Time) (map[string]int, error) {
	n := 0
	for s, err := range d.Sessions.All(ctx, t.ID, nil) {
		if err != nil {
			return map[string]int{TableSessions: n}, err
		}
		if now.Before(s.ExpiresAt) {
			continue
		}
		if err := d.Sessions.Delete(ctx, t.ID, s.ID); err != nil && !errors.Is(err, tables.ErrNotFound) {
			return map[string]int{TableSessions: n}, err
		}
		n++
	}
	return map[string]int{TableSessions: n}, nil
}
