package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// Contact is what the CRM sync reads of an Outlook contact: the fields it maps to a Salesforce Contact,
// and the id, changeKey and lastModifiedDateTime it keeps. Everything but those three is personal and
// lives only in memory during a sync.
type Contact struct {
	ID            string
	ChangeKey     string // changes on every edit (GH v1.0/resources/contact.md)
	LastModified  time.Time
	GivenName     string
	Surname       string
	DisplayName   string
	Emails        []string // emailAddresses[].address, in order
	JobTitle      string
	CompanyName   string
	Department    string
	BusinessPhone string // businessPhones[0]
	MobilePhone   string
	Business      Address
	// Extended holds the single-value extended properties asked for (FindContacts), by id.
	Extended map[string]string
}

// Address is a physicalAddress.
type Address struct {
	Street, City, State, PostalCode, CountryOrRegion string
}

// ContactChange is one item of a contacts delta page: a contact created or changed, or one removed
// ("@removed": reason "deleted", or "changed" when it left the folder; only ID is set then).
type ContactChange struct {
	Contact
	Removed       bool
	RemovedReason string
}

// contactSelect is every property Contact holds: no notes, birthday, home address or photo ever leave
// the mailbox (contacts delta supports $select; next-capabilities §3.1).
var contactSelect = []string{"id", "changeKey", "lastModifiedDateTime", "givenName", "surname", "displayName",
	"emailAddresses", "jobTitle", "companyName", "department", "businessPhones", "mobilePhone", "businessAddress"}

// DefaultContactFolder is the well-known name of a mailbox's default Contacts folder in the
// contactFolders path (/users/{id}/contactFolders/contacts; the folder's wellKnownName is "contacts").
const DefaultContactFolder = "contacts"

func validSegment(s string) bool { return s != "" && !strings.ContainsAny(s, "/?#") }

// ContactsDelta runs a contacts delta query on one folder of mailbox (object id or address) app-only
// (Contacts.Read) and calls fn for every change, following @odata.nextLink. deltaLink "" starts a full
// enumeration; otherwise it resumes from a link a previous call returned. It returns the new
// @odata.deltaLink. ErrDeltaExpired means start again with "". Replays happen: fn must be idempotent.
func (c *Client) ContactsDelta(ctx context.Context, mailbox, folder, deltaLink string, fn func(ContactChange) error) (string, error) {
	if !validSegment(mailbox) || !validSegment(folder) {
		return "", errors.New("contacts delta: invalid mailbox or folder")
	}
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().Delta()
	b := root
	var cfg *users.ItemContactFoldersItemContactsDeltaRequestBuilderGetRequestConfiguration
	if deltaLink != "" {
		b = root.WithUrl(deltaLink)
	} else {
		cfg = &users.ItemContactFoldersItemContactsDeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemContactFoldersItemContactsDeltaRequestBuilderGetQueryParameters{Select: contactSelect}}
	}
	for {
		resp, err := b.GetAsDeltaGetResponse(ctx, cfg)
		if err != nil {
			return "", wrap("contacts delta", err)
		}
		if resp == nil {
			return "", &Error{Op: "contacts delta", Status: 200, Code: "emptyBody"}
		}
		for _, x := range resp.GetValue() {
			ch := ContactChange{Contact: toContact(x)}
			if removed, ok := x.GetAdditionalData()["@removed"]; ok {
				ch.Removed, ch.RemovedReason = true, removedReason(removed)
				ch.Contact = Contact{ID: ch.ID}
			}
			if err := fn(ch); err != nil {
				return "", fmt.Errorf("contacts delta: %w", err)
			}
		}
		if next := str(resp.GetOdataNextLink()); next != "" {
			b, cfg = root.WithUrl(next), nil
			continue
		}
		link := str(resp.GetOdataDeltaLink())
		if link == "" {
			return "", &Error{Op: "contacts delta", Status: 200, Code: "noDeltaLink"}
		}
		return link, nil
	}
}

