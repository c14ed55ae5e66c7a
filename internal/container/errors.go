package container

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// kindError carries a message shown to clients verbatim and an errdefs
// sentinel that classifies it: errors.Is(err, errdefs.ErrConflict) and
// errdefs.IsConflict(err) see the sentinel, Error() shows only the message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func conflictf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: errdefs.ErrConflict}
}

func notFoundf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: errdefs.ErrNotFound}
}

func invalidf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: errdefs.ErrInvalidArgument}
}
