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
