package graph

import (
	"context"

	"github.com/microsoftgraph/msgraph-sdk-go/communications"
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
