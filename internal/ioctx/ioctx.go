// Package ioctx ties a reader to a context.
package ioctx

import (
	"context"
	"io"
)

// Reader returns r failing its reads once ctx is done, so that a copy
// from it stops when its request is cancelled.
func Reader(ctx context.Context, r io.Reader) io.Reader { return &reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
