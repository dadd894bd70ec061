// Package apperr is the one domain error type. Services return it with a code; the transport maps the
// code in one place to an HTTP status (handlers) or to retry-or-give-up (queue workers). Clients see the
// public message only, never the wrapped cause.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error for the caller.
type Code int

const (
	Internal        Code = iota // a bug or an unexpected failure: 500, retry
	Invalid                     // the request is malformed: 400, never retry
	TooLarge                    // the body is over the cap: 413
	NotFound                    // 404
	Conflict                    // 409 (a lost optimistic-concurrency race, a duplicate)
	Forbidden                   // 403
	Unavailable                 // a dependency is down: 503, retry
	Unauthenticated             // no valid credential: 401 with a WWW-Authenticate challenge
	GaveUp                      // transient failures outlasted every retry: park it, retrying again cannot help
)

// Error is a classified error with a message safe to show to a client.
type Error struct {
	Code   Code
	Public string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Public, e.Err)
	}
	return e.Public
}

func (e *Error) Unwrap() error { return e.Err }

// New builds a classified error.
func New(code Code, public string, cause error) *Error {
	return &Error{Code: code, Public: public, Err: cause}
}

// CodeOf returns the code of the first *Error in err's chain, Internal when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// PublicMessage is what a client may see.
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Public
	}
	return "internal error"
}

// Retryable says whether redelivering a queue message can help (true: the invocation fails and Service
// Bus redelivers it, up to the queue's MaxDeliveryCount and then its dead-letter queue) or whether it
// never can (false: the queue router parks the message at once with its reason, see queue.ParkingLot).
func Retryable(err error) bool {
	switch CodeOf(err) {
	case Invalid, TooLarge, NotFound, Forbidden, Unauthenticated, GaveUp:
		return false
	}
	return true
}

// String names the code, for logs and stored reasons.
func (c Code) String() string {
	switch c {
	case Invalid:
		return "invalid"
	case TooLarge:
		return "too-large"
	case NotFound:
		return "not-found"
	case Conflict:
		return "conflict"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	case Unauthenticated:
		return "unauthenticated"
	case GaveUp:
		return "gave-up"
	}
	return "internal"
}
