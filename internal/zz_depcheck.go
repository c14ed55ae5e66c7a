// Package internal pins the engine's upcoming dependencies in go.mod while
// the packages that use them are written; removed once they are imported.
package internal

import (
	_ "github.com/creack/pty"
	_ "github.com/docker/cli/templates"
	_ "github.com/docker/go-connections/nat"
	_ "github.com/moby/buildkit/frontend/dockerfile/instructions"
	_ "github.com/moby/buildkit/frontend/dockerfile/parser"
	_ "github.com/moby/moby/api/pkg/stdcopy"
	_ "github.com/moby/moby/client"
	_ "github.com/moby/moby/client/pkg/jsonmessage"
	_ "github.com/moby/term"
)
