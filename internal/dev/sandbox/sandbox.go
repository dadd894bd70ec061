package sandbox

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connecthub/connecthub/internal/app/appreg"
	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/validationtoken/idptest"
	"github.com/connecthub/connecthub/internal/presence/connector/ringcentral/rctest"
)

// maxBody caps a control request; the largest is a certificate PEM.
const maxBody = 64 << 10

// Sandbox holds the running fakes.
type Sandbox struct {
	Auth  *graphtest.Authority
	Graph *graphtest.Graph
	RC    *rctest.Server
	IDP   *idptest.Platform
	// SF is the customer's Salesforce org (production, login.salesforce.com) with its connected app.
	SF *sftest.Server
}

// AppRoles are the application permissions an admin's consent grants the app in the sandbox: every one
// the app registration asks for (consent to .default grants them all; appreg is that list). Mail.Send is
// not among them: the CRM's failure notice is sent from ConnectHub's own tenant, where the operator
// grants it alone, and the fake grants roles to every tenant.
var AppRoles = appreg.ApplicationPermissions(appreg.Capabilities)

// Start starts the fakes; t's cleanups stop them. appID is the app registration's id
// (CONNECTHUB_APP_ID): Graph's validation tokens are minted for it, as Graph mints them for the app.
// Graph posts by itself, as the real one does, the presence notifications that apps' sessions cause and
// the contact notifications of every change to a subscribed Contacts folder (the app's own writes too).
func Start(t testing.TB, appID string) *Sandbox {
	auth := graphtest.NewAuthority(t)
	auth.AppRoles = append([]string(nil), AppRoles...)
	g := graphtest.NewGraph(t, auth)
	idp := idptest.New(t)
	g.Tokens = func(tenant string) string { return idp.Mint(t, idptest.Claims(appID, tenant, time.Now())) }
	s := &Sandbox{Auth: auth, Graph: g, RC: rctest.New(t), IDP: idp, SF: sftest.New(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); echoes(ctx, g, s.send) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// send posts one of Graph's deliveries, waiting at most 15 s for the receiver.
func (s *Sandbox) send(ctx context.Context, d graphtest.Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return s.Graph.Send(ctx, d)
}

// Settings returns base with the values that point the handler at the fakes. caFile holds the
// authority's TLS certificate (CertificatePEM), which the handler trusts through SSL_CERT_FILE; public is
// the app's public URL (devhost's, http://127.0.0.1:7071 under make sandbox). The redirect URIs are on
// the same host as public so that a browser's (or curl's) cookie from ConnectServiceUser comes back to
// AuthCallback.
func (s *Sandbox) Settings(base map[string]string, caFile, public string) map[string]string {
	out := make(map[string]string, len(base)+8)
	for k, v := range base {
		out[k] = v
	}
	out["GRAPH_BASE_URL"] = s.Graph.URL()
	out["CONNECTHUB_AUTHORITY_HOST"] = s.Auth.Host()
	out["SSL_CERT_FILE"] = caFile
	out["CONNECTHUB_OPENID_CONFIGURATION_URL"] = s.IDP.ConfigURL()
	out["CONNECTHUB_RINGCENTRAL_BASE_URL"] = s.RC.URL()
	out["CONNECTHUB_SALESFORCE_LOGIN_URL"] = s.SF.URL()
	out["CONNECTHUB_PUBLIC_BASE_URL"] = public
	out["CONNECTHUB_ADMIN_CONSENT_REDIRECT_URI"] = public + "/api/onboarding/consent"
	out["CONNECTHUB_OAUTH_REDIRECT_URI"] = public + "/api/auth/callback"
	return out
}

// Routes lists the control API for the start-up banner.
var Routes = []struct{ Method, Path, What string }{
	{"PUT", "/sandbox/app-certificate", "upload the app's client certificate (PEM) to the app registration"},
	{"PUT", "/sandbox/tenants/{tenant}/users/{id}", "a user in the tenant's directory (JSON: displayName, mail, businessPhones, accountEnabled, ...)"},
	{"PUT", "/sandbox/tenants/{tenant}/signin", "who signs in at the next authorize page ({\"userId\",\"upn\"})"},
	{"POST", "/sandbox/ringcentral/extensions", "add a RingCentral extension ({\"id\",\"number\",\"email\",\"businessPhone\"})"},
	{"GET", "/sandbox/ringcentral/credentials", "the RingCentral app's client id, secret and JWT (the developer console)"},
	{"GET", "/sandbox/ringcentral/pushes", "the presence updates RingCentral received"},
	{"POST", "/sandbox/tenants/{tenant}/users/{id}/presence", "change a Teams presence ({\"availability\",\"activity\"}); Graph notifies the webhook"},
	{"GET", "/sandbox/graph/subscriptions", "the subscriptions Graph holds"},
	{"GET", "/sandbox/tenants/{tenant}/users/{id}/presence", "a user's Teams presence and the apps' live sessions"},
	{"GET", "/sandbox/graph/presence-writes", "the setPresence/clearPresence calls Graph accepted (?tenant=&user=)"},
	{"POST", "/sandbox/ringcentral/extensions/{id}/presence", "a call starts/ends or DND changes ({\"telephonyStatus\",\"dndStatus\"}); RingCentral notifies the webhook"},
	{"GET", "/sandbox/ringcentral/subscriptions", "RingCentral's webhook subscriptions"},
	{"PUT", "/sandbox/tenants/{tenant}/rooms/{email}", "a room in Places ({\"displayName\",\"capacity\",\"building\",\"floorNumber\",...})"},
	{"DELETE", "/sandbox/tenants/{tenant}/rooms/{email}", "remove a room from Places"},
	{"PUT", "/sandbox/tenants/{tenant}/roomlists/{email}", "a room list ({\"displayName\",\"rooms\":[e-mails]})"},
	{"PUT", "/sandbox/tenants/{tenant}/rooms/{email}/events/{id}", "book or change ({\"start\",\"end\",\"subject\",\"showAs\",\"isCancelled\",...}); Graph notifies, unless ?notify=false (a lost notification)"},
	{"DELETE", "/sandbox/tenants/{tenant}/rooms/{email}/events/{id}", "delete a booking; Graph notifies"},
	{"GET", "/sandbox/salesforce/app", "the Salesforce connected app: consumer key, private key (PEM) and host to give ConnectHub"},
	{"PUT", "/sandbox/salesforce/users/{username}", "an org user ({\"email\",\"approved\",\"inactive\"}); the integration user must be approved"},
	{"POST", "/sandbox/salesforce/contacts", "a Contact made in Salesforce (fields by API name: LastName, FirstName, Email, OwnerId or ownerUsername, ...)"},
	{"PATCH", "/sandbox/salesforce/contacts/{id}", "change a Contact's fields"},
	{"DELETE", "/sandbox/salesforce/contacts/{id}", "delete a Contact (to the Recycle Bin)"},
	{"GET", "/sandbox/salesforce/contacts", "the org's live Contacts"},
	{"PUT", "/sandbox/tenants/{tenant}/users/{id}/contacts/{contactId}", "an Outlook contact in the user's Contacts folder ({\"givenName\",\"surname\",\"emailAddresses\":[...],...}); Graph notifies"},
	{"DELETE", "/sandbox/tenants/{tenant}/users/{id}/contacts/{contactId}", "delete an Outlook contact; Graph notifies"},
	{"GET", "/sandbox/tenants/{tenant}/users/{id}/contacts", "the user's Outlook contacts, with their extended properties"},
}

// Handler is the control API. It is meant for loopback only: it changes who may sign in and which
// certificate the authority trusts.
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /sandbox/app-certificate", s.putAppCertificate)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/users/{id}", s.putUser)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/signin", s.putSignIn)
	mux.HandleFunc("POST /sandbox/ringcentral/extensions", s.postExtension)
	mux.HandleFunc("GET /sandbox/ringcentral/credentials", s.getCredentials)
	mux.HandleFunc("GET /sandbox/ringcentral/pushes", s.getPushes)
	mux.HandleFunc("POST /sandbox/tenants/{tenant}/users/{id}/presence", s.postPresence)
	mux.HandleFunc("GET /sandbox/graph/subscriptions", s.getSubscriptions)
	mux.HandleFunc("GET /sandbox/tenants/{tenant}/users/{id}/presence", s.getPresence)
	mux.HandleFunc("GET /sandbox/graph/presence-writes", s.getPresenceWrites)
	mux.HandleFunc("POST /sandbox/ringcentral/extensions/{id}/presence", s.postExtensionPresence)
	mux.HandleFunc("GET /sandbox/ringcentral/subscriptions", s.getRCSubscriptions)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/rooms/{email}", s.putRoom)
	mux.HandleFunc("DELETE /sandbox/tenants/{tenant}/rooms/{email}", s.deleteRoom)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/roomlists/{email}", s.putRoomList)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/rooms/{email}/events/{id}", s.putEvent)
	mux.HandleFunc("DELETE /sandbox/tenants/{tenant}/rooms/{email}/events/{id}", s.deleteEvent)
	mux.HandleFunc("GET /sandbox/salesforce/app", s.getSalesforceApp)
	mux.HandleFunc("PUT /sandbox/salesforce/users/{username}", s.putSalesforceUser)
	mux.HandleFunc("POST /sandbox/salesforce/contacts", s.postSalesforceContact)
	mux.HandleFunc("PATCH /sandbox/salesforce/contacts/{id}", s.patchSalesforceContact)
	mux.HandleFunc("DELETE /sandbox/salesforce/contacts/{id}", s.deleteSalesforceContact)
	mux.HandleFunc("GET /sandbox/salesforce/contacts", s.getSalesforceContacts)
	mux.HandleFunc("PUT /sandbox/tenants/{tenant}/users/{id}/contacts/{contactId}", s.putOutlookContact)
	mux.HandleFunc("DELETE /sandbox/tenants/{tenant}/users/{id}/contacts/{contactId}", s.deleteOutlookContact)
	mux.HandleFunc("GET /sandbox/tenants/{tenant}/users/{id}/contacts", s.getOutlookContacts)
	return mux
}