// GetContact reads one contact of a folder (ErrNotFound when it is gone), with the same $select.
func (c *Client) GetContact(ctx context.Context, mailbox, folder, id string) (Contact, error) {
	if !validSegment(mailbox) || !validSegment(folder) || !validSegment(id) {
		return Contact{}, errors.New("get contact: invalid mailbox, folder or id")
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().ByContactId(id).Get(ctx, &users.ItemContactFoldersItemContactsContactItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemContactFoldersItemContactsContactItemRequestBuilderGetQueryParameters{Select: contactSelect}})
	if err != nil {
		return Contact{}, wrap("get contact", err)
	}
	if x == nil {
		return Contact{}, &Error{Op: "get contact", Status: 200, Code: "emptyBody"}
	}
	return toContact(x), nil
}

// ContactWrite is what the CRM sync writes to an Outlook contact: every field is set (an empty one is
// cleared), DisplayName only when it is not empty, and each of Properties as a single-value extended
// property ("String {guid} Name X" → value), which stays with the item.
type ContactWrite struct {
	GivenName, Surname, DisplayName string
	Emails                          []string
	JobTitle, Department            string
	BusinessPhone, MobilePhone      string
	Business                        Address
	Properties                      map[string]string
}

func (w ContactWrite) model() models.Contactable {
	x := models.NewContact()
	s := func(v string) *string { return &v }
	x.SetGivenName(s(w.GivenName))
	x.SetSurname(s(w.Surname))
	if w.DisplayName != "" {
		x.SetDisplayName(s(w.DisplayName))
	}
	x.SetJobTitle(s(w.JobTitle))
	x.SetDepartment(s(w.Department))
	x.SetMobilePhone(s(w.MobilePhone))
	phones := []string{}
	if w.BusinessPhone != "" {
		phones = append(phones, w.BusinessPhone)
	}
	x.SetBusinessPhones(phones)
	emails := []models.EmailAddressable{}
	for _, e := range w.Emails {
		ea := models.NewEmailAddress()
		ea.SetAddress(s(e))
		emails = append(emails, ea)
	}
	x.SetEmailAddresses(emails)
	a := models.NewPhysicalAddress()
	a.SetStreet(s(w.Business.Street))
	a.SetCity(s(w.Business.City))
	a.SetState(s(w.Business.State))
	a.SetPostalCode(s(w.Business.PostalCode))
	a.SetCountryOrRegion(s(w.Business.CountryOrRegion))
	x.SetBusinessAddress(a)
	if len(w.Properties) > 0 {
		var props []models.SingleValueLegacyExtendedPropertyable
		for id, v := range w.Properties {
			p := models.NewSingleValueLegacyExtendedProperty()
			p.SetId(s(id))
			p.SetValue(s(v))
			props = append(props, p)
		}
		x.SetSingleValueExtendedProperties(props)
	}
	return x
}

