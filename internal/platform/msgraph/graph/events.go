package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// MailboxEvent is what the CRM sync reads of a mailbox's calendar event: the fields it maps to a
// Salesforce Event, and the id, changeKey and lastModifiedDateTime it keeps. Everything but those
// three is personal and lives only in memory during a sync. Attendees and the organizer are not read.
type MailboxEvent struct {
	ID           string
	ICalUID      string
	ChangeKey    string // changes on every edit (GH v1.0/resources/event.md)
	LastModified time.Time
	Subject      string
	Start, End   time.Time // UTC (asked for with Prefer: outlook.timezone="UTC")
	IsAllDay     bool
	Location     string // location.displayName
	Body         string // body.content as text (Prefer: outlook.body-content-type="text")
	ShowAs       string // free, tentative, busy, oof, workingElsewhere, unknown
	Sensitivity  string // normal, personal, private, confidential
	Type         string // singleInstance, occurrence, exception (calendarView never returns a seriesMaster)
	IsCancelled  bool
}

// EventChange is one item of a calendarView delta page: an event instance created or changed, or one
// removed ("@removed" with only the id: reason "deleted" covers real deletions and instances that moved
// out of the window, event-delta.md — the caller tells them apart with GetEvent).
type EventChange struct {
	MailboxEvent
	Removed       bool
	RemovedReason string
}

// eventPrefer asks for start and end in UTC and the body as plain text on every page: calendarView delta
// takes no $select (next-capabilities §1.4), so the headers are how the answer is shaped.
func eventPrefer() *abs.RequestHeaders {
	h := abs.NewRequestHeaders()
	h.Add("Prefer", `outlook.timezone="UTC"`)
	h.Add("Prefer", `outlook.body-content-type="text"`)
	return h
}

// EventsDelta runs a calendarView delta query on mailbox's default calendar over [start, end) app-only
// (Calendars.Read) and calls fn for every change, following @odata.nextLink. deltaLink "" starts a full
// enumeration of the window; otherwise it resumes from a link a previous call returned, and the window
// is the one baked into that link (start and end are then ignored: Graph takes them only in the first
// call, GH api-reference/v1.0/api/event-delta.md). Series come expanded into occurrences and
// exceptions. ErrDeltaExpired means start again with "". Replays happen: fn must be idempotent.
func (c *Client) EventsDelta(ctx context.Context, mailbox string, start, end time.Time, deltaLink string, fn func(EventChange) error) (string, error) {
	if !validSegment(mailbox) {
		return "", errors.New("events delta: invalid mailbox")
	}
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).CalendarView().Delta()
	b := root
	cfg := &users.ItemCalendarViewDeltaRequestBuilderGetRequestConfiguration{Headers: eventPrefer()}
	if deltaLink != "" {
		b = root.WithUrl(deltaLink)
	} else {
		if !end.After(start) {
			return "", errors.New("events delta: empty window")
		}
		s, e := start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)
		cfg.QueryParameters = &users.ItemCalendarViewDeltaRequestBuilderGetQueryParameters{StartDateTime: &s, EndDateTime: &e}
	}
	for {
		resp, err := b.GetAsDeltaGetResponse(ctx, cfg)
		if err != nil {
			return "", wrap("events delta", err)
		}
		if resp == nil {
			return "", &Error{Op: "events delta", Status: 200, Code: "emptyBody"}
		}
		for _, x := range resp.GetValue() {
			var ch EventChange
			if removed, ok := x.GetAdditionalData()["@removed"]; ok {
				ch.ID, ch.Removed, ch.RemovedReason = str(x.GetId()), true, removedReason(removed)
			} else if ch.MailboxEvent, err = toMailboxEvent(x); err != nil {
				return "", fmt.Errorf("events delta: %w", err)
			}
			if err := fn(ch); err != nil {
				return "", fmt.Errorf("events delta: %w", err)
			}
		}
		if next := str(resp.GetOdataNextLink()); next != "" {
			b, cfg = root.WithUrl(next), &users.ItemCalendarViewDeltaRequestBuilderGetRequestConfiguration{Headers: eventPrefer()}
			continue
		}
		link := str(resp.GetOdataDeltaLink())
		if link == "" {
			return "", &Error{Op: "events delta", Status: 200, Code: "noDeltaLink"}
		}
		return link, nil
	}
}

// GetEvent reads one event (an occurrence's id works too) with the same Prefer headers; ErrNotFound
// when it is gone.
func (c *Client) GetEvent(ctx context.Context, mailbox, id string) (MailboxEvent, error) {
	if !validSegment(mailbox) || !validSegment(id) {
		return MailboxEvent{}, errors.New("get event: invalid mailbox or id")
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).Events().ByEventId(id).
		Get(ctx, &users.ItemEventsEventItemRequestBuilderGetRequestConfiguration{Headers: eventPrefer()})
	if err != nil {
		return MailboxEvent{}, wrap("get event", err)
	}
	if x == nil {
		return MailboxEvent{}, &Error{Op: "get event", Status: 200, Code: "emptyBody"}
	}
	return toMailboxEvent(x)
}

