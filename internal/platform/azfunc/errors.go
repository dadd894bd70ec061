package azfunc

import (
	"encoding/json"
	"net/http"

	"github.com/connecthub/connecthub/internal/core/apperr"
)

// HTTPStatus maps a domain error code to its HTTP status: the one place for every HTTP function.
func HTTPStatus(code apperr.Code) int {
	switch code {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.Unavailable, apperr.GaveUp:
		return http.StatusServiceUnavailable
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// Plain is a text/plain HTTP answer.
func Plain(status int, msg string) HTTPResponse {
	return HTTPResponse{StatusCode: status, Body: msg, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
}

// JSON is an application/json HTTP answer; a value that cannot be encoded answers "internal error".
func JSON(status int, v any) HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		return Plain(http.StatusInternalServerError, "internal error")
	}
	return HTTPResponse{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}
