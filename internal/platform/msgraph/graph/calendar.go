package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// Event is what the room cache keeps of a calendar event: its times and free/busy, never its subject,
// organizer, attendees or body (room mailboxes put the organizer's name in the subject by default).
type Event struct {
	ID           string
	ICalUID      string
	Start, End   time.Time // UTC
	ShowAs       string    // free, tentative, busy, oof, workingElsewhere, unknown
	IsCancelled  bool
	Type         string // singleInstance, occurrence, exception (calendarView expands series)
	LastModified time.Time
}

// eventSelect is every property Event holds: data minimisation starts at the request (next-capabilities
// §1.2: "$select only start,end,showAs,isCancelled,type,iCalUId").
var eventSelect = []string{"id", "iCalUId", "start", "end", "showAs", "isCancelled", "type", "lastModifiedDateTime"}

// CalendarView lists the events of mailbox (an e-mail address or object id) overlapping [start, end)
// app-only (Calendars.Read), recurring series expanded into their occurrences and exceptions, all
// pages. The window is sent with its offset (UTC) — Graph reads the offset in the value and ignores
// Prefer: outlook.timezone there — and without that header the times come back in UTC.
func (c *Client) CalendarView(ctx context.Context, mailbox string, start, end time.Time) ([]Event, error) {
	if mailbox == "" || strings.ContainsAny(mailbox, "/?#") {
		return nil, errors.New("calendar view: invalid mailbox")
	}
	if !end.After(start) {
		return nil, errors.New("calendar view: empty window")
	}
	s, e := start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).CalendarView()
	b := root
	cfg := &users.ItemCalendarViewRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemCalendarViewRequestBuilderGetQueryParameters{StartDateTime: &s, EndDateTime: &e, Select: eventSelect}}
	var out []Event
	for {
		page, err := b.Get(ctx, cfg)
		if err != nil {
			return nil, wrap("calendar view", err)
		}
		if page == nil {
			return out, nil
		}
		for _, ev := range page.GetValue() {
			x, err := toEvent(ev)
			if err != nil {
				return nil, fmt.Errorf("calendar view: %w", err)
			}
			out = append(out, x)
		}
		next := str(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
		b, cfg = root.WithUrl(next), nil
	}
}

func toEvent(ev models.Eventable) (Event, error) {
	out := Event{ID: str(ev.GetId()), ICalUID: str(ev.GetICalUId())}
	var err error
	if out.Start, err = parseDateTimeTimeZone(ev.GetStart()); err != nil {
		return Event{}, fmt.Errorf("event start: %w", err)
	}
	if out.End, err = parseDateTimeTimeZone(ev.GetEnd()); err != nil {
		return Event{}, fmt.Errorf("event end: %w", err)
	}
	if v := ev.GetShowAs(); v != nil {
		out.ShowAs = v.String()
	}
	if v := ev.GetIsCancelled(); v != nil {
		out.IsCancelled = *v
	}
	if v := ev.GetTypeEscaped(); v != nil {
		out.Type = v.String()
	}
	if v := ev.GetLastModifiedDateTime(); v != nil {
		out.LastModified = v.UTC()
	}
	return out, nil
}

// parseDateTimeTimeZone reads Graph's dateTimeTimeZone: a local date-time without offset
// ("2026-03-02T09:00:00.0000000") and the zone it is in ("UTC" unless Prefer: outlook.timezone asked
// for another; Windows zone names are not IANA names and are refused rather than guessed).
func parseDateTimeTimeZone(v models.DateTimeTimeZoneable) (time.Time, error) {
	if v == nil || v.GetDateTime() == nil {
		return time.Time{}, errors.New("no dateTime")
	}
	loc := time.UTC
	if tz := str(v.GetTimeZone()); tz != "" && !strings.EqualFold(tz, "UTC") && !strings.EqualFold(tz, "Etc/GMT") {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, fmt.Errorf("time zone %q is not an IANA zone", tz)
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", *v.GetDateTime(), loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("dateTime: %w", err)
	}
	return t.UTC(), nil
}