func toMailboxEvent(x models.Eventable) (MailboxEvent, error) {
	out := MailboxEvent{ID: str(x.GetId()), ICalUID: str(x.GetICalUId()), ChangeKey: str(x.GetChangeKey()), Subject: str(x.GetSubject())}
	var err error
	if out.Start, err = parseDateTimeTimeZone(x.GetStart()); err != nil {
		return MailboxEvent{}, fmt.Errorf("event start: %w", err)
	}
	if out.End, err = parseDateTimeTimeZone(x.GetEnd()); err != nil {
		return MailboxEvent{}, fmt.Errorf("event end: %w", err)
	}
	if v := x.GetLastModifiedDateTime(); v != nil {
		out.LastModified = v.UTC()
	}
	if v := x.GetIsAllDay(); v != nil {
		out.IsAllDay = *v
	}
	if v := x.GetIsCancelled(); v != nil {
		out.IsCancelled = *v
	}
	if l := x.GetLocation(); l != nil {
		out.Location = str(l.GetDisplayName())
	}
	if b := x.GetBody(); b != nil {
		out.Body = str(b.GetContent())
	}
	if v := x.GetShowAs(); v != nil {
		out.ShowAs = v.String()
	}
	if v := x.GetSensitivity(); v != nil {
		out.Sensitivity = v.String()
	}
	if v := x.GetTypeEscaped(); v != nil {
		out.Type = v.String()
	}
	return out, nil
}

// EventWrite is what the CRM sync writes to an Outlook event: every field is set (an empty one is
// cleared). Start and End are UTC; an all-day event's are midnights (Graph requires it). TransactionID
// is sent on create only: Graph drops a second POST with the same id, so a retried create does not
// make a duplicate (GH v1.0/resources/event.md, transactionId). Properties are single-value extended
// properties, as ContactWrite's.
type EventWrite struct {
	Subject, Body, Location string
	Start, End              time.Time
	IsAllDay                bool
	ShowAs                  string // free, tentative, busy, oof, workingElsewhere, unknown
	Sensitivity             string // normal, private, …
	TransactionID           string
	Properties              map[string]string
}

func (w EventWrite) model(create bool) (models.Eventable, error) {
	x := models.NewEvent()
	s := func(v string) *string { return &v }
	x.SetSubject(s(w.Subject))
	b := models.NewItemBody()
	text := models.TEXT_BODYTYPE
	b.SetContentType(&text)
	b.SetContent(s(w.Body))
	x.SetBody(b)
	l := models.NewLocation()
	l.SetDisplayName(s(w.Location))
	x.SetLocation(l)
	dt := func(t time.Time) models.DateTimeTimeZoneable {
		d := models.NewDateTimeTimeZone()
		d.SetDateTime(s(t.UTC().Format("2006-01-02T15:04:05")))
		d.SetTimeZone(s("UTC"))
		return d
	}
	x.SetStart(dt(w.Start))
	x.SetEnd(dt(w.End))
	x.SetIsAllDay(&w.IsAllDay)
	if w.ShowAs != "" {
		v, err := models.ParseFreeBusyStatus(w.ShowAs)
		if err != nil || v == nil {
			return nil, fmt.Errorf("showAs %q", w.ShowAs)
		}
		x.SetShowAs(v.(*models.FreeBusyStatus))
	}
	if w.Sensitivity != "" {
		v, err := models.ParseSensitivity(w.Sensitivity)
		if err != nil || v == nil {
			return nil, fmt.Errorf("sensitivity %q", w.Sensitivity)
		}
		x.SetSensitivity(v.(*models.Sensitivity))
	}
	if create && w.TransactionID != "" {
		x.SetTransactionId(s(w.TransactionID))
	}
	if len(w.Properties) > 0 {
		var props []models.SingleValueLegacyExtendedPropertyable
		for id, v := range w.Properties {
			p := models.NewSingleValueLegacyExtendedProperty()
			p.SetId(s(id))
			p.SetValue(s(v))
			props = append(props, p)
		}
		x.SetSingleValueExtendedProperties(props)
	}
	return x, nil
}

