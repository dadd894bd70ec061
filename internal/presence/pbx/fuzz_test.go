package pbx_test

import (
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/presence/pbx"
)

// FuzzParseDelivery: whatever an anonymous caller posts, the parser does not panic, and what it hands on
// is RingCentral's vocabulary or nothing: an all-digit extension id, known states.
func FuzzParseDelivery(f *testing.F) {
	f.Add([]byte(`{"uuid":"u1","event":"/restapi/v1.0/account/1001/extension/101/presence?detailedTelephonyState=true","subscriptionId":"sub-1","ownerId":"1001",` +
		`"body":{"extensionId":"101","sequence":7,"telephonyStatus":"CallConnected","dndStatus":"TakeAllCalls","userStatus":"Available",` +
		`"activeCalls":[{"id":"c1","telephonyStatus":"CallConnected","from":"+4930123456"}]}}`))
	f.Add([]byte(`{"subscriptionId":"s","body":{"extensionId":101,"sequence":1}}`))
	f.Add([]byte(`{"subscriptionId":"s","body":{"extensionId":"1x1","telephonyStatus":"<script>"}}`))
	f.Add([]byte(`[]`))
	known := map[string]bool{"": true, "NoCall": true, "CallConnected": true, "Ringing": true, "OnHold": true, "ParkedCall": true,
		"TakeAllCalls": true, "DoNotAcceptAnyCalls": true, "DoNotAcceptDepartmentCalls": true, "TakeDepartmentCallsOnly": true,
		"Offline": true, "Busy": true, "Available": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, ev, err := pbx.ParseDelivery(body, time.Unix(0, 0))
		if err != nil {
			return
		}
		if d.SubscriptionID == "" || len(d.SubscriptionID) > 128 || len(d.UUID) > 128 {
			t.Errorf("delivery %+v passed", d)
		}
		for _, r := range ev.ExtensionID {
			if r < '0' || r > '9' {
				t.Errorf("extension id %q passed", ev.ExtensionID)
			}
		}
		for _, s := range []string{ev.TelephonyStatus, ev.DNDStatus, ev.UserStatus} {
			if !known[s] {
				t.Errorf("state %q passed", s)
			}
		}
	})
}
