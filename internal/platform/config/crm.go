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

// crmKeys are the keys the CRM module's wiring reads (listed in Keys).
var crmKeys = []Key{
	{KeyCRMNoticeSender, false, "mailbox of the operator tenant that e-mails CRM sync failure notices (needs Mail.Send scoped to it); empty: none are sent"},
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
