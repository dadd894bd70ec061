// Package pbx is presence sync's PBX → Teams direction, on the same spine as Teams → PBX: the PBX posts
// presence events to the PbxWebhook function (Intake), which checks and queues them; the Worker writes
// the user's Teams presence with app-only setPresence/clearPresence; the Subscriber keeps the tenant's
// webhook subscription at the PBX (RenewSubscriptions and the tenant's state changes). RingCentral first.
//
// No loops: the presence row of each user carries what each direction last wrote (presence.Presence's
// PBXState and TeamsSession*). The Worker does not mirror into Teams the PBX state our own push caused;
// the Applier does not push to the PBX the Teams state our own session caused.
package pbx

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/registry"
	"github.com/connecthub/connecthub/internal/platform/tables"
	"github.com/connecthub/connecthub/internal/presence"
	"github.com/connecthub/connecthub/internal/presence/connector"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral"
)

// RingCentral is what the direction needs of the RingCentral connector (ringcentral.Connector).
type RingCentral interface {
	Directory(ctx context.Context, tenant core.TenantID) (*connector.Directory, error)
	CreateSubscription(ctx context.Context, tenant core.TenantID, filters []string, address, verificationToken string, expiresIn time.Duration) (ringcentral.SubscriptionInfo, error)
	GetSubscription(ctx context.Context, tenant core.TenantID, id string) (ringcentral.SubscriptionInfo, error)
	UpdateSubscription(ctx context.Context, tenant core.TenantID, id string, filters []string, expiresIn time.Duration) (ringcentral.SubscriptionInfo, error)
	DeleteSubscription(ctx context.Context, tenant core.TenantID, id string) error
}

var _ RingCentral = (*ringcentral.Connector)(nil)

// SubscriberOptions configure the Subscriber.
type SubscriberOptions struct {
	// PublicBaseURL is the deployment's public https base; the webhook address is
	// <base>/api/pbx/<tenant>/ringcentral. Empty: the direction is off.
	PublicBaseURL string
	// Lifetime is the expiresIn asked for (default 7 days, RingCentral's general limit in the older
	// spec; WebHook allows far more, but a subscription we lose track of should not outlive us long).
	Lifetime time.Duration
	// RenewMargin: a subscription expiring within it is renewed (default 2 days, many timer runs).
	RenewMargin time.Duration
	Now         func() time.Time
	Log         *slog.Logger
}

// Subscriber keeps each tenant's RingCentral webhook subscription in line with the tenant's state,
// settings and licensed users.
type Subscriber struct {
	st    *registry.Registry
	data  *presence.Data
	rc    RingCentral
	stats *presence.Stats
	o     SubscriberOptions
	// Refresh renews the Teams sessions of calls that outlast a session (Worker.RefreshSessions).
	refresh func(ctx context.Context, tenant core.TenantID) error
}

// NewSubscriber builds the subscriber; refresh, if set, runs for every tenant that syncs PBX → Teams.
func NewSubscriber(st *registry.Registry, rc RingCentral, stats *presence.Stats, refresh func(context.Context, core.TenantID) error, o SubscriberOptions) *Subscriber {
	if o.Lifetime <= 0 {
		o.Lifetime = 7 * 24 * time.Hour
	}
	if o.RenewMargin <= 0 {
		o.RenewMargin = 2 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = presence.NewStats()
	}
	o.PublicBaseURL = strings.TrimRight(o.PublicBaseURL, "/")
	return &Subscriber{st: st, data: presence.OpenData(st.DB()), rc: rc, stats: stats, o: o, refresh: refresh}
}

// Address is the webhook address of a tenant's RingCentral subscription.
func (s *Subscriber) Address(tenant core.TenantID) string {
	return s.o.PublicBaseURL + "/api/pbx/" + string(tenant) + "/ringcentral"
}

