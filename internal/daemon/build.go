package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/daemon/containers"
	"github.com/moby/moby/api/pkg/stdcopy"
	containertypes "github.com/moby/moby/api/types/container"
)

// buildRunner runs the containers of a build's RUN steps on the container
// service.
type buildRunner struct {
	c *containers.Service
}

func (b buildRunner) Create(ctx context.Context, cfg *containertypes.Config, hc *containertypes.HostConfig) (string, error) {
	resp, err := b.c.Create(ctx, containers.CreateOpts{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// Run starts the container and follows its log, which holds every byte
// of output from the start, until the container ends.
func (b buildRunner) Run(ctx context.Context, id string, out io.Writer) (int, error) {
	wait, err := b.c.Wait(ctx, id, containertypes.WaitConditionNextExit)
	if err != nil {
		return 0, err
	}
	if err := b.c.Start(ctx, id); err != nil {
		return 0, err
	}
	tty, write, err := b.c.Logs(ctx, id, containers.LogsOpts{Stdout: true, Stderr: true, Follow: true, Tail: -1})
	if err != nil {
		return 0, err
	}
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(out, pr)
		} else {
			_, err = stdcopy.StdCopy(out, out, pr)
		}
		pr.CloseWithError(err)
		copied <- err
	}()
	werr := write(pw)
	pw.CloseWithError(werr)
	if err := <-copied; err != nil && werr == nil {
		werr = err
	}
	select {
	case res := <-wait:
		if res.Error != nil && res.Error.Message != "" {
			return 0, fmt.Errorf("%s", res.Error.Message)
		}
		return int(res.StatusCode), werr
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b buildRunner) Remove(ctx context.Context, id string) error {
	return b.c.Remove(ctx, id, containers.RemoveOpts{Force: true})
}
