package sandbox

import (
	"net/http"
	"sort"
	"strings"

	"github.com/connecthub/connecthub/internal/crm/salesforce/sftest"
	"github.com/connecthub/connecthub/internal/platform/msgraph/graph/graphtest"
)

// The mailbox ↔ CRM sync: what the customer's Salesforce admin sets up (the connected app and its key,
// the org's users), what people do in Salesforce (Contacts) and in Outlook (their contacts), and what
// either side then holds.

// contactsFolder is the mailbox's default Contacts folder, the one the sync reads and writes.
const contactsFolder = "contacts"

// getSalesforceApp is what the org's admin has after the README's steps 1–4: the connected app's
// consumer key, the private key whose certificate the app holds, and the login host. The handler's token
// requests go to the fake org (CONNECTHUB_SALESFORCE_LOGIN_URL), which stands in for that host.
func (s *Sandbox) getSalesforceApp(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"consumerKey": s.SF.App.ConsumerKey, "privateKey": s.SF.App.PrivateKeyPEM,
		"host": "login.salesforce.com", "loginUrl": s.SF.URL()})
}

// putSalesforceUser adds or replaces an org user. Usernames have an e-mail address's form (Salesforce
// requires it) but need not be a mailbox; Email is what a mailbox is matched by.
func (s *Sandbox) putSalesforceUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Approved bool   `json:"approved"`
		Inactive bool   `json:"inactive"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	username := r.PathValue("username")
	switch {
	case !validEmail(username):
		writeError(w, http.StatusBadRequest, "a Salesforce username has the form of an e-mail address (name@example.com)")
		return
	case in.Email != "" && !validEmail(in.Email):
		writeError(w, http.StatusBadRequest, "email is not an e-mail address")
		return
	}
	s.SF.AddUser(sftest.User{Username: username, Email: in.Email, Approved: in.Approved, Inactive: in.Inactive})
	writeJSON(w, http.StatusOK, map[string]any{"id": s.SF.UserID(username), "username": username, "email": in.Email,
		"approved": in.Approved, "isActive": !in.Inactive})
}

// sfWritable are the Contact fields a person may set in the sandbox (API names), the ones the sync maps
// and OwnerId; the others (Id, Name, dates, IsDeleted) are Salesforce's own.
var sfWritable = map[string]bool{
	"FirstName": true, "LastName": true, "Email": true, "Title": true, "Phone": true, "MobilePhone": true,
	"Department": true, "MailingStreet": true, "MailingCity": true, "MailingState": true, "MailingPostalCode": true,
	"MailingCountry": true, "OwnerId": true, "Description": true,
}

// sfFields reads a Contact body: string fields by API name, ownerUsername naming OwnerId's user. It
// writes a 400 and answers false for anything else.
func (s *Sandbox) sfFields(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var in map[string]any
	if !readJSON(w, r, &in) {
		return nil, false
	}
	out := map[string]any{}
	for k, v := range in {
		str, ok := v.(string)
		switch {
		case k == "ownerUsername":
			id := ""
			if ok {
				id = s.SF.UserID(str)
			}
			if id == "" {
				writeError(w, http.StatusBadRequest, "ownerUsername names no user of the org (add it with PUT /sandbox/salesforce/users/{username})")
				return nil, false
			}
			out["OwnerId"] = id
		case !sfWritable[k]:
			writeError(w, http.StatusBadRequest, "unknown or read-only Contact field "+k+" (fields by API name: FirstName, LastName, Email, Title, Phone, MobilePhone, Department, Mailing…, Description, OwnerId or ownerUsername)")
			return nil, false
		case !ok:
			writeError(w, http.StatusBadRequest, k+" must be a string")
			return nil, false
		default:
			out[k] = str
		}
	}
	// As Salesforce validates a save: LastName is required (REQUIRED_FIELD_MISSING) and Email must be an
	// address (INVALID_EMAIL_ADDRESS).
	if v, ok := out["LastName"]; ok && strings.TrimSpace(v.(string)) == "" {
		writeError(w, http.StatusBadRequest, "LastName must not be empty (Salesforce requires it)")
		return nil, false
	}
	if v, ok := out["Email"].(string); ok && v != "" && !validEmail(v) {
		writeError(w, http.StatusBadRequest, "Email is not an e-mail address")
		return nil, false
	}
	if v, ok := out["OwnerId"].(string); ok && !strings.HasPrefix(v, "005") {
		writeError(w, http.StatusBadRequest, "OwnerId is a User id (005…)")
		return nil, false
	}
	return out, true
}

func (s *Sandbox) postSalesforceContact(w http.ResponseWriter, r *http.Request) {
	fields, ok := s.sfFields(w, r)
	if !ok {
		return
	}
	if _, ok := fields["LastName"]; !ok {
		writeError(w, http.StatusBadRequest, "LastName is required (Salesforce requires it)")
		return
	}
	id := s.SF.PutContact(fields)
	c, _ := s.SF.Contact(id)
	writeJSON(w, http.StatusCreated, c)
}

func (s *Sandbox) patchSalesforceContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.SF.Contact(id); !ok {
		writeError(w, http.StatusNotFound, "no live Contact has this id")
		return
	}
	fields, ok := s.sfFields(w, r)
	if !ok {
		return
	}
	fields["Id"] = id
	s.SF.PutContact(fields)
	c, _ := s.SF.Contact(id)
	writeJSON(w, http.StatusOK, c)
}

// deleteSalesforceContact deletes to the Recycle Bin and answers 204, as Salesforce's DELETE does.
func (s *Sandbox) deleteSalesforceContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.SF.Contact(id); !ok {
		writeError(w, http.StatusNotFound, "no live Contact has this id")
		return
	}
	s.SF.DeleteContact(id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) getSalesforceContacts(w http.ResponseWriter, _ *http.Request) {
	out := s.SF.Contacts()
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
}

// outlookContact is a contact as the control API takes and shows it: Graph's names, addresses as
// plain strings, and (shown only) the extended properties the item carries.
type outlookContact struct {
	ID             string            `json:"id,omitempty"`
	GivenName      string            `json:"givenName,omitempty"`
	Surname        string            `json:"surname,omitempty"`
	DisplayName    string            `json:"displayName,omitempty"`
	EmailAddresses []string          `json:"emailAddresses,omitempty"`
	JobTitle       string            `json:"jobTitle,omitempty"`
	CompanyName    string            `json:"companyName,omitempty"`
	Department     string            `json:"department,omitempty"`
	BusinessPhones []string          `json:"businessPhones,omitempty"`
	MobilePhone    string            `json:"mobilePhone,omitempty"`
	Properties     map[string]string `json:"singleValueExtendedProperties,omitempty"`
}

// validPathID is an id a path segment can carry: Outlook's ids are base64 with "-", "_" and "=".
func validPathID(s string) bool {
	return s != "" && len(s) <= 512 && !strings.ContainsAny(s, " /?#%")
}

// putOutlookContact creates or replaces a contact in the user's Contacts folder, as the user does in
// Outlook: the extended properties it carries stay (Outlook keeps them through an edit). Graph
// notifies the folder's subscriptions, and the sandbox posts them.
func (s *Sandbox) putOutlookContact(w http.ResponseWriter, r *http.Request) {
	var in outlookContact
	if !readJSON(w, r, &in) {
		return
	}
	tenant, user, id := r.PathValue("tenant"), r.PathValue("id"), r.PathValue("contactId")
	switch {
	case !validPathID(id):
		writeError(w, http.StatusBadRequest, "the contact id must be a plain path segment (Outlook's are base64: letters, digits, -, _ and =)")
		return
	case in.ID != "" && in.ID != id:
		writeError(w, http.StatusBadRequest, "id differs from the path's")
		return
	case in.Properties != nil:
		writeError(w, http.StatusBadRequest, "singleValueExtendedProperties are written by apps, not by the user")
		return
	case in.GivenName == "" && in.Surname == "" && in.DisplayName == "" && len(in.EmailAddresses) == 0:
		writeError(w, http.StatusBadRequest, "give at least one of givenName, surname, displayName, emailAddresses")
		return
	}
	for _, e := range in.EmailAddresses {
		if !validEmail(e) {
			writeError(w, http.StatusBadRequest, "emailAddresses holds something that is not an e-mail address")
			return
		}
	}
	if in.DisplayName == "" {
		// Outlook files a contact under its name when no display name is given.
		in.DisplayName = strings.TrimSpace(in.GivenName + " " + in.Surname)
	}
	s.Graph.PutContact(tenant, user, contactsFolder, graphtest.Contact{ID: id, GivenName: in.GivenName, Surname: in.Surname,
		DisplayName: in.DisplayName, Emails: in.EmailAddresses, JobTitle: in.JobTitle, CompanyName: in.CompanyName,
		Department: in.Department, BusinessPhones: in.BusinessPhones, MobilePhone: in.MobilePhone})
	c, _ := s.Graph.Contact(tenant, user, contactsFolder, id)
	writeJSON(w, http.StatusOK, wireContact(c))
}

func (s *Sandbox) deleteOutlookContact(w http.ResponseWriter, r *http.Request) {
	tenant, user, id := r.PathValue("tenant"), r.PathValue("id"), r.PathValue("contactId")
	if _, ok := s.Graph.Contact(tenant, user, contactsFolder, id); !ok {
		writeError(w, http.StatusNotFound, "the user's Contacts folder has no contact with this id")
		return
	}
	s.Graph.DeleteContact(tenant, user, contactsFolder, id, "deleted")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) getOutlookContacts(w http.ResponseWriter, r *http.Request) {
	out := []outlookContact{}
	for _, c := range s.Graph.Contacts(r.PathValue("tenant"), r.PathValue("id"), contactsFolder) {
		out = append(out, wireContact(c))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DisplayName < out[j].DisplayName })
	writeJSON(w, http.StatusOK, out)
}

func wireContact(c graphtest.Contact) outlookContact {
	return outlookContact{ID: c.ID, GivenName: c.GivenName, Surname: c.Surname, DisplayName: c.DisplayName,
		EmailAddresses: c.Emails, JobTitle: c.JobTitle, CompanyName: c.CompanyName, Department: c.Department,
		BusinessPhones: c.BusinessPhones, MobilePhone: c.MobilePhone, Properties: c.Properties}
}
