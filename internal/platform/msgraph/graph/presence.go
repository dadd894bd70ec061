package graph

import (
	"context"
	"time"

	"github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/communications"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// MaxPresenceIDs is Graph's limit of user ids per presence subscription and per getPresencesByUserId call.
const MaxPresenceIDs = 650

// Presence is one user's presence. Sequence is Graph's sequenceNumber: a lexicographically sortable
// version stamp of the presence (empty when Graph does not send it).
type Presence struct {
	UserID       string
	Availability string
	Activity     string
	Sequence     string
}

// PresencesByUserID reads the presence of many users (delegated: Presence.Read.All), in calls of at
// most MaxPresenceIDs ids. Unknown ids are simply absent from the answer.
func (c *Client) PresencesByUserID(ctx context.Context, ids []string) ([]Presence, error) {
	b := communications.NewCommunicationsRequestBuilderInternal(c.params(), c.adapter).GetPresencesByUserId()
	out := make([]Presence, 0, len(ids))
	for start := 0; start < len(ids); start += MaxPresenceIDs {
		chunk := ids[start:min(start+MaxPresenceIDs, len(ids))]
		body := communications.NewGetPresencesByUserIdPostRequestBody()
		body.SetIds(chunk)
		resp, err := b.PostAsGetPresencesByUserIdPostResponse(ctx, body, nil)
		if err != nil {
			return nil, wrap("get presences", err)
		}
		if resp == nil {
			continue
		}
		for _, p := range resp.GetValue() {
			out = append(out, Presence{UserID: str(p.GetId()), Availability: str(p.GetAvailability()),
				Activity: str(p.GetActivity()), Sequence: str(p.GetSequenceNumber())})
		}
	}
	return out, nil
}

// SetPresence sets the user's presence in an application session (app-only: Presence.ReadWrite.All;
// sessionID must be the application's client id). Graph accepts only the pairs Available/Available,
// Busy/InACall, Busy/InAConferenceCall, Away/Away and DoNotDisturb/Presenting; expiry runs from 5 min to
// 4 h (presence-setpresence.md).
func (c *Client) SetPresence(ctx context.Context, userID, sessionID, availability, activity string, expiry time.Duration) error {
	body := users.NewItemPresenceSetPresencePostRequestBody()
	body.SetSessionId(&sessionID)
	body.SetAvailability(&availability)
	body.SetActivity(&activity)
	mins := int(expiry / time.Minute)
	d := serialization.NewDuration(0, 0, 0, mins/60, mins%60, 0, 0)
	body.SetExpirationDuration(d)
	err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(userID).Presence().SetPresence().Post(ctx, body, nil)
	return wrap("set presence", err)
}

// ClearPresence ends the application's presence session of the user. Graph answers 404 (ErrNotFound)
// when there is no such session (presence-clearpresence.md).
func (c *Client) ClearPresence(ctx context.Context, userID, sessionID string) error {
	body := users.NewItemPresenceClearPresencePostRequestBody()
	body.SetSessionId(&sessionID)
	err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(userID).Presence().ClearPresence().Post(ctx, body, nil)
	return wrap("clear presence", err)
}
