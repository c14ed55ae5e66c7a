package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type hookKind int

const (
	hookPrestart hookKind = iota
	hookCreateRuntime
	hookCreateContainer
	hookStartContainer
)

func hooksOf(h *specs.Hooks, kind hookKind) []specs.Hook {
	if h == nil {
		return nil
	}
	switch kind {
	case hookPrestart:
		return h.Prestart //nolint:staticcheck // still part of the spec
	case hookCreateRuntime:
		return h.CreateRuntime
	case hookCreateContainer:
		return h.CreateContainer
	case hookStartContainer:
		return h.StartContainer
	}
	return nil
}

// runHooks runs every hook of a kind in order and stops at the first failure.
func runHooks(ctx context.Context, h *specs.Hooks, kind hookKind, state *specs.State) error {
	for _, hook := range hooksOf(h, kind) {
		if err := runHook(ctx, hook, state); err != nil {
			return err
		}
	}
	return nil
}

// runHook runs one hook with the container state as JSON on its stdin, as the
// OCI runtime spec requires, honouring its timeout.
func runHook(ctx context.Context, h specs.Hook, state *specs.State) error {
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("hook %s: timeout must be positive", h.Path)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hook %s: timed out: %w", h.Path, ctx.Err())
		}
		return fmt.Errorf("hook %s: %w: %s", h.Path, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func logWarn(msg string, err error) {
	slog.Warn(msg, "error", err)
}
