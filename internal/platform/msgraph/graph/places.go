package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/places"
)

// Room is what the room cache keeps of a Places room: what an availability query filters on, nothing
// more. EmailAddress is the stable key: the v1.0 id can change when the mailbox or the tenant's
// configuration changes (GH microsoft-graph-docs-contrib api-reference/v1.0/resources/room.md).
type Room struct {
	EmailAddress string
	DisplayName  string
	Capacity     int
	Building     string
	FloorLabel   string
	FloorNumber  int
	BookingType  string // standard, reserved (first come, first served; not bookable), unknown
	Accessible   bool   // isWheelChairAccessible
	Tags         []string
}

// RoomList is a room list (a distribution group of rooms), named by its e-mail address.
type RoomList struct {
	EmailAddress string
	DisplayName  string
}

// roomSelect is every property Room holds. Places answers 100 rooms per page by default
// (beta place-list.md), so pages are followed through @odata.nextLink.
var roomSelect = []string{"emailAddress", "displayName", "capacity", "building", "floorLabel", "floorNumber",
	"bookingType", "isWheelChairAccessible", "tags"}

// ListRooms returns the tenant's rooms (app-only: Place.Read.All), or with roomList set the rooms of
// that room list, named by its e-mail address — the documented path takes the list's emailAddress, not
// its id (v1.0 place-list.md). Rooms hidden from the address book are not returned by Graph. Rooms
// without an e-mail address cannot be booked or cached and are left out.
func (c *Client) ListRooms(ctx context.Context, roomList string) ([]Room, error) {
	root := places.NewPlacesRequestBuilderInternal(c.params(), c.adapter)
	var out []Room
	add := func(rs []models.Roomable) {
		for _, r := range rs {
			if room := toRoom(r); room.EmailAddress != "" {
				out = append(out, room)
			}
		}
	}
	if roomList == "" {
		all := root.GraphRoom()
		cfg := &places.GraphRoomRequestBuilderGetRequestConfiguration{
			QueryParameters: &places.GraphRoomRequestBuilderGetQueryParameters{Select: roomSelect}}
		err := allPages(func(next string) (models.RoomCollectionResponseable, error) {
			if next != "" {
				return all.WithUrl(next).Get(ctx, nil)
			}
			return all.Get(ctx, cfg)
		}, add)
		if err != nil {
			return nil, wrap("list rooms", err)
		}
		return out, nil
	}
	if strings.ContainsAny(roomList, "/?#") || !strings.Contains(roomList, "@") {
		return nil, errors.New("list rooms: a room list is named by its e-mail address")
	}
	of := root.ByPlaceId(roomList).GraphRoomList().Rooms()
	cfg := &places.ItemGraphRoomListRoomsRequestBuilderGetRequestConfiguration{
		QueryParameters: &places.ItemGraphRoomListRoomsRequestBuilderGetQueryParameters{Select: roomSelect}}
	err := allPages(func(next string) (models.RoomCollectionResponseable, error) {
		if next != "" {
			return of.WithUrl(next).Get(ctx, nil)
		}
		return of.Get(ctx, cfg)
	}, add)
	if err != nil {
		return nil, wrap("list rooms of room list", err)
	}
	return out, nil
}

// ListRoomLists returns the tenant's room lists, all pages.
func (c *Client) ListRoomLists(ctx context.Context) ([]RoomList, error) {
	lists := places.NewPlacesRequestBuilderInternal(c.params(), c.adapter).GraphRoomList()
	cfg := &places.GraphRoomListRequestBuilderGetRequestConfiguration{
		QueryParameters: &places.GraphRoomListRequestBuilderGetQueryParameters{Select: []string{"emailAddress", "displayName"}}}
	var out []RoomList
	err := allPages(func(next string) (models.RoomListCollectionResponseable, error) {
		if next != "" {
			return lists.WithUrl(next).Get(ctx, nil)
		}
		return lists.Get(ctx, cfg)
	}, func(ls []models.RoomListable) {
		for _, l := range ls {
			if e := str(l.GetEmailAddress()); e != "" {
				out = append(out, RoomList{EmailAddress: e, DisplayName: str(l.GetDisplayName())})
			}
		}
	})
	if err != nil {
		return nil, wrap("list room lists", err)
	}
	return out, nil
}

// allPages hands every page's items to add, following @odata.nextLink: get("") fetches the first page
// (with its query options), get(link) the next ones (the link carries them).
func allPages[T any, P interface {
	GetValue() []T
	GetOdataNextLink() *string
}](get func(next string) (P, error), add func([]T)) error {
	next := ""
	for {
		page, err := get(next)
		if err != nil {
			return err
		}
		if any(page) == nil {
			return nil
		}
		add(page.GetValue())
		if next = str(page.GetOdataNextLink()); next == "" {
			return nil
		}
	}
}

func toRoom(r models.Roomable) Room {
	out := Room{EmailAddress: str(r.GetEmailAddress()), DisplayName: str(r.GetDisplayName()), Building: str(r.GetBuilding()),
		FloorLabel: str(r.GetFloorLabel()), Tags: r.GetTags()}
	if v := r.GetCapacity(); v != nil {
		out.Capacity = int(*v)
	}
	if v := r.GetFloorNumber(); v != nil {
		out.FloorNumber = int(*v)
	}
	if v := r.GetBookingType(); v != nil {
		out.BookingType = v.String()
	}
	if v := r.GetIsWheelChairAccessible(); v != nil {
		out.Accessible = *v
	}
	return out
}
