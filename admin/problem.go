package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// statusOf maps store errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, vmstore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, vmstore.ErrExists):
		return http.StatusConflict
	case errors.Is(err, vmstore.ErrOverQuota):
		return http.StatusInsufficientStorage
	case errors.Is(err, vmstore.ErrTooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, vmstore.ErrInvalid), errors.Is(err, vmstore.ErrInvalidName):
		return http.StatusBadRequest
	case errors.Is(err, vmstore.ErrNotPermitted):
		return http.StatusForbidden
	case errors.Is(err, ErrUnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, vmstore.ErrAuth):
		return http.StatusUnauthorized
	case errors.Is(err, vmstore.ErrStoreFailed), errors.Is(err, vmstore.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	st := statusOf(err)
	detail := err.Error()
	if st == http.StatusInternalServerError {
		detail = "internal error"
	}
	writeProblem(w, st, detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
