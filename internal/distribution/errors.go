package distribution

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registryError is an error answered by a registry, worded as Docker's
// registry client words it ("manifest unknown: manifest unknown") and
// classed by its status.
type registryError struct {
	status int
	codes  []transport.ErrorCode
	msg    string
}

func (e *registryError) Error() string { return e.msg }

func (e *registryError) Unwrap() error {
	switch e.status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case http.StatusBadRequest:
		return errdefs.ErrInvalidArgument
	case http.StatusTooManyRequests:
		return errdefs.ErrResourceExhausted
	}
	return errdefs.ErrUnknown
}

func (e *registryError) has(code transport.ErrorCode) bool {
	for _, c := range e.codes {
		if c == code {
			return true
		}
	}
	return false
}

// asRegistryError rewords a go-containerregistry transport error; other
// errors are returned as they are, except that when both HTTPS and HTTP
// were tried only the last attempt's error is kept, as dockerd reports.
func asRegistryError(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		if _, last, ok := strings.Cut(err.Error(), `; Get "http://`); ok && strings.HasPrefix(err.Error(), `Get "https://`) {
			return errors.New(`Get "http://` + last)
		}
		return err
	}
	re := &registryError{status: te.StatusCode}
	var parts []string
	for _, d := range te.Errors {
		re.codes = append(re.codes, d.Code)
		parts = append(parts, describe(d))
	}
	if len(parts) == 0 {
		parts = []string{fmt.Sprintf("received unexpected HTTP status: %d %s", te.StatusCode, http.StatusText(te.StatusCode))}
		if te.StatusCode == http.StatusUnauthorized {
			parts = []string{"unauthorized: authentication required"}
		}
	}
	re.msg = strings.Join(parts, ", ")
	return re
}

// describe words one registry diagnostic as the distribution client:
// "<code in words>: <message>".
func describe(d transport.Diagnostic) string {
	code := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
	if d.Message == "" {
		return code
	}
	return code + ": " + d.Message
}

// isUnauthorized reports whether a registry refused access.
func isUnauthorized(err error) bool {
	var re *registryError
	if errors.As(err, &re) {
		return re.status == http.StatusUnauthorized || re.status == http.StatusForbidden ||
			re.has(transport.UnauthorizedErrorCode) || re.has(transport.DeniedErrorCode)
	}
	return false
}