func (s *Sandbox) putAppCertificate(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	// The app registration takes the public certificate only; a private key sent here would be a
	// mistake worth refusing rather than quietly dropping.
	if strings.Contains(string(raw), "PRIVATE KEY") {
		writeError(w, http.StatusBadRequest, "send the certificate only, never its private key (connecthub certs show --pem)")
		return
	}
	var cert *x509.Certificate
	for rest := raw; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				writeError(w, http.StatusBadRequest, "certificate: "+err.Error())
				return
			}
		}
	}
	if cert == nil {
		writeError(w, http.StatusBadRequest, "no PEM CERTIFICATE block in the body")
		return
	}
	s.Auth.SetAppCertificate(cert)
	// The portal shows an uploaded certificate by its SHA-1 thumbprint, upper-case hex.
	sum := sha1.Sum(cert.Raw)
	writeJSON(w, http.StatusOK, map[string]any{"subject": cert.Subject.String(),
		"thumbprint": strings.ToUpper(hex.EncodeToString(sum[:])), "notAfter": cert.NotAfter.UTC()})
}

func (s *Sandbox) putUser(w http.ResponseWriter, r *http.Request) {
	var u graphtest.User
	if !readJSON(w, r, &u) {
		return
	}
	u.ID = r.PathValue("id")
	if u.BusinessPhones == nil {
		u.BusinessPhones = []string{} // Graph answers [] for none
	}
	s.Graph.PutUser(r.PathValue("tenant"), u)
	writeJSON(w, http.StatusOK, u)
}