// CreateContact creates a contact in mailbox's folder app-only (Contacts.ReadWrite) and returns it as
// Graph answers (id, changeKey, lastModifiedDateTime).
func (c *Client) CreateContact(ctx context.Context, mailbox, folder string, w ContactWrite) (Contact, error) {
	if !validSegment(mailbox) || !validSegment(folder) {
		return Contact{}, errors.New("create contact: invalid mailbox or folder")
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().Post(ctx, w.model(), nil)
	if err != nil {
		return Contact{}, wrap("create contact", err)
	}
	if x == nil {
		return Contact{}, &Error{Op: "create contact", Status: 201, Code: "emptyBody"}
	}
	return toContact(x), nil
}

// UpdateContact writes w over contact id (ErrNotFound when it is gone).
func (c *Client) UpdateContact(ctx context.Context, mailbox, folder, id string, w ContactWrite) (Contact, error) {
	if !validSegment(mailbox) || !validSegment(folder) || !validSegment(id) {
		return Contact{}, errors.New("update contact: invalid mailbox, folder or id")
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().ByContactId(id).Patch(ctx, w.model(), nil)
	if err != nil {
		return Contact{}, wrap("update contact", err)
	}
	if x == nil {
		return Contact{}, &Error{Op: "update contact", Status: 200, Code: "emptyBody"}
	}
	return toContact(x), nil
}

// DeleteContact deletes contact id (ErrNotFound when it is gone already).
func (c *Client) DeleteContact(ctx context.Context, mailbox, folder, id string) error {
	if !validSegment(mailbox) || !validSegment(folder) || !validSegment(id) {
		return errors.New("delete contact: invalid mailbox, folder or id")
	}
	return wrap("delete contact", users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().ByContactId(id).Delete(ctx, nil))
}

// ODataString makes s an OData string literal: single quotes around it, each quote doubled (OData
// ABNF, SQUOTE-in-string), so a value can never end the literal.
func ODataString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// maxFound bounds the contacts one FindContacts reads: a match needs the first few.
const maxFound = 10

// FindContacts lists up to 10 contacts of mailbox's folder that carry extended property prop with
// value (byProperty), or have address among their e-mail addresses (else), with the same $select and
// the property prop expanded into Contact.Extended.
func (c *Client) FindContacts(ctx context.Context, mailbox, folder, prop, value, address string) ([]Contact, error) {
	if !validSegment(mailbox) || !validSegment(folder) || prop == "" {
		return nil, errors.New("find contacts: invalid mailbox, folder or property")
	}
	var filter string
	switch {
	case value != "":
		filter = "singleValueExtendedProperties/Any(ep: ep/id eq " + ODataString(prop) + " and ep/value eq " + ODataString(value) + ")"
	case address != "":
		filter = "emailAddresses/any(a:a/address eq " + ODataString(address) + ")"
	default:
		return nil, errors.New("find contacts: nothing to find by")
	}
	top := int32(maxFound)
	resp, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().Get(ctx, &users.ItemContactFoldersItemContactsRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemContactFoldersItemContactsRequestBuilderGetQueryParameters{Select: contactSelect, Filter: &filter, Top: &top,
			Expand: []string{"singleValueExtendedProperties($filter=id eq " + ODataString(prop) + ")"}}})
	if err != nil {
		return nil, wrap("find contacts", err)
	}
	if resp == nil {
		return nil, &Error{Op: "find contacts", Status: 200, Code: "emptyBody"}
	}
	var out []Contact
	for _, x := range resp.GetValue() {
		out = append(out, withExtended(x))
	}
	return out, nil
}

// ListContacts calls fn for every contact of mailbox's folder, with the same $select and extended
// property prop expanded into Contact.Extended, following @odata.nextLink (pages of 100).
func (c *Client) ListContacts(ctx context.Context, mailbox, folder, prop string, fn func(Contact) error) error {
	if !validSegment(mailbox) || !validSegment(folder) || prop == "" {
		return errors.New("list contacts: invalid mailbox, folder or property")
	}
	root := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().ByContactFolderId(folder).Contacts()
	top := int32(100)
	first := &users.ItemContactFoldersItemContactsRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemContactFoldersItemContactsRequestBuilderGetQueryParameters{Select: contactSelect, Top: &top,
			Expand: []string{"singleValueExtendedProperties($filter=id eq " + ODataString(prop) + ")"}}}
	return followPages("list contacts", func(next string) (models.ContactCollectionResponseable, error) {
		if next == "" {
			return root.Get(ctx, first)
		}
		return root.WithUrl(next).Get(ctx, nil)
	}, func(x models.Contactable) error { return fn(withExtended(x)) })
}

