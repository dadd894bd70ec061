package graph

import (
	"context"
	"errors"
	"fmt"
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