func (s *Sandbox) putSignIn(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID string `json:"userId"`
		UPN    string `json:"upn"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if in.UserID == "" || in.UPN == "" {
		writeError(w, http.StatusBadRequest, "userId and upn are required")
		return
	}
	s.Auth.SignIn(r.PathValue("tenant"), in.UserID, in.UPN)
	writeJSON(w, http.StatusOK, map[string]string{"tenant": r.PathValue("tenant"), "userId": in.UserID, "upn": in.UPN})
}

type extension struct {
	ID            int64  `json:"id"`
	Number        string `json:"number"`
	Email         string `json:"email,omitempty"`
	BusinessPhone string `json:"businessPhone,omitempty"`
	MobilePhone   string `json:"mobilePhone,omitempty"`
	Status        string `json:"status,omitempty"`
}

func (s *Sandbox) postExtension(w http.ResponseWriter, r *http.Request) {
	var e extension
	if !readJSON(w, r, &e) {
		return
	}
	if e.ID <= 0 || e.Number == "" {
		writeError(w, http.StatusBadRequest, "id (a positive number) and number are required")
		return
	}
	s.RC.AddExtension(rctest.Extension{ID: e.ID, Number: e.Number, Email: e.Email, BusinessPhone: e.BusinessPhone,
		MobilePhone: e.MobilePhone, Status: e.Status})
	writeJSON(w, http.StatusCreated, e)
}

func (s *Sandbox) getCredentials(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"clientId": s.RC.ClientID, "clientSecret": s.RC.ClientSecret,
		"jwt": s.RC.JWT, "server": s.RC.URL()})
}

func (s *Sandbox) getPushes(w http.ResponseWriter, _ *http.Request) {
	type push struct {
		ExtensionID string    `json:"extensionId"`
		UserStatus  string    `json:"userStatus"`
		DNDStatus   string    `json:"dndStatus"`
		At          time.Time `json:"at"`
	}
	out := []push{}
	for _, p := range s.RC.Pushes() {
		out = append(out, push{p.ExtensionID, p.UserStatus, p.DNDStatus, p.At.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) postPresence(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Availability string `json:"availability"`
		Activity     string `json:"activity"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if in.Availability == "" || in.Activity == "" {
		writeError(w, http.StatusBadRequest, "availability and activity are required")
		return
	}
	ds, err := s.Graph.SetPresence(r.PathValue("tenant"), r.PathValue("id"), in.Availability, in.Activity)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "notification: "+err.Error())
		return
	}
	// One delivery per subscription that covers the user; none when nothing subscribes to them.
	type delivery struct {
		URL    string `json:"url"`
		Status int    `json:"status,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	out := []delivery{}
	for _, d := range ds {
		code, err := s.send(r.Context(), d)
		dl := delivery{URL: d.URL, Status: code}
		if err != nil {
			dl.Error = err.Error()
		}
		out = append(out, dl)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (s *Sandbox) getSubscriptions(w http.ResponseWriter, _ *http.Request) {
	type sub struct {
		ID              string    `json:"id"`
		Tenant          string    `json:"tenant"`
		Resource        string    `json:"resource"`
		CreatorID       string    `json:"creatorId,omitempty"`
		NotificationURL string    `json:"notificationUrl"`
		ExpiresAt       time.Time `json:"expirationDateTime"`
	}
	out := []sub{}
	for _, s := range s.Graph.Subscriptions() {
		out = append(out, sub{s.ID, s.Tenant, s.Resource, s.CreatorID, s.NotificationURL, s.ExpiresAt.UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		} else {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
		}
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
