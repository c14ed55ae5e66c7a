package image

import (
	"github.com/containerd/errdefs"
)

// notFoundError carries an exact, Docker-compatible message and is
// classified by errdefs.IsNotFound.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string      { return e.msg }
func (notFoundError) NotFound()            {}
func (notFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// conflictError is classified by errdefs.IsConflict.
type conflictError struct{ msg string }

func (e conflictError) Error() string { return e.msg }
func (conflictError) Conflict()       {}

// invalidParameterError is classified by errdefs.IsInvalidArgument.
type invalidParameterError struct{ msg string }

func (e invalidParameterError) Error() string      { return e.msg }
func (invalidParameterError) InvalidParameter()    {}
func (invalidParameterError) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func (conflictError) Is(target error) bool { return target == errdefs.ErrConflict }