// Holds reports whether the tenant still has a subscription row (an inactive tenant's is deleted by
// the next run).
func (s *Subscriber) Holds(ctx context.Context, tenant core.TenantID) (bool, error) {
	_, err := s.data.PBXSubscriptions.Get(ctx, tenant, ringcentral.Kind)
	if errors.Is(err, tables.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Follow brings the tenant's subscription in line: an active tenant with the RingCentral connector and a
// direction that includes PBX → Teams has one covering its licensed users' extensions; any other has
// none. Call it holding the tenant's lease (presence.Manager does).
func (s *Subscriber) Follow(ctx context.Context, tenant core.TenantID) error {
	t, err := s.st.Tenants.Get(ctx, tenant)
	if errors.Is(err, tables.ErrNotFound) {
		return s.Remove(ctx, tenant)
	}
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	want := t.State == registry.TenantActive && t.PBXKind == ringcentral.Kind &&
		presence.ParseSyncSettings(t.PBXSettings).ToTeams() && s.o.PublicBaseURL != ""
	if !want {
		return s.Remove(ctx, tenant)
	}
	err = s.ensure(ctx, tenant)
	if s.refresh != nil {
		err = errors.Join(err, s.refresh(ctx, tenant))
	}
	return err
}

// Remove deletes the tenant's subscription at RingCentral and its row; the webhook then drops whatever
// still arrives as unknown. A deletion RingCentral refuses keeps the row for the next run.
func (s *Subscriber) Remove(ctx context.Context, tenant core.TenantID) error {
	row, err := s.data.PBXSubscriptions.Get(ctx, tenant, ringcentral.Kind)
	if errors.Is(err, tables.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pbx subscription: %w", err)
	}
	if row.SubscriptionID != "" {
		if err := s.rc.DeleteSubscription(ctx, tenant, row.SubscriptionID); err != nil && !errors.Is(err, connector.ErrNotConfigured) {
			s.note(ctx, tenant, connector.Code(err))
			return fmt.Errorf("delete ringcentral subscription: %w", err)
		}
	}
	if err := s.data.PBXSubscriptions.Delete(ctx, tenant, ringcentral.Kind); err != nil && !errors.Is(err, tables.ErrNotFound) {
		return fmt.Errorf("delete pbx subscription row: %w", err)
	}
	s.o.Log.InfoContext(ctx, "pbx subscription deleted")
	return nil
}

// extensions maps the tenant's licensed, unrestricted users to their extensions (the explicit mapping,
// else the connector's directory match by mail or phone) and stores the map the worker reads. An
// extension two users claim goes to the first by user id, so the map is the same on every run.
func (s *Subscriber) extensions(ctx context.Context, tenant core.TenantID) ([]string, error) {
	var users []registry.User
	needDir := false
	// Only what the match needs: the flags, the explicit mapping, and the mail and phone the directory
	// match uses (sealed; names, department and title are not opened).
	sel := &tables.ListOptions{Select: []string{"Licensed", "ProcessingRestricted", "PBXUserID", "Mail", "UserPrincipalName", "Phone"}}
	for u, err := range s.st.Users.All(ctx, tenant, sel) {
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		if u.Licensed && !u.ProcessingRestricted {
			users = append(users, u)
			needDir = needDir || u.PBXUserID == ""
		}
	}
	slices.SortFunc(users, func(a, b registry.User) int { return strings.Compare(a.ID, b.ID) })
	var dir *connector.Directory
	if needDir {
		var err error
		if dir, err = s.rc.Directory(ctx, tenant); err != nil {
			return nil, fmt.Errorf("list extensions: %w", err)
		}
	}
	want := map[string]string{}
	for _, u := range users {
		ext := u.PBXUserID
		if ext == "" {
			ext = dir.Match(connector.UserOf(u)).ExtensionID
		}
		if _, taken := want[ext]; ext != "" && !taken {
			want[ext] = u.ID
		}
	}
	now := s.o.Now().UTC()
	have := map[string]string{}
	for x, err := range s.data.PBXExtensions.All(ctx, tenant, nil) {
		if err != nil {
			return nil, fmt.Errorf("list pbx extensions: %w", err)
		}
		have[x.ExtensionID] = x.UserID
	}
	var errs []error
	for ext, user := range want {
		if have[ext] != user {
			if _, err := s.data.PBXExtensions.Upsert(ctx, tenant, presence.PBXExtension{ExtensionID: ext, UserID: user, UpdatedAt: now}); err != nil {
				errs = append(errs, fmt.Errorf("store pbx extension: %w", err))
			}
		}
	}
	for ext := range have {
		if _, ok := want[ext]; !ok {
			if err := s.data.PBXExtensions.Delete(ctx, tenant, ext); err != nil && !errors.Is(err, tables.ErrNotFound) {
				errs = append(errs, fmt.Errorf("delete pbx extension: %w", err))
			}
		}
	}
	exts := make([]string, 0, len(want))
	for ext := range want {
		exts = append(exts, ext)
	}
	sort.Strings(exts)
	return exts, errors.Join(errs...)
}

func (s *Subscriber) ensure(ctx context.Context, tenant core.TenantID) error {
	exts, err := s.extensions(ctx, tenant)
	if err != nil {
		s.note(ctx, tenant, "extensions_failed")
		return err
	}
	if len(exts) == 0 {
		return s.Remove(ctx, tenant) // nobody to watch
	}
	filters := make([]string, len(exts))
	for i, e := range exts {
		filters[i] = ringcentral.PresenceFilter(e)
	}
	fh := sha256.Sum256([]byte(strings.Join(filters, "\n")))
	row, err := s.data.PBXSubscriptions.Get(ctx, tenant, ringcentral.Kind)
	switch {
	case errors.Is(err, tables.ErrNotFound):
		return s.create(ctx, tenant, filters, fh[:], 0)
	case err != nil:
		return fmt.Errorf("read pbx subscription: %w", err)
	}
	info, err := s.rc.GetSubscription(ctx, tenant, row.SubscriptionID)
	switch {
	case errors.Is(err, ringcentral.ErrSubscriptionGone):
		s.o.Log.WarnContext(ctx, "pbx subscription gone at ringcentral; creating it again")
		return s.create(ctx, tenant, filters, fh[:], row.Recreated)
	case err != nil:
		s.note(ctx, tenant, connector.Code(err))
		return fmt.Errorf("read ringcentral subscription: %w", err)
	case info.Blacklisted():
		// Permanent at RingCentral (troubleshooting.md): delete it and make a new one.
		s.stats.AddPBX("subscription_blacklisted")
		s.o.Log.WarnContext(ctx, "pbx subscription blacklisted; recreating it")
		if err := s.rc.DeleteSubscription(ctx, tenant, row.SubscriptionID); err != nil {
			s.note(ctx, tenant, connector.Code(err))
			return fmt.Errorf("delete blacklisted subscription: %w", err)
		}
		return s.create(ctx, tenant, filters, fh[:], row.Recreated+1)
	case string(row.FilterHash) != string(fh[:]) || info.ExpirationTime.Sub(s.o.Now()) < s.o.RenewMargin:
		info, err = s.rc.UpdateSubscription(ctx, tenant, row.SubscriptionID, filters, s.o.Lifetime)
		if err != nil {
			s.note(ctx, tenant, connector.Code(err))
			return fmt.Errorf("renew ringcentral subscription: %w", err)
		}
		if info.Blacklisted() {
			return nil // the next run recreates it
		}
		_, err = s.data.PBXSubscriptions.Update(ctx, tenant, ringcentral.Kind, func(r *presence.PBXSubscription) error {
			r.ExpiresAt, r.Status, r.FilterHash, r.Extensions = info.ExpirationTime.UTC(), info.Status, fh[:], len(filters)
			r.RenewedAt, r.LastError = s.o.Now().UTC(), ""
			return nil
		})
		return err
	}
	return nil
}

// create makes a new subscription with a fresh verification token: RingCentral repeats it on every
// delivery, we keep only its hash. The row is written after RingCentral accepted the handshake, so a
// delivery can arrive before it: such a delivery is dropped as unknown, once.
func (s *Subscriber) create(ctx context.Context, tenant core.TenantID, filters []string, filterHash []byte, recreated int) error {
	token := randomToken()
	info, err := s.rc.CreateSubscription(ctx, tenant, filters, s.Address(tenant), token, s.o.Lifetime)
	if err != nil {
		code := connector.Code(err)
		var he *ringcentral.HandshakeError
		if errors.As(err, &he) {
			code = "handshake_refused"
		}
		s.note(ctx, tenant, code)
		return fmt.Errorf("create ringcentral subscription: %w", err)
	}
	h := sha256.Sum256([]byte(token))
	now := s.o.Now().UTC()
	row := presence.PBXSubscription{Kind: ringcentral.Kind, SubscriptionID: info.ID, VerificationTokenHash: h[:], Extensions: len(filters),
		FilterHash: filterHash, ExpiresAt: info.ExpirationTime.UTC(), Status: info.Status, CreatedAt: now, RenewedAt: now, Recreated: recreated}
	if _, err := s.data.PBXSubscriptions.Upsert(ctx, tenant, row); err != nil {
		// Without the row the webhook refuses its deliveries: delete it, the next run makes another.
		_ = s.rc.DeleteSubscription(ctx, tenant, info.ID)
		return fmt.Errorf("store pbx subscription: %w", err)
	}
	s.stats.AddPBX("subscription_created")
	s.o.Log.InfoContext(ctx, "pbx subscription created", "extensions", len(filters), "recreated", recreated)
	return nil
}

// note records the last failure's code on the row, for the admin's status (best effort).
func (s *Subscriber) note(ctx context.Context, tenant core.TenantID, code string) {
	_, err := s.data.PBXSubscriptions.Update(ctx, tenant, ringcentral.Kind, func(r *presence.PBXSubscription) error {
		r.LastError = code
		return nil
	})
	if err != nil && !errors.Is(err, tables.ErrNotFound) {
		s.o.Log.WarnContext(ctx, "record pbx subscription failure failed", "error", err)
	}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