// ContactProperty reads one single-value extended property of a contact ("" when it has none;
// ErrNotFound when the contact is gone): GET …/contacts/{id}?$select=id&$expand=singleValueExtendedProperties($filter=id eq '…').
func (c *Client) ContactProperty(ctx context.Context, mailbox, folder, id, prop string) (string, error) {
	if !validSegment(mailbox) || !validSegment(folder) || !validSegment(id) || prop == "" {
		return "", errors.New("contact property: invalid mailbox, folder, id or property")
	}
	x, err := users.NewUsersRequestBuilderInternal(c.params(), c.adapter).ByUserId(mailbox).ContactFolders().
		ByContactFolderId(folder).Contacts().ByContactId(id).Get(ctx, &users.ItemContactFoldersItemContactsContactItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemContactFoldersItemContactsContactItemRequestBuilderGetQueryParameters{Select: []string{"id"},
			Expand: []string{"singleValueExtendedProperties($filter=id eq " + ODataString(prop) + ")"}}})
	if err != nil {
		return "", wrap("contact property", err)
	}
	if x == nil {
		return "", &Error{Op: "contact property", Status: 200, Code: "emptyBody"}
	}
	for _, p := range x.GetSingleValueExtendedProperties() {
		if strings.EqualFold(str(p.GetId()), prop) {
			return str(p.GetValue()), nil
		}
	}
	return "", nil
}

// maxListPages bounds followPages: 1,000 pages of 100 is more contacts or events than Outlook lets a
// folder or a window hold usefully, and a list that never ends cannot hold an invocation.
const maxListPages = 1000

// followPages hands every item of a listing that must be complete to each, following @odata.nextLink:
// get("") fetches the first page (with its query options), get(link) the next ones. Unlike allPages
// (Places, where a short listing is harmless) a missing body or more than maxListPages pages is an
// error, never a silently partial list.
func followPages[T any, P interface {
	GetValue() []T
	GetOdataNextLink() *string
}](op string, get func(next string) (P, error), each func(T) error) error {
	next := ""
	for page := 0; ; page++ {
		if page == maxListPages {
			return &Error{Op: op, Status: 200, Code: "tooManyPages"}
		}
		resp, err := get(next)
		if err != nil {
			return wrap(op, err)
		}
		if any(resp) == nil {
			return &Error{Op: op, Status: 200, Code: "emptyBody"}
		}
		for _, x := range resp.GetValue() {
			if err := each(x); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		if next = str(resp.GetOdataNextLink()); next == "" {
			return nil
		}
	}
}

func withExtended(x models.Contactable) Contact {
	ct := toContact(x)
	for _, p := range x.GetSingleValueExtendedProperties() {
		if ct.Extended == nil {
			ct.Extended = map[string]string{}
		}
		ct.Extended[str(p.GetId())] = str(p.GetValue())
	}
	return ct
}

func toContact(x models.Contactable) Contact {
	out := Contact{ID: str(x.GetId()), ChangeKey: str(x.GetChangeKey()), GivenName: str(x.GetGivenName()),
		Surname: str(x.GetSurname()), DisplayName: str(x.GetDisplayName()), JobTitle: str(x.GetJobTitle()),
		CompanyName: str(x.GetCompanyName()), Department: str(x.GetDepartment()), MobilePhone: str(x.GetMobilePhone())}
	if v := x.GetLastModifiedDateTime(); v != nil {
		out.LastModified = v.UTC()
	}
	for _, e := range x.GetEmailAddresses() {
		if a := str(e.GetAddress()); a != "" {
			out.Emails = append(out.Emails, a)
		}
	}
	if p := x.GetBusinessPhones(); len(p) > 0 {
		out.BusinessPhone = p[0]
	}
	if a := x.GetBusinessAddress(); a != nil {
		out.Business = Address{Street: str(a.GetStreet()), City: str(a.GetCity()), State: str(a.GetState()),
			PostalCode: str(a.GetPostalCode()), CountryOrRegion: str(a.GetCountryOrRegion())}
	}
	return out
}
