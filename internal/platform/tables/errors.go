package tables

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

var (
	// ErrNotFound: no row under (tenant, key).
	ErrNotFound = errors.New("not found")
	// ErrExists: Insert found a row under the key already.
	ErrExists = errors.New("already exists")
	// ErrConflict: the row changed since it was read (ETag mismatch, HTTP 412).
	ErrConflict = errors.New("changed concurrently")
)

// classify maps Table Storage responses onto the store's sentinel errors, keeping the original in the
// chain for logs and diagnostics.
func classify(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case re.StatusCode == http.StatusNotFound || re.ErrorCode == string(aztables.EntityNotFound) ||
		re.ErrorCode == string(aztables.ResourceNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case re.StatusCode == http.StatusConflict && re.ErrorCode == string(aztables.EntityAlreadyExists):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case re.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}