// CreateEvent creates an event in mailbox's default calendar app-only (Calendars.ReadWrite) and returns
// it as Graph answers (id, changeKey, lastModifiedDateTime).
func (c *Client) CreateEvent(ctx context.Context, mailbox string, w EventWrite) (MailboxEvent, error) {
	if !validSegment(mailbox) {
		return MailboxEvent{}, errors.New("create event: invalid mailbox")
	}
	m, err := w.model(true)
	if err != nil {
		return MailboxEvent{}, fmt.Errorf("create event: %w", err)
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).Events().
		Post(ctx, m, &users.ItemEventsRequestBuilderPostRequestConfiguration{Headers: eventPrefer()})
	if err != nil {
		return MailboxEvent{}, wrap("create event", err)
	}
	if x == nil {
		return MailboxEvent{}, &Error{Op: "create event", Status: 201, Code: "emptyBody"}
	}
	return toMailboxEvent(x)
}

// UpdateEvent writes w over event id (ErrNotFound when it is gone).
func (c *Client) UpdateEvent(ctx context.Context, mailbox, id string, w EventWrite) (MailboxEvent, error) {
	if !validSegment(mailbox) || !validSegment(id) {
		return MailboxEvent{}, errors.New("update event: invalid mailbox or id")
	}
	m, err := w.model(false)
	if err != nil {
		return MailboxEvent{}, fmt.Errorf("update event: %w", err)
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).Events().ByEventId(id).
		Patch(ctx, m, &users.ItemEventsEventItemRequestBuilderPatchRequestConfiguration{Headers: eventPrefer()})
	if err != nil {
		return MailboxEvent{}, wrap("update event", err)
	}
	if x == nil {
		return MailboxEvent{}, &Error{Op: "update event", Status: 200, Code: "emptyBody"}
	}
	return toMailboxEvent(x)
}

// DeleteEvent deletes event id (ErrNotFound when it is gone already).
func (c *Client) DeleteEvent(ctx context.Context, mailbox, id string) error {
	if !validSegment(mailbox) || !validSegment(id) {
		return errors.New("delete event: invalid mailbox or id")
	}
	return wrap("delete event", users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).Events().ByEventId(id).Delete(ctx, nil))
}

// FindEvents lists up to 10 events of mailbox that carry extended property prop with value.
func (c *Client) FindEvents(ctx context.Context, mailbox, prop, value string) ([]MailboxEvent, error) {
	if !validSegment(mailbox) || prop == "" || value == "" {
		return nil, errors.New("find events: invalid mailbox, property or value")
	}
	filter := "singleValueExtendedProperties/Any(ep: ep/id eq " + ODataString(prop) + " and ep/value eq " + ODataString(value) + ")"
	top := int32(maxFound)
	resp, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).Events().Get(ctx,
		&users.ItemEventsRequestBuilderGetRequestConfiguration{Headers: eventPrefer(),
			QueryParameters: &users.ItemEventsRequestBuilderGetQueryParameters{Filter: &filter, Top: &top}})
	if err != nil {
		return nil, wrap("find events", err)
	}
	if resp == nil {
		return nil, &Error{Op: "find events", Status: 200, Code: "emptyBody"}
	}
	var out []MailboxEvent
	for _, x := range resp.GetValue() {
		e, err := toMailboxEvent(x)
		if err != nil {
			return nil, fmt.Errorf("find events: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// EventsWithProperty calls fn for every instance of mailbox's calendar overlapping [start, end) that
// carries extended property prop, with its value: one paged calendarView read with the property
// expanded (GET …/calendarView?$select=…&$expand=singleValueExtendedProperties($filter=id eq '…')),
// in place of a lookup per value.
func (c *Client) EventsWithProperty(ctx context.Context, mailbox string, start, end time.Time, prop string, fn func(MailboxEvent, string) error) error {
	if !validSegment(mailbox) || prop == "" || !end.After(start) {
		return errors.New("events with property: invalid mailbox, property or window")
	}
	s, e := start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).CalendarView()
	top := int32(100)
	first := &users.ItemCalendarViewRequestBuilderGetRequestConfiguration{Headers: eventPrefer(),
		QueryParameters: &users.ItemCalendarViewRequestBuilderGetQueryParameters{StartDateTime: &s, EndDateTime: &e, Top: &top,
			Select: []string{"id", "changeKey", "lastModifiedDateTime", "start", "end"},
			Expand: []string{"singleValueExtendedProperties($filter=id eq " + ODataString(prop) + ")"}}}
	return followPages("events with property", func(next string) (models.EventCollectionResponseable, error) {
		if next == "" {
			return root.Get(ctx, first)
		}
		return root.WithUrl(next).Get(ctx, &users.ItemCalendarViewRequestBuilderGetRequestConfiguration{Headers: eventPrefer()})
	}, func(x models.Eventable) error {
		for _, p := range x.GetSingleValueExtendedProperties() {
			if !strings.EqualFold(str(p.GetId()), prop) || str(p.GetValue()) == "" {
				continue
			}
			ev, err := toMailboxEvent(x)
			if err != nil {
				return err
			}
			if err := fn(ev, str(p.GetValue())); err != nil {
				return err
			}
		}
		return nil
	})
}
