// Package docs carries the documents the handler serves itself: the OpenAPI description of every HTTP
// function (GET /api/openapi.json). It lives beside the pages that explain it; a test in handlers keeps
// it in step with the routes, and its examples and the routes' real answers validate against it.
package docs

import _ "embed"

// OpenAPI is openapi.json, the OpenAPI 3.1 document of every HTTP function.
//
//go:embed openapi.json
var OpenAPI []byte
