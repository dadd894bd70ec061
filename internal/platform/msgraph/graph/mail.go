package graph

import (
	"context"
	"errors"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// Mail is a plain-text message.
type Mail struct {
	To      []string // addresses
	Subject string
	Body    string // text/plain
}

// SendMail sends m from mailbox (object id or address) app-only (Mail.Send, which an application access
// policy or RBAC for Applications should scope to that mailbox). Graph answers 202 with no body (Learn,
// user-sendmail). It is not saved to the sender's Sent Items: what we send names people and records, and
// the sender mailbox is no place to keep it.
func (c *Client) SendMail(ctx context.Context, mailbox string, m Mail) error {
	if !validSegment(mailbox) || len(m.To) == 0 {
		return errors.New("send mail: invalid mailbox or no recipient")
	}
	msg := models.NewMessage()
	msg.SetSubject(&m.Subject)
	body := models.NewItemBody()
	ct := models.TEXT_BODYTYPE
	body.SetContentType(&ct)
	body.SetContent(&m.Body)
	msg.SetBody(body)
	var to []models.Recipientable
	for _, a := range m.To {
		r := models.NewRecipient()
		ea := models.NewEmailAddress()
		ea.SetAddress(&a)
		r.SetEmailAddress(ea)
		to = append(to, r)
	}
	msg.SetToRecipients(to)
	req := users.NewItemSendMailPostRequestBody()
	req.SetMessage(msg)
	save := false
	req.SetSaveToSentItems(&save)
	return wrap("send mail", users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).SendMail().Post(ctx, req, nil))
}
