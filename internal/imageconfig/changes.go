// Package imageconfig applies Dockerfile instructions to an image config:
// the changes of `import -c` and `commit -c`, and the config steps of a
// build.
package imageconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/signals"

	"github.com/containerd/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// changeCommands are the Dockerfile instructions a change (import
// --change, commit --change) may use, as dockerd's validCommitCommands.
var changeCommands = map[string]bool{
	"cmd": true, "entrypoint": true, "env": true, "expose": true, "healthcheck": true, "label": true,
	"onbuild": true, "stopsignal": true, "user": true, "volume": true, "workdir": true,
}

// DefaultShell prefixes shell-form CMD and ENTRYPOINT when the config has
// no SHELL.
var DefaultShell = []string{"/bin/sh", "-c"}

func invalidParameter(err error) error {
	if err == nil || errdefs.IsInvalidArgument(err) {
		return err
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
}

// ApplyChanges returns cfg with the Dockerfile instructions in changes
// applied, as dockerd's BuildFromConfig does: variables expand against the
// config's Env as it stands before each instruction. Every error is an
// invalid argument.
func ApplyChanges(cfg dockerspec.DockerOCIImageConfig, changes []string) (dockerspec.DockerOCIImageConfig, error) {
	if len(changes) == 0 {
		return cfg, nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		return cfg, invalidParameter(err)
	}
	for _, n := range res.AST.Children {
		if !changeCommands[strings.ToLower(n.Value)] {
			return cfg, invalidParameter(fmt.Errorf("%s is not a valid change command", n.Value))
		}
	}
	cmds := make([]instructions.Command, 0, len(res.AST.Children))
	for _, n := range res.AST.Children {
		cmd, err := instructions.ParseCommand(n)
		if err != nil {
			return cfg, invalidParameter(err)
		}
		cmds = append(cmds, cmd)
	}
	lex := shell.NewLex(res.EscapeToken)
	cmdSet := false
	for _, cmd := range cmds {
		envs := shell.EnvsFromSlice(cfg.Env)
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			err := ex.Expand(func(word string) (string, error) {
				w, _, err := lex.ProcessWord(word, envs)
				return w, err
			})
			if err != nil {
				return cfg, invalidParameter(err)
			}
		}
		if err := Apply(&cfg, cmd, lex, envs, &cmdSet); err != nil {
			return cfg, invalidParameter(err)
		}
	}
	return cfg, nil
}

// Apply applies one config instruction (CMD, ENTRYPOINT, ENV, EXPOSE,
// HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR) to cfg.
// cmdSet tells whether a CMD came earlier in the same stage: ENTRYPOINT
// clears an inherited CMD only.
func Apply(cfg *dockerspec.DockerOCIImageConfig, cmd instructions.Command, lex *shell.Lex, envs shell.EnvGetter, cmdSet *bool) error {
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			SetEnv(cfg, kv.Key, kv.String())
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.CmdCommand:
		cfg.Cmd = WithShell(cfg, c.ShellDependantCmdLine)
		cfg.ArgsEscaped = false //nolint:staticcheck // Docker keeps the field for Windows images.
		if len(c.CmdLine) != 0 {
			*cmdSet = true
		}
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = WithShell(cfg, c.ShellDependantCmdLine)
		cfg.ArgsEscaped = false //nolint:staticcheck // Docker keeps the field for Windows images.
		if !*cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
	case *instructions.ExposeCommand:
		// The one instruction whose words may expand to several words.
		var ports []string
		for _, p := range c.Ports {
			words, err := lex.ProcessWords(p, envs)
			if err != nil {
				return err
			}
			ports = append(ports, words...)
		}
		set, _, err := nat.ParsePortSpecs(ports)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := range set {
			cfg.ExposedPorts[string(p)] = struct{}{}
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		if _, err := signals.Parse(c.Signal); err != nil {
			return err
		}
		cfg.StopSignal = c.Signal
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.WorkdirCommand:
		if c.Path == "" {
			return errors.New("cannot normalize nothing")
		}
		if filepath.IsAbs(c.Path) {
			cfg.WorkingDir = c.Path
		} else {
			cfg.WorkingDir = filepath.Join("/", cfg.WorkingDir, c.Path)
		}
	default:
		return fmt.Errorf("%s is not a valid change command", cmd.Name())
	}
	return nil
}

// SetEnv replaces the variable key in cfg.Env, or appends it.
func SetEnv(cfg *dockerspec.DockerOCIImageConfig, key, keyValue string) {
	for i, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); shell.EqualEnvKeys(k, key) {
			cfg.Env[i] = keyValue
			return
		}
	}
	cfg.Env = append(cfg.Env, keyValue)
}

// WithShell returns the command line of a CMD or ENTRYPOINT: the shell form
// runs under the config's SHELL or /bin/sh -c.
func WithShell(cfg *dockerspec.DockerOCIImageConfig, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell || c.CmdLine == nil {
		return c.CmdLine
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = DefaultShell
	}
	return append(append([]string{}, sh...), c.CmdLine...)
}
