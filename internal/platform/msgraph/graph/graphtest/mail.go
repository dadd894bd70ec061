package graphtest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// sendMail as Graph serves it (Learn, user-sendmail.md):
//
//   - POST /users/{id | userPrincipalName}/sendMail with {"message": {subject, body{contentType,
//     content}, toRecipients[{emailAddress{address}}]}, "saveToSentItems"} answers 202 Accepted with no
//     body; the message is sent later (delivery is not confirmed by the call);
//   - a message without recipients is 400 ErrorInvalidRecipients; a body that is not JSON is 400;
//   - app-only it needs the application permission Mail.Send (user-sendmail.md, "Permissions"), else 403
//     ErrorAccessDenied.

// SentMail is a message the fake accepted.
type SentMail struct {
	Tenant          string
	From            string
	To              []string
	Subject         string
	ContentType     string
	Body            string
	SaveToSentItems bool
}

// Sent lists the messages sent, in order.
func (g *Graph) Sent() []SentMail {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]SentMail(nil), g.sent...)
}

func (g *Graph) sendMail(who Identity, from string, body []byte) reply {
	if who.AppOnly() && !slices.Contains(who.Roles, "Mail.Send") {
		return graphError(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
	}
	var in struct {
		Message struct {
			Subject string `json:"subject"`
			Body    struct {
				ContentType string `json:"contentType"`
				Content     string `json:"content"`
			} `json:"body"`
			To []struct {
				EmailAddress struct {
					Address string `json:"address"`
				} `json:"emailAddress"`
			} `json:"toRecipients"`
		} `json:"message"`
		SaveToSentItems *bool `json:"saveToSentItems"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return graphError(http.StatusBadRequest, "RequestBodyRead", "Cannot read the request body.")
	}
	m := SentMail{Tenant: who.Tenant, From: from, Subject: in.Message.Subject, ContentType: in.Message.Body.ContentType,
		Body: in.Message.Body.Content, SaveToSentItems: in.SaveToSentItems == nil || *in.SaveToSentItems}
	for _, r := range in.Message.To {
		if a := strings.TrimSpace(r.EmailAddress.Address); a != "" {
			m.To = append(m.To, a)
		}
	}
	if len(m.To) == 0 {
		return graphError(http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid.")
	}
	g.mu.Lock()
	g.sent = append(g.sent, m)
	g.mu.Unlock()
	return reply{status: http.StatusAccepted}
}
