package containers

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/container"
	"github.com/containerd/errdefs"
	archive "github.com/moby/go-archive"
	eventtypes "github.com/moby/moby/api/types/events"
)

// usableLayer returns the container ref names unless it is being removed
// or dead: what export and commit refuse, in dockerd's words ("You cannot
// export container X which is Dead").
func (s *Service) usableLayer(ref, verb string) (*container.Container, error) {
	c, err := s.store.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Lock()
	st := c.State
	c.Unlock()
	switch {
	case st.RemovalInProgress:
		return nil, fmt.Errorf("You cannot %s container %s which is being removed: %w", verb, c.ID, errdefs.ErrConflict)
	case st.Dead:
		return nil, fmt.Errorf("You cannot %s container %s which is Dead: %w", verb, c.ID, errdefs.ErrConflict)
	}
	return c, nil
}

// Export implements GET /containers/{id}/export: a tar of the container's
// whole file system (its read-write layer over its image), written to out.
// Running and stopped containers alike: the layer is mounted (or its
// mount counted) for the time of the copy.
func (s *Service) Export(ctx context.Context, ref string, out io.Writer) error {
	c, err := s.usableLayer(ref, "export")
	if err != nil {
		return err
	}
	rw, err := s.cfg.Layers.GetRW(c.ID)
	if err != nil {
		return err
	}
	rootfs, err := rw.Mount(ctx)
	if err != nil {
		return err
	}
	defer rw.Unmount(context.WithoutCancel(ctx))
	tar, err := archive.TarWithOptions(rootfs, &archive.TarOptions{})
	if err != nil {
		return err
	}
	defer tar.Close()
	if _, err := io.Copy(out, tar); err != nil {
		return err
	}
	s.emit(c, eventtypes.ActionExport, nil)
	return nil
}
