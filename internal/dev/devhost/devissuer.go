package devhost

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// The development token issuer: on `make run` there is no Entra ID, so devhost stands in for its signing
// side. It publishes an OpenID configuration and a key set shaped like Microsoft's common v2.0 ones (the
// key names the templated issuer "https://login.microsoftonline.com/{tenantid}/v2.0", as Microsoft's
// keys do), and signs access tokens shaped like Entra's v2 tokens (tid, oid, azp, roles, wids, idtyp),
// so the handler validates them with the code it uses in Azure. The key lives in memory only: tokens
// die with the devhost that signed them. It exists only in devhost, which never runs in Azure.
//
//	GET  /devissuer/common/v2.0/.well-known/openid-configuration
//	GET  /devissuer/common/discovery/v2.0/keys
//	POST /devissuer/token   (master key) {"tenant","user","roles":[],"app":false,"globalAdmin":false,"minutes":60,"audience":""}
//	GET|POST /devissuer/{tenant}/oauth2/v2.0/authorize, POST …/token: the sign-in (devissuer_oidc.go)
const devIssuerPrefix = "/devissuer/"

// DevIssuerConfigPath is the path of the development issuer's OpenID configuration on devhost.
const DevIssuerConfigPath = devIssuerPrefix + "common/v2.0/.well-known/openid-configuration"

// devTokenClient is the client id the tokens name as azp: the Azure CLI's, as a curl user's token would.
const devTokenClient = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

const maxDevTokenMinutes = 24 * 60

type devIssuer struct {
	key      *rsa.PrivateKey
	kid      string
	audience string // the app's client id (CONNECTHUB_APP_ID)
	master   string
	now      func() time.Time
	codes    devCodes
	// clientCert is the app's client certificate, which client assertions must be signed with (nil: no
	// local secret file, so no sign-in).
	clientCert func() (*x509.Certificate, error)
}

func newDevIssuer(audience, master string) (*devIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("development token issuer: %w", err)
	}
	sum := sha256.Sum256(key.N.Bytes())
	return &devIssuer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), audience: audience, master: master, now: time.Now}, nil
}

// DevTokenRequest asks the development issuer for an access token.
type DevTokenRequest struct {
	Tenant      string   `json:"tenant"`
	User        string   `json:"user"`  // the object id (oid) of the user, or of the app for app-only tokens
	Roles       []string `json:"roles"` // app roles, e.g. ConnectHub.TenantAdmin
	App         bool     `json:"app"`   // an app-only token (client credentials): no scp, idtyp app
	GlobalAdmin bool     `json:"globalAdmin"`
	Minutes     int      `json:"minutes"`  // lifetime, default 60
	Audience    string   `json:"audience"` // default: the app's client id
}

func (d *devIssuer) serve(w http.ResponseWriter, r *http.Request, base string) {
	path := strings.TrimPrefix(r.URL.Path, devIssuerPrefix)
	switch {
	case r.Method == http.MethodGet && path == strings.TrimPrefix(DevIssuerConfigPath, devIssuerPrefix):
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                "https://login.microsoftonline.com/{tenantid}/v2.0",
			"jwks_uri":                              base + devIssuerPrefix + "common/discovery/v2.0/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case r.Method == http.MethodGet && path == "common/discovery/v2.0/keys":
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "use": "sig", "kid": d.kid, "x5t": d.kid,
			"n":      base64.RawURLEncoding.EncodeToString(d.key.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(d.key.E)).Bytes()),
			"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
		}}})
	case r.Method == http.MethodPost && path == "token":
		if !keyMatches(presentedKey(r), d.master) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var req DevTokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
			http.Error(w, "body must be a JSON token request", http.StatusBadRequest)
			return
		}
		tok, err := d.mint(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer"})
	default:
		// {tenant}/oauth2/v2.0/authorize and …/token, tenant a GUID, "organizations" or "common".
		tenant, rest, _ := strings.Cut(path, "/")
		switch {
		case rest == "oauth2/v2.0/authorize" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
			d.authorize(w, r, tenant)
		case rest == "oauth2/v2.0/token" && r.Method == http.MethodPost:
			d.redeem(w, r, tenant)
		default:
			http.NotFound(w, r)
		}
	}
}

func (d *devIssuer) mint(req DevTokenRequest) (string, error) {
	if _, err := uuid.Parse(req.Tenant); err != nil {
		return "", errors.New("tenant must be a GUID")
	}
	if _, err := uuid.Parse(req.User); err != nil {
		return "", errors.New("user must be an object id (GUID)")
	}
	if req.Minutes == 0 {
		req.Minutes = 60
	}
	if req.Minutes < 1 || req.Minutes > maxDevTokenMinutes {
		return "", fmt.Errorf("minutes must be 1..%d", maxDevTokenMinutes)
	}
	if req.Audience == "" {
		req.Audience = d.audience
	}
	now := d.now()
	tenant := strings.ToLower(req.Tenant)
	c := jwt.MapClaims{
		"aud": req.Audience, "iss": "https://login.microsoftonline.com/" + tenant + "/v2.0", "tid": tenant,
		"oid": strings.ToLower(req.User), "sub": strings.ToLower(req.User), "azp": devTokenClient, "ver": "2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Duration(req.Minutes) * time.Minute).Unix(),
	}
	if req.App {
		c["idtyp"], c["azpacr"] = "app", "2"
	} else {
		c["idtyp"], c["scp"], c["azpacr"] = "user", "user_impersonation", "0"
		if req.GlobalAdmin {
			c["wids"] = []string{"62e90394-69f5-4237-9190-012177145e10"}
		}
	}
	if len(req.Roles) > 0 {
		c["roles"] = req.Roles
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"], t.Header["x5t"] = d.kid, d.kid
	return t.SignedString(d.key)
}

// DevIssuer is the development token issuer alone, as an http.Handler for the paths under /devissuer/
// (tests of the tools that use it; devhost serves it on its own port).
func DevIssuer(appID, masterKey string) (http.Handler, error) {
	d, err := newDevIssuer(appID, masterKey)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.serve(w, r, "http://"+r.Host) }), nil
}
