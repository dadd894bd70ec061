package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// roomsPage: the Room Finder's rooms and room lists with when they were last read from Places, which
// lists are served, the add-in's origins and the booking window.
func (p *Portal) roomsPage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "Rooms"
	t := map[string]string{"tenantId": string(tenant)}
	if req.Method == http.MethodPost {
		f := req.form
		switch f.Get("action") {
		case "lists":
			lists := []string{}
			for _, l := range f["roomList"] {
				if l = strings.TrimSpace(l); l != "" {
					lists = append(lists, l)
				}
			}
			p.act(ctx, req, v, "SetRoomLists", t, map[string]any{"roomLists": lists}, "Room lists saved: the add-in serves the rooms of the chosen lists (all rooms when none is chosen).")
		case "settings":
			body := map[string]any{"addInOrigins": fields(f.Get("addInOrigins"))}
			if d := strings.TrimSpace(f.Get("bookingWindowDays")); d != "" {
				n, err := strconv.Atoi(d)
				if err != nil {
					v.Problem = "The booking window is a number of days."
					break
				}
				body["bookingWindowDays"] = n
			}
			p.act(ctx, req, v, "SetRoomSettings", t, body, "Room Finder settings saved.")
		case "refresh":
			p.act(ctx, req, v, "RefreshRooms", t, nil, "Rooms and room lists read from Places now.")
		case "resync":
			room := strings.TrimSpace(f.Get("room"))
			var res struct {
				Bookings int `json:"bookings"`
			}
			status, msg, _ := p.call(ctx, req, "ResyncRoom", map[string]string{"tenantId": string(tenant), "roomEmail": room}, nil, nil, &res)
			v.Notice, v.Problem = outcome(status, msg, room+" read again from its calendar: "+strconv.Itoa(res.Bookings)+" bookings cached.")
		}
	}
	var dir map[string]any
	if status, msg, _ := p.call(ctx, req, "ListRooms", t, nil, nil, &dir); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	v.Data["Rooms"] = dir
	origins, _ := dir["addInOrigins"].([]any)
	var os []string
	for _, o := range origins {
		os = append(os, str(o))
	}
	v.Data["Origins"] = strings.Join(os, "\n")
	v.Data["CanWrite"] = p.cfg.Access.Allowed(ctx, req.who, PermRoomsWrite, tenant)
	return p.render(req, statusOf(v), "rooms", v)
}

// crmPage: the tenant's Salesforce connection (never its key), its test with what to change when it
// fails, and setting or removing it.
func (p *Portal) crmPage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "CRM"
	t := map[string]string{"tenantId": string(tenant)}
	if req.Method == http.MethodPost {
		f := req.form
		switch f.Get("action") {
		case "set":
			in := map[string]any{"consumerKey": strings.TrimSpace(f.Get("consumerKey")), "username": strings.TrimSpace(f.Get("username")),
				"host": f.Get("host"), "privateKey": f.Get("privateKey")}
			p.act(ctx, req, v, "SetCRMConnection", t, in, "Connection saved. Test it to see that Salesforce accepts it.")
		case "test":
			p.testConnection(ctx, req, v, "TestCRMConnection", t, "Salesforce accepted the connection.")
		case "map", "unmap":
			user := map[string]string{"tenantId": string(tenant), "userId": strings.ToLower(strings.TrimSpace(f.Get("userId")))}
			if f.Get("action") == "unmap" {
				p.act(ctx, req, v, "DeleteCRMUserMapping", user, nil, "The mailbox no longer syncs.")
				break
			}
			in := map[string]any{"contacts": f.Get("contacts"), "events": f.Get("events")}
			if sf := strings.TrimSpace(f.Get("salesforceUserId")); sf != "" {
				in["salesforceUserId"] = sf
			}
			p.act(ctx, req, v, "SetCRMUserMapping", user, in, "Mailbox mapped; it syncs at the next run (every 15 minutes), or now with Sync now.")
		case "delete":
			p.act(ctx, req, v, "DeleteCRMConnection", t, nil, "Connection removed, with its key.")
		case "sync":
			user := map[string]string{"tenantId": string(tenant), "userId": strings.ToLower(strings.TrimSpace(f.Get("userId")))}
			var res struct {
				Skipped                                        string
				Created, Updated, Deleted, Failed              int
				MailboxCreated, MailboxUpdated, MailboxDeleted int
			}
			status, msg, _ := p.call(ctx, req, "SyncCRMUser", user, nil, nil, &res)
			done := fmt.Sprintf("Synced: to Salesforce %d created, %d updated, %d deleted; to the mailbox %d created, %d updated, %d deleted; %d refused.",
				res.Created, res.Updated, res.Deleted, res.MailboxCreated, res.MailboxUpdated, res.MailboxDeleted, res.Failed)
			if res.Skipped != "" {
				done = "Nothing to sync: " + res.Skipped + "."
			}
			v.Notice, v.Problem = outcome(status, msg, done)
		}
	}
	var conn map[string]any
	if status, msg, _ := p.call(ctx, req, "GetCRMConnection", t, nil, nil, &conn); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	v.Data["Connection"] = conn
	var health, mappings map[string]any
	if status, _, _ := p.call(ctx, req, "GetCRMSyncHealth", t, nil, nil, &health); status < 400 {
		v.Data["Health"] = health
	}
	if status, _, _ := p.call(ctx, req, "ListCRMUserMappings", t, url.Values{"pageSize": {"100"}}, nil, &mappings); status < 400 {
		v.Data["Mappings"] = mappings["users"]
	}
	v.Data["CanWrite"] = p.cfg.Access.Allowed(ctx, req.who, PermConnectorWrite, tenant)
	return p.render(req, statusOf(v), "crm", v)
}

// testConnection runs a connection test function and shows its outcome: what failed and its code.
func (p *Portal) testConnection(ctx context.Context, req *request, v *view, function string, t map[string]string, passed string) {
	var res map[string]any
	status, msg, _ := p.call(ctx, req, function, t, nil, nil, &res)
	switch {
	case status >= 400:
		v.Problem = msg
	case res["ok"] == true:
		v.Notice = passed
	default:
		v.Problem = "The test failed: " + str(res["message"]) + " (" + str(res["code"]) + ")"
	}
}

// fields splits a textarea of one value per line (or comma-separated).
func fields(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}
