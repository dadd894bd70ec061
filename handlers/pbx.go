package handlers

import (
	"context"
	"net/http"

	"github.com/connecthub/connecthub/internal/core"
	"github.com/connecthub/connecthub/internal/core/apperr"
	"github.com/connecthub/connecthub/internal/platform/azfunc"
	"github.com/connecthub/connecthub/internal/presence/connector/webhook"
	"github.com/connecthub/connecthub/internal/presence/pbx"
)

// PBXIntake checks a PBX's webhook delivery and queues its event (internal/presence/pbx.Intake): Receive
// RingCentral's, ReceiveSigned the generic webhook connector's. Each returns nil when the event is
// queued or dropped as forged, unknown or of an inactive tenant (200), apperr Invalid when the body is
// not an event (400), anything else when the hand-off failed (503).
type PBXIntake interface {
	Receive(ctx context.Context, tenantID, verificationToken string, body []byte) error
	ReceiveSigned(ctx context.Context, tenantID, signature string, body []byte) error
}

var _ PBXIntake = (*pbx.Intake)(nil)

// pbxWebhook serves RingCentral's webhook. Order (house style): the creation handshake first — a POST
// with a Validation-Token header and no body, to be echoed with 200 within 3 s in an answer of at most
// 1,024 bytes, headers included (creating-webhooks.md) — then the body cap, then the intake. The answer
// carries no body (RingCentral's advice: Content-Type application/json even when empty).
func (a *App) pbxWebhook(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	h := map[string]string{"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
	if r.Method != http.MethodPost {
		return azfunc.HTTPResponse{StatusCode: http.StatusMethodNotAllowed, Headers: h}
	}
	if v := r.Header("Validation-Token"); v != "" && len(r.Body) == 0 {
		tok := pbx.ValidationToken(v)
		if tok == "" {
			return azfunc.HTTPResponse{StatusCode: http.StatusBadRequest, Headers: h}
		}
		h["Validation-Token"] = tok
		return azfunc.HTTPResponse{StatusCode: http.StatusOK, Headers: h}
	}
	if int64(len(r.Body)) > min(a.MaxBodyBytes, pbx.MaxBody) {
		return azfunc.HTTPResponse{StatusCode: http.StatusRequestEntityTooLarge, Headers: h}
	}
	// RingCentral's pages name the header Verification-Token; the older receiving example sends the
	// token as validation-token on deliveries too (next-capabilities.md §2.3): both are accepted.
	token := r.Header("Verification-Token")
	if token == "" {
		token = r.Header("Validation-Token")
	}
	if err := a.PBXWebhook.Receive(ctx, r.Params["tenantId"], token, r.Body); err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return azfunc.HTTPResponse{StatusCode: http.StatusBadRequest, Headers: h}
		}
		azfunc.Logger(ctx).Error("pbx event hand-off failed", "error", core.ClipErr(err))
		return azfunc.HTTPResponse{StatusCode: http.StatusServiceUnavailable, Headers: h}
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Headers: h}
}

// pbxSignedWebhook serves the generic webhook connector's inbound side: the PBX posts presence events
// signed like ConnectHub's own (X-ConnectHub-Signature, HMAC-SHA256 with the connector's secret).
func (a *App) pbxSignedWebhook(ctx context.Context, r *azfunc.HTTPRequest) azfunc.HTTPResponse {
	h := map[string]string{"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
	if r.Method != http.MethodPost {
		return azfunc.HTTPResponse{StatusCode: http.StatusMethodNotAllowed, Headers: h}
	}
	if int64(len(r.Body)) > min(a.MaxBodyBytes, pbx.MaxBody) {
		return azfunc.HTTPResponse{StatusCode: http.StatusRequestEntityTooLarge, Headers: h}
	}
	if err := a.PBXWebhook.ReceiveSigned(ctx, r.Params["tenantId"], r.Header(webhook.SignatureHeader), r.Body); err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return azfunc.HTTPResponse{StatusCode: http.StatusBadRequest, Headers: h}
		}
		azfunc.Logger(ctx).Error("pbx event hand-off failed", "error", core.ClipErr(err))
		return azfunc.HTTPResponse{StatusCode: http.StatusServiceUnavailable, Headers: h}
	}
	return azfunc.HTTPResponse{StatusCode: http.StatusOK, Headers: h}
}
