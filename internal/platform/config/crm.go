package config

import (
	"fmt"
	"strings"
)

// KeyCRMNoticeSender is the mailbox (its address, in ConnectHub's own tenant, CONNECTHUB_OPERATOR_TENANT_ID)
// that e-mails a user and their admin when the user's CRM sync has failed ten runs in a row. The app
// needs Mail.Send there, scoped to this mailbox by an application access policy. Empty: no notices
// are sent (GetCRMSyncHealth still shows the failures).
const KeyCRMNoticeSender = "CONNECTHUB_CRM_NOTICE_SENDER"

// KeySalesforceLoginURL sends every Salesforce token request (the JWT bearer flow) to this URL instead of
// https://login.salesforce.com or https://test.salesforce.com, for a local fake org (the tests, a
// sandbox). The assertion's audience still names the real host. Local mode only: in Azure a signed
// assertion must never go anywhere but Salesforce.
const KeySalesforceLoginURL = "CONNECTHUB_SALESFORCE_LOGIN_URL"

// crmKeys are the keys the CRM module's wiring reads (listed in Keys).
var crmKeys = []Key{
	{KeyCRMNoticeSender, false, "mailbox of the operator tenant that e-mails CRM sync failure notices (needs Mail.Send scoped to it); empty: none are sent"},
	{KeySalesforceLoginURL, false, "local only: where Salesforce token requests go instead of the login or sandbox host (a fake org)"},
}

// checkSalesforceLoginURL accepts "" anywhere and an http(s) URL in local mode only.
func checkSalesforceLoginURL(env Environment, v string) error {
	if v == "" {
		return nil
	}
	if env != Local {
		return fmt.Errorf("%s is for local runs only: in Azure token requests go to Salesforce itself", KeySalesforceLoginURL)
	}
	return checkURL(KeySalesforceLoginURL, v)
}

// checkNoticeSender accepts "" or one mailbox address (no display name, no list).
func checkNoticeSender(s string) error {
	if s == "" {
		return nil
	}
	at := strings.IndexByte(s, '@')
	if len(s) > 254 || at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 || strings.ContainsAny(s, " \t<>,;\"") {
		return fmt.Errorf("%s: want one mailbox address, e.g. crm-notices@connecthub.example, got %q", KeyCRMNoticeSender, s)
	}
	return nil
}
