package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
)

// presencePage: the sync's status (service users, subscriptions), the connect button for a service
// user, the PBX connector with its test, the extension each licensed user is matched to with the
// admin's overrides, and the Teams → PBX state mapping.
func (p *Portal) presencePage(ctx context.Context, req *request, v *view, tenant core.TenantID) azfunc.HTTPResponse {
	v.Title = "Presence"
	t := map[string]string{"tenantId": string(tenant)}
	if req.Method == http.MethodPost {
		p.presenceAction(ctx, req, v, tenant)
	}
	var conn map[string]any
	if status, msg, _ := p.call(ctx, req, "GetConnector", t, nil, nil, &conn); status >= 400 {
		return p.refused(req, v, status, msg)
	}
	v.Data["Connector"] = conn
	var st map[string]any
	if status, _, _ := p.call(ctx, req, "GetPresenceStatus", t, nil, nil, &st); status < 400 {
		v.Data["Status"] = st
	}
	var ext map[string]any
	if status, _, _ := p.call(ctx, req, "ListExtensions", t, url.Values{"pageSize": {"100"}}, nil, &ext); status < 400 {
		v.Data["Extensions"] = ext
	}
	var mapping map[string]any
	if status, _, _ := p.call(ctx, req, "GetPresenceMapping", t, nil, nil, &mapping); status < 400 {
		v.Data["Mapping"] = mapping
		v.Data["MappingText"] = rulesText(mapping["overrides"])
	}
	v.Data["CanWrite"] = p.cfg.Access.Allowed(ctx, req.who, PermConnectorWrite, tenant)
	v.Data["CanConnect"] = p.cfg.Access.Allowed(ctx, req.who, PermServiceUsersWrite, tenant)
	return p.render(req, statusOf(v), "presence", v)
}

func (p *Portal) presenceAction(ctx context.Context, req *request, v *view, tenant core.TenantID) {
	t := map[string]string{"tenantId": string(tenant)}
	f := req.form
	switch f.Get("action") {
	case "set":
		in := map[string]any{"kind": f.Get("kind")}
		for _, k := range []string{"clientId", "clientSecret", "jwt", "url", "secret", "direction", "callPresence"} {
			if s := strings.TrimSpace(f.Get(k)); s != "" {
				in[k] = s
			}
		}
		p.act(ctx, req, v, "SetConnector", t, in, "Connector saved. Test it to see that the PBX accepts the credential.")
	case "test":
		p.testConnection(ctx, req, v, "TestConnector", t, "The PBX accepted the credential.")
	case "delete":
		p.act(ctx, req, v, "DeleteConnector", t, nil, "Connector removed; presence is no longer pushed to the PBX.")
	case "connect":
		var link map[string]any
		status, msg, _ := p.call(ctx, req, "ConnectServiceUser", t, nil, nil, &link)
		v.Notice, v.Problem = outcome(status, msg, "Open the link below and sign in with the service account (valid 15 minutes).")
		v.Data["ConnectLink"] = link["url"]
	case "extension", "unextension":
		user := strings.ToLower(strings.TrimSpace(f.Get("userId")))
		params := map[string]string{"tenantId": string(tenant), "userId": user}
		if f.Get("action") == "unextension" {
			p.act(ctx, req, v, "DeleteUserExtension", params, nil, "Override removed: the user is matched by e-mail or phone again.")
			return
		}
		p.act(ctx, req, v, "SetUserExtension", params, map[string]string{"extensionId": strings.TrimSpace(f.Get("extensionId"))}, "Extension override saved.")
	case "mapping":
		rules, err := parseRules(f.Get("overrides"))
		if err != "" {
			v.Problem = err
			return
		}
		p.act(ctx, req, v, "SetPresenceMapping", t, map[string]any{"overrides": rules}, "State mapping saved.")
	}
}

// rulesText shows mapping rules as the form takes them: "Away=Available" per line.
func rulesText(v any) string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + str(m[k]) + "\n")
	}
	return b.String()
}

// parseRules reads "Teams state=PBX state" lines (or ";"-separated); the function validates the states.
func parseRules(text string) (map[string]string, string) {
	rules := map[string]string{}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ';' }) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(val) == "" {
			return nil, "Each line is a Teams state, \"=\", and a PBX state, e.g. Away=Available or */InAMeeting=DND."
		}
		rules[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return rules, ""
}
