package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/connecthub/connecthub/internal/core"
)

// Every field below is listed in docs/data-inventory.md (a test enforces it). Property name = field name.
// Fields marked "key" live in the RowKey (or PartitionKey), not as properties.

// TenantState is a tenant's lifecycle state.
type TenantState string

const (
	// TenantPending: onboarding started, admin consent not given yet.
	TenantPending   TenantState = "pending"
	TenantActive    TenantState = "active"
	TenantSuspended TenantState = "suspended"
	TenantCancelled TenantState = "cancelled"
	// TenantDeleting: the retention job has claimed the tenant; nothing may revive it.
	TenantDeleting TenantState = "deleting"
)

// tenantRowKey is the only row of a tenant's partition in the tenants table.
const tenantRowKey = "tenant"

// Tenant is the registry row of a customer tenant (table tenants).
type Tenant struct {
	ID                core.TenantID // key (PartitionKey)
	State             TenantState
	ConsentedAt       time.Time
	SuspendedAt       time.Time
	CancelledAt       time.Time
	ServiceUserID     string // Entra object id of the delegated service user
	PBXKind           string // connector, e.g. "ringcentral"
	PBXSettings       string // the connector's non-secret settings as JSON (the secret half is in Key Vault)
	PBXConfiguredAt   time.Time
	PBXConfiguredBy   string // actor id (Entra object id or "function-key") who last set the connector
	PresenceMap       string // the tenant's overrides of the presence → PBX state mapping (presence.ParseMapping)
	BookingWindowDays int
	PurchasedLicenses int
	HomeRegion        string // EU region where the tenant's data lives
	ConsentStateHash  []byte // SHA-256 of the pending admin-consent state; cleared once consent arrives
	ConsentExpiresAt  time.Time
	ReactivatedAt     time.Time
	DeletionStartedAt time.Time // when the retention job claimed the tenant
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (t *Tenant) rowKey() (string, error)       { return tenantRowKey, nil }
func (t *Tenant) setPartition(id core.TenantID) { t.ID = id }
func (t *Tenant) setRowKey(rk string) error {
	if rk != tenantRowKey {
		return &KeyError{What: "tenant row key", Reason: "unexpected"}
	}
	return nil
}
func (t *Tenant) encode(e *encoder) {
	e.str("State", string(t.State))
	e.time("ConsentedAt", t.ConsentedAt)
	e.time("SuspendedAt", t.SuspendedAt)
	e.time("CancelledAt", t.CancelledAt)
	e.str("ServiceUserID", t.ServiceUserID)
	e.str("PBXKind", t.PBXKind)
	e.str("PBXSettings", t.PBXSettings)
	e.time("PBXConfiguredAt", t.PBXConfiguredAt)
	e.str("PBXConfiguredBy", t.PBXConfiguredBy)
	e.str("PresenceMap", t.PresenceMap)
	e.int("BookingWindowDays", int64(t.BookingWindowDays))
	e.int("PurchasedLicenses", int64(t.PurchasedLicenses))
	e.str("HomeRegion", t.HomeRegion)
	e.bytes("ConsentStateHash", t.ConsentStateHash)
	e.time("ConsentExpiresAt", t.ConsentExpiresAt)
	e.time("ReactivatedAt", t.ReactivatedAt)
	e.time("DeletionStartedAt", t.DeletionStartedAt)
	e.time("CreatedAt", t.CreatedAt)
	e.time("UpdatedAt", t.UpdatedAt)
}
func (t *Tenant) decode(d *decoder) {
	t.State = TenantState(d.str("State"))
	t.ConsentedAt = d.time("ConsentedAt")
	t.SuspendedAt = d.time("SuspendedAt")
	t.CancelledAt = d.time("CancelledAt")
	t.ServiceUserID = d.str("ServiceUserID")
	t.PBXKind = d.str("PBXKind")
	t.PBXSettings = d.str("PBXSettings")
	t.PBXConfiguredAt = d.time("PBXConfiguredAt")
	t.PBXConfiguredBy = d.str("PBXConfiguredBy")
	t.PresenceMap = d.str("PresenceMap")
	t.BookingWindowDays = d.intN("BookingWindowDays")
	t.PurchasedLicenses = d.intN("PurchasedLicenses")
	t.HomeRegion = d.str("HomeRegion")
	t.ConsentStateHash = d.bytes("ConsentStateHash")
	t.ConsentExpiresAt = d.time("ConsentExpiresAt")
	t.ReactivatedAt = d.time("ReactivatedAt")
	t.DeletionStartedAt = d.time("DeletionStartedAt")
	t.CreatedAt = d.time("CreatedAt")
	t.UpdatedAt = d.time("UpdatedAt")
}

// User is a licensed user of the tenant (table users). Personal fields are sealed.
type User struct {
	ID                   string // key: Entra object id
	DisplayName          string // sealed
	UserPrincipalName    string // sealed
	Mail                 string // sealed
	Phone                string // sealed
	Department           string // sealed
	JobTitle             string // sealed
	PBXUserID            string // the user's id at the PBX, for the presence mapping
	Licensed             bool
	ProcessingRestricted bool // data subject restriction: no sync while set
	RestrictedAt         time.Time
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

func (u *User) rowKey() (string, error)   { return simpleKey("user id", u.ID) }
func (u *User) setRowKey(rk string) error { u.ID = rk; return nil }
func (u *User) encode(e *encoder) {
	e.sealed("DisplayName", u.DisplayName)
	e.sealed("UserPrincipalName", u.UserPrincipalName)
	e.sealed("Mail", u.Mail)
	e.sealed("Phone", u.Phone)
	e.sealed("Department", u.Department)
	e.sealed("JobTitle", u.JobTitle)
	e.str("PBXUserID", u.PBXUserID)
	e.bool("Licensed", u.Licensed)
	e.bool("ProcessingRestricted", u.ProcessingRestricted)
	e.time("RestrictedAt", u.RestrictedAt)
	e.time("CreatedAt", u.CreatedAt)
	e.time("UpdatedAt", u.UpdatedAt)
}
func (u *User) decode(d *decoder) {
	u.DisplayName = d.sealed("DisplayName")
	u.UserPrincipalName = d.sealed("UserPrincipalName")
	u.Mail = d.sealed("Mail")
	u.Phone = d.sealed("Phone")
	u.Department = d.sealed("Department")
	u.JobTitle = d.sealed("JobTitle")
	u.PBXUserID = d.str("PBXUserID")
	u.Licensed = d.bool("Licensed")
	u.ProcessingRestricted = d.bool("ProcessingRestricted")
	u.RestrictedAt = d.time("RestrictedAt")
	u.CreatedAt = d.time("CreatedAt")
	u.UpdatedAt = d.time("UpdatedAt")
}

// Presence is a user's current presence only (table presence); each change overwrites it.
type Presence struct {
	UserID       string // key
	Availability string // Graph availability, e.g. "Busy"
	Activity     string // Graph activity, e.g. "InACall"
	Source       string // "teams" or "pbx": which side reported it
	PBXState     string // state last pushed to the PBX, to skip duplicate pushes
	Sequence     string // Graph's sequenceNumber of this state, to drop out-of-order notifications
	ChangedAt    time.Time
}

func (p *Presence) rowKey() (string, error)   { return simpleKey("user id", p.UserID) }
func (p *Presence) setRowKey(rk string) error { p.UserID = rk; return nil }
func (p *Presence) encode(e *encoder) {
	e.str("Availability", p.Availability)
	e.str("Activity", p.Activity)
	e.str("Source", p.Source)
	e.str("PBXState", p.PBXState)
	e.str("Sequence", p.Sequence)
	e.time("ChangedAt", p.ChangedAt)
}
func (p *Presence) decode(d *decoder) {
	p.Availability = d.str("Availability")
	p.Activity = d.str("Activity")
	p.Source = d.str("Source")
	p.PBXState = d.str("PBXState")
	p.Sequence = d.str("Sequence")
	p.ChangedAt = d.time("ChangedAt")
}

// SubscriptionKind says what a Graph subscription feeds.
type SubscriptionKind string

const (
	KindPresence SubscriptionKind = "presence"
	KindBooking  SubscriptionKind = "booking"
)

// Subscription is a Graph change-notification subscription (table subscriptions), what the webhook reads.
type Subscription struct {
	ID                 string // key: Graph subscription id
	Kind               SubscriptionKind
	Resource           string // Graph resource, e.g. /communications/presences?$filter=...
	ChangeType         string
	ExpiresAt          time.Time
	ClientStateHash    []byte // SHA-256 of the random clientState; see ClientStateMatches
	ServiceUserID      string // the delegated user the subscription was created through
	LastLifecycleEvent string // e.g. "reauthorizationRequired"
	LastLifecycleAt    time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

func (s *Subscription) rowKey() (string, error)   { return simpleKey("subscription id", s.ID) }
func (s *Subscription) setRowKey(rk string) error { s.ID = rk; return nil }
func (s *Subscription) encode(e *encoder) {
	e.str("Kind", string(s.Kind))
	e.str("Resource", s.Resource)
	e.str("ChangeType", s.ChangeType)
	e.time("ExpiresAt", s.ExpiresAt)
	e.bytes("ClientStateHash", s.ClientStateHash)
	e.str("ServiceUserID", s.ServiceUserID)
	e.str("LastLifecycleEvent", s.LastLifecycleEvent)
	e.time("LastLifecycleAt", s.LastLifecycleAt)
	e.time("CreatedAt", s.CreatedAt)
	e.time("UpdatedAt", s.UpdatedAt)
}
func (s *Subscription) decode(d *decoder) {
	s.Kind = SubscriptionKind(d.str("Kind"))
	s.Resource = d.str("Resource")
	s.ChangeType = d.str("ChangeType")
	s.ExpiresAt = d.time("ExpiresAt")
	s.ClientStateHash = d.bytes("ClientStateHash")
	s.ServiceUserID = d.str("ServiceUserID")
	s.LastLifecycleEvent = d.str("LastLifecycleEvent")
	s.LastLifecycleAt = d.time("LastLifecycleAt")
	s.CreatedAt = d.time("CreatedAt")
	s.UpdatedAt = d.time("UpdatedAt")
}

// LedgerEntry records that a record of a resource was processed: only its id and last-modified date
// (table ledger), for idempotency and change detection.
type LedgerEntry struct {
	Resource     string // key part 1: a short resource name, e.g. "contacts" (no | / \ # ? ')
	RecordID     string // key part 2: the record's id at its source, stored encoded
	LastModified time.Time
}

// LedgerKey is the row key of (resource, recordID), for Get/Delete.
func LedgerKey(resource, recordID string) (string, error) {
	return (&LedgerEntry{Resource: resource, RecordID: recordID}).rowKey()
}

func (l *LedgerEntry) rowKey() (string, error) { return resourceRecordKey(l.Resource, l.RecordID) }
func (l *LedgerEntry) setRowKey(rk string) (err error) {
	l.Resource, l.RecordID, err = splitResourceRecordKey(rk)
	return err
}
func (l *LedgerEntry) encode(e *encoder) { e.time("LastModified", l.LastModified) }
func (l *LedgerEntry) decode(d *decoder) { l.LastModified = d.time("LastModified") }

func resourceRecordKey(resource, recordID string) (string, error) {
	if err := validateKeyPart("resource", resource); err != nil {
		return "", err
	}
	id, err := encodeForeignID("record id", recordID)
	if err != nil {
		return "", err
	}
	return joinKey(resource, id), nil
}

func splitResourceRecordKey(rk string) (resource, recordID string, err error) {
	parts, err := splitKey("resource/record key", rk, 2)
	if err != nil {
		return "", "", err
	}
	id, err := decodeForeignID("record id", parts[1])
	return parts[0], id, err
}

// SyncError remembers a record that failed to sync (table syncerrors). Its name is kept only
// temporarily, for the error notification, and sealed.
type SyncError struct {
	Resource      string // key part 1
	RecordID      string // key part 2, stored encoded
	RecordName    string // sealed
	ErrorCode     string // our code for the failure, never the remote message
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}

// SyncErrorKey is the row key of (resource, recordID).
func SyncErrorKey(resource, recordID string) (string, error) {
	return resourceRecordKey(resource, recordID)
}

func (s *SyncError) rowKey() (string, error) { return resourceRecordKey(s.Resource, s.RecordID) }
func (s *SyncError) setRowKey(rk string) (err error) {
	s.Resource, s.RecordID, err = splitResourceRecordKey(rk)
	return err
}
func (s *SyncError) encode(e *encoder) {
	e.sealed("RecordName", s.RecordName)
	e.str("ErrorCode", s.ErrorCode)
	e.int("Attempts", int64(s.Attempts))
	e.time("FirstFailedAt", s.FirstFailedAt)
	e.time("LastFailedAt", s.LastFailedAt)
}
func (s *SyncError) decode(d *decoder) {
	s.RecordName = d.sealed("RecordName")
	s.ErrorCode = d.str("ErrorCode")
	s.Attempts = d.intN("Attempts")
	s.FirstFailedAt = d.time("FirstFailedAt")
	s.LastFailedAt = d.time("LastFailedAt")
}

// Booking is a cached room booking (table bookings): times and free/busy only — no subject, no attendees.
type Booking struct {
	RoomID       string // key part 1: the room mailbox's object id
	EventID      string // key part 2: the Graph event id, stored encoded
	Start        time.Time
	End          time.Time
	ShowAs       string // free, tentative, busy, oof, workingElsewhere, unknown
	LastModified time.Time
}

// BookingKey is the row key of (roomID, eventID).
func BookingKey(roomID, eventID string) (string, error) {
	return (&Booking{RoomID: roomID, EventID: eventID}).rowKey()
}

func (b *Booking) rowKey() (string, error) {
	if err := validateKeyPart("room id", b.RoomID); err != nil {
		return "", err
	}
	id, err := encodeForeignID("event id", b.EventID)
	if err != nil {
		return "", err
	}
	return joinKey(b.RoomID, id), nil
}
func (b *Booking) setRowKey(rk string) error {
	parts, err := splitKey("booking key", rk, 2)
	if err != nil {
		return err
	}
	b.RoomID = parts[0]
	b.EventID, err = decodeForeignID("event id", parts[1])
	return err
}
func (b *Booking) encode(e *encoder) {
	e.time("Start", b.Start)
	e.time("End", b.End)
	e.str("ShowAs", b.ShowAs)
	e.time("LastModified", b.LastModified)
}
func (b *Booking) decode(d *decoder) {
	b.Start = d.time("Start")
	b.End = d.time("End")
	b.ShowAs = d.str("ShowAs")
	b.LastModified = d.time("LastModified")
}

// License is one product license assigned to one user (table licenses).
type License struct {
	Product    string // key part 1, e.g. "presence"
	UserID     string // key part 2
	AssignedAt time.Time
	AssignedBy string // object id of the admin who assigned it
}

// LicenseKey is the row key of (product, userID).
func LicenseKey(product, userID string) (string, error) {
	return (&License{Product: product, UserID: userID}).rowKey()
}

func (l *License) rowKey() (string, error) {
	if err := validateKeyPart("product", l.Product); err != nil {
		return "", err
	}
	if err := validateKeyPart("user id", l.UserID); err != nil {
		return "", err
	}
	return joinKey(l.Product, l.UserID), nil
}
func (l *License) setRowKey(rk string) error {
	parts, err := splitKey("license key", rk, 2)
	if err != nil {
		return err
	}
	l.Product, l.UserID = parts[0], parts[1]
	return nil
}
func (l *License) encode(e *encoder) {
	e.time("AssignedAt", l.AssignedAt)
	e.str("AssignedBy", l.AssignedBy)
}
func (l *License) decode(d *decoder) {
	l.AssignedAt = d.time("AssignedAt")
	l.AssignedBy = d.str("AssignedBy")
}

const dayLayout = "2006-01-02"

// BillingSnapshot is the daily usage count of one product (table billing), with the figures of the
// billing period it belongs to so far: the latest row of a period is that period's bill.
type BillingSnapshot struct {
	Day             time.Time // key part 1 (UTC date)
	Product         string    // key part 2
	Purchased       int
	Assigned        int
	Active          int // users with at least one synchronised event that day
	PeriodStart     time.Time
	PeriodPurchased int // peaks from PeriodStart up to and including Day
	PeriodAssigned  int
	PeriodActive    int
	TakenAt         time.Time
}

// BillingKey is the row key of (day, product).
func BillingKey(day time.Time, product string) (string, error) {
	return (&BillingSnapshot{Day: day, Product: product}).rowKey()
}

func (b *BillingSnapshot) rowKey() (string, error) {
	if b.Day.IsZero() {
		return "", &KeyError{What: "billing day", Reason: "empty"}
	}
	if err := validateKeyPart("product", b.Product); err != nil {
		return "", err
	}
	return joinKey(b.Day.UTC().Format(dayLayout), b.Product), nil
}
func (b *BillingSnapshot) setRowKey(rk string) error {
	parts, err := splitKey("billing key", rk, 2)
	if err != nil {
		return err
	}
	day, err := time.Parse(dayLayout, parts[0])
	if err != nil {
		return &KeyError{What: "billing day", Reason: "not a date"}
	}
	b.Day, b.Product = day, parts[1]
	return nil
}
func (b *BillingSnapshot) encode(e *encoder) {
	e.int("Purchased", int64(b.Purchased))
	e.int("Assigned", int64(b.Assigned))
	e.int("Active", int64(b.Active))
	e.time("PeriodStart", b.PeriodStart)
	e.int("PeriodPurchased", int64(b.PeriodPurchased))
	e.int("PeriodAssigned", int64(b.PeriodAssigned))
	e.int("PeriodActive", int64(b.PeriodActive))
	e.time("TakenAt", b.TakenAt)
}
func (b *BillingSnapshot) decode(d *decoder) {
	b.Purchased = d.intN("Purchased")
	b.Assigned = d.intN("Assigned")
	b.Active = d.intN("Active")
	b.PeriodStart = d.time("PeriodStart")
	b.PeriodPurchased = d.intN("PeriodPurchased")
	b.PeriodAssigned = d.intN("PeriodAssigned")
	b.PeriodActive = d.intN("PeriodActive")
	b.TakenAt = d.time("TakenAt")
}

// AuditEntry is one administrative operation (table audit, append-only).
type AuditEntry struct {
	ID           string // key: newest-first time order plus randomness, set by AuditLog.Append
	At           time.Time
	ActorID      string // object id of the admin or app, or "system"
	ActorKind    string // user, app, system
	Action       string // e.g. "license.assign"
	TargetType   string // e.g. "user"
	TargetID     string // id of the object acted on
	Outcome      string // success, denied, failed
	InvocationID string // Functions invocation id, to join with logs
}

func (a *AuditEntry) rowKey() (string, error)   { return simpleKey("audit id", a.ID) }
func (a *AuditEntry) setRowKey(rk string) error { a.ID = rk; return nil }
func (a *AuditEntry) encode(e *encoder) {
	e.time("At", a.At)
	e.str("ActorID", a.ActorID)
	e.str("ActorKind", a.ActorKind)
	e.str("Action", a.Action)
	e.str("TargetType", a.TargetType)
	e.str("TargetID", a.TargetID)
	e.str("Outcome", a.Outcome)
	e.str("InvocationID", a.InvocationID)
}
func (a *AuditEntry) decode(d *decoder) {
	a.At = d.time("At")
	a.ActorID = d.str("ActorID")
	a.ActorKind = d.str("ActorKind")
	a.Action = d.str("Action")
	a.TargetType = d.str("TargetType")
	a.TargetID = d.str("TargetID")
	a.Outcome = d.str("Outcome")
	a.InvocationID = d.str("InvocationID")
}

// Authorisation grants a role to a principal within the tenant (table authorisations). Revoking deletes
// the row; the audit log keeps the history of grants and revocations.
type Authorisation struct {
	PrincipalID   string // key part 1: object id of the user, group or app
	Role          string // key part 2, e.g. "tenant.admin"
	PrincipalKind string // user, group, app
	GrantedAt     time.Time
	GrantedBy     string // object id of the granting admin
}

// AuthorisationKey is the row key of (principalID, role).
func AuthorisationKey(principalID, role string) (string, error) {
	return (&Authorisation{PrincipalID: principalID, Role: role}).rowKey()
}

func (a *Authorisation) rowKey() (string, error) {
	if err := validateKeyPart("principal id", a.PrincipalID); err != nil {
		return "", err
	}
	if err := validateKeyPart("role", a.Role); err != nil {
		return "", err
	}
	return joinKey(a.PrincipalID, a.Role), nil
}
func (a *Authorisation) setRowKey(rk string) error {
	parts, err := splitKey("authorisation key", rk, 2)
	if err != nil {
		return err
	}
	a.PrincipalID, a.Role = parts[0], parts[1]
	return nil
}
func (a *Authorisation) encode(e *encoder) {
	e.str("PrincipalKind", a.PrincipalKind)
	e.time("GrantedAt", a.GrantedAt)
	e.str("GrantedBy", a.GrantedBy)
}
func (a *Authorisation) decode(d *decoder) {
	a.PrincipalKind = d.str("PrincipalKind")
	a.GrantedAt = d.time("GrantedAt")
	a.GrantedBy = d.str("GrantedBy")
}

// Incident is a security incident as it affects one tenant (table incidents); NotifyBy is the 72-hour
// deadline for telling the tenant.
type Incident struct {
	ID         string // key
	Category   string // e.g. "unauthorised-access"
	Severity   string // low, medium, high
	Status     string // open, notified, resolved
	Summary    string // sealed: free text may name people despite the rule not to
	DetectedAt time.Time
	NotifyBy   time.Time
	NotifiedAt time.Time
	ResolvedAt time.Time
}

func (i *Incident) rowKey() (string, error)   { return simpleKey("incident id", i.ID) }
func (i *Incident) setRowKey(rk string) error { i.ID = rk; return nil }
func (i *Incident) encode(e *encoder) {
	e.str("Category", i.Category)
	e.str("Severity", i.Severity)
	e.str("Status", i.Status)
	e.sealed("Summary", i.Summary)
	e.time("DetectedAt", i.DetectedAt)
	e.time("NotifyBy", i.NotifyBy)
	e.time("NotifiedAt", i.NotifiedAt)
	e.time("ResolvedAt", i.ResolvedAt)
}
func (i *Incident) decode(d *decoder) {
	i.Category = d.str("Category")
	i.Severity = d.str("Severity")
	i.Status = d.str("Status")
	i.Summary = d.sealed("Summary")
	i.DetectedAt = d.time("DetectedAt")
	i.NotifyBy = d.time("NotifyBy")
	i.NotifiedAt = d.time("NotifiedAt")
	i.ResolvedAt = d.time("ResolvedAt")
}

// Job is the lease and checkpoint of one job for one tenant (table jobs).
type Job struct {
	Name          string // key, e.g. "renew-subscriptions"
	LeaseOwner    string // instance id holding the lease
	LeaseUntil    time.Time
	Checkpoint    string // opaque resume point (continuation token, delta link)
	Runs          int
	LastRunAt     time.Time
	LastSuccessAt time.Time
	LastError     string // our error code, never a message with data in it
}

func (j *Job) rowKey() (string, error)   { return simpleKey("job name", j.Name) }
func (j *Job) setRowKey(rk string) error { j.Name = rk; return nil }
func (j *Job) encode(e *encoder) {
	e.str("LeaseOwner", j.LeaseOwner)
	e.time("LeaseUntil", j.LeaseUntil)
	e.str("Checkpoint", j.Checkpoint)
	e.int("Runs", int64(j.Runs))
	e.time("LastRunAt", j.LastRunAt)
	e.time("LastSuccessAt", j.LastSuccessAt)
	e.str("LastError", j.LastError)
}
func (j *Job) decode(d *decoder) {
	j.LeaseOwner = d.str("LeaseOwner")
	j.LeaseUntil = d.time("LeaseUntil")
	j.Checkpoint = d.str("Checkpoint")
	j.Runs = d.intN("Runs")
	j.LastRunAt = d.time("LastRunAt")
	j.LastSuccessAt = d.time("LastSuccessAt")
	j.LastError = d.str("LastError")
}

// DeletionReceipt proves that a tenant's data was deleted (operator table deletionreceipts). It holds
// counts and times, no personal data, and is kept after the tenant's other rows are gone.
type DeletionReceipt struct {
	Tenant        core.TenantID // key (PartitionKey)
	ID            string        // key: newest-first, set by ReceiptLog.Append
	Reason        string        // cancelled, suspended, request, consent-expired
	Categories    string        // what this receipt covers: tenant (all but license and billing data), licenses, billing
	EndedAt       time.Time     // cancellation or suspension: the start of the license and billing clocks
	RequestedAt   time.Time
	CompletedAt   time.Time
	KeyDestroyed  bool   // the tenant data key was deleted (and purged where allowed)
	RowsDeleted   int    // total over all tables
	Tables        string // per-table counts, "users=12,presence=12"
	Secrets       int    // Key Vault secrets of the tenant deleted
	Subscriptions int    // Graph subscriptions deleted at Graph (best effort; their rows count in Tables)
}

func (r *DeletionReceipt) rowKey() (string, error)       { return simpleKey("receipt id", r.ID) }
func (r *DeletionReceipt) setRowKey(rk string) error     { r.ID = rk; return nil }
func (r *DeletionReceipt) setPartition(id core.TenantID) { r.Tenant = id }
func (r *DeletionReceipt) encode(e *encoder) {
	e.str("Reason", r.Reason)
	e.str("Categories", r.Categories)
	e.time("EndedAt", r.EndedAt)
	e.time("RequestedAt", r.RequestedAt)
	e.time("CompletedAt", r.CompletedAt)
	e.bool("KeyDestroyed", r.KeyDestroyed)
	e.int("RowsDeleted", int64(r.RowsDeleted))
	e.str("Tables", r.Tables)
	e.int("Secrets", int64(r.Secrets))
	e.int("Subscriptions", int64(r.Subscriptions))
}
func (r *DeletionReceipt) decode(d *decoder) {
	r.Reason = d.str("Reason")
	r.Categories = d.str("Categories")
	r.EndedAt = d.time("EndedAt")
	r.RequestedAt = d.time("RequestedAt")
	r.CompletedAt = d.time("CompletedAt")
	r.KeyDestroyed = d.bool("KeyDestroyed")
	r.RowsDeleted = d.intN("RowsDeleted")
	r.Tables = d.str("Tables")
	r.Secrets = d.intN("Secrets")
	r.Subscriptions = d.intN("Subscriptions")
}

// newestFirstID makes a row key that sorts newest first (inverted 100-ns ticks) with random bits
// against collisions, so a partition lists its latest audit entries or receipts first.
func newestFirstID(at time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	inv := uint64(math.MaxInt64) - uint64(at.UTC().UnixNano()/100)
	return fmt.Sprintf("%019d-%s", inv, hex.EncodeToString(r[:]))
}
