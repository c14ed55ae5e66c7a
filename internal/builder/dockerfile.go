package builder

import (
	"bytes"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// builtinArgs may be passed with --build-arg without an ARG declaring
// them, and never appear in the image's history, as in Docker.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	// steps counts every instruction, global ARGs included, for
	// "Step N/M".
	steps int
}

func parseDockerfile(data []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, userError("dockerfile parse error: %v", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, parseErr(err)
	}
	if len(stages) == 0 {
		return nil, userError("the Dockerfile has no FROM instruction: a build needs at least one stage")
	}
	df := &dockerfile{stages: stages, metaArgs: metaArgs, escape: res.EscapeToken, steps: len(metaArgs)}
	for _, s := range stages {
		df.steps += 1 + len(s.Commands)
	}
	return df, nil
}

// parseErr words a parse error as dockerd does, with its line.
func parseErr(err error) error {
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		return userError("dockerfile parse error on line %d: %s", loc.Locations[0][0].Start.Line, errors.Unwrap(loc))
	}
	return userError("dockerfile parse error: %v", err)
}

// plan is the stages a build runs, in order, and the global ARG values.
type plan struct {
	target int
	needed []int
	global map[string]string
}

// plan finds the target stage (the last one when target is empty) and the
// stages it depends on, through FROM and COPY --from.
func (df *dockerfile) plan(target string, buildArgs map[string]*string) (*plan, error) {
	p := &plan{target: len(df.stages) - 1, global: map[string]string{}}
	lex := shell.NewLex(df.escape)
	for _, a := range df.metaArgs {
		for _, kv := range a.Args {
			v, ok := argValue(kv, buildArgs)
			if kv.Value != nil && !ok {
				w, _, err := lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(envList(p.global)))
				if err != nil {
					return nil, userError("%v", err)
				}
				v, ok = w, true
			}
			if ok {
				p.global[kv.Key] = v
			}
		}
	}
	if target != "" {
		i, ok := instructions.HasStage(df.stages, target)
		if !ok {
			return nil, userError("failed to reach build target %s in Dockerfile", target)
		}
		p.target = i
	}
	need := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if need[i] {
			return nil
		}
		need[i] = true
		s := df.stages[i]
		base, err := p.expandFrom(lex, s.BaseName)
		if err != nil {
			return err
		}
		if j, ok := df.stageRef(base, i); ok {
			if err := visit(j); err != nil {
				return err
			}
		}
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				if j, ok := df.stageRef(cp.From, i); ok {
					if err := visit(j); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := visit(p.target); err != nil {
		return nil, err
	}
	for i := range df.stages {
		if need[i] {
			p.needed = append(p.needed, i)
		}
	}
	return p, nil
}

// expandFrom expands the global ARGs in a FROM's image name.
func (p *plan) expandFrom(lex *shell.Lex, name string) (string, error) {
	w, _, err := lex.ProcessWord(name, shell.EnvsFromSlice(envList(p.global)))
	if err != nil {
		return "", userError("%v", err)
	}
	return w, nil
}

// stageRef resolves a stage name or index used inside stage cur: only
// earlier stages count.
func (df *dockerfile) stageRef(name string, cur int) (int, bool) {
	if i, ok := instructions.HasStage(df.stages, name); ok && i < cur {
		return i, true
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < cur {
		return i, true
	}
	return 0, false
}

// argValue is the --build-arg value for an ARG, if one was given.
func argValue(kv instructions.KeyValuePairOptional, buildArgs map[string]*string) (string, bool) {
	v, ok := buildArgs[kv.Key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// unusedArgs lists the build args no ARG of the built stages consumed.
func (df *dockerfile) unusedArgs(buildArgs map[string]*string, used map[string]bool) []string {
	var out []string
	for k := range buildArgs {
		if !used[k] && !builtinArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// envList turns a map into KEY=VALUE entries, sorted.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// instructionText is the instruction as written, for "Step N/M : ...".
func instructionText(c any) string {
	if s, ok := c.(fmt.Stringer); ok {
		return strings.TrimSpace(s.String())
	}
	if c, ok := c.(instructions.Command); ok {
		return strings.ToUpper(c.Name())
	}
	return ""
}

func hostArch() string { return goruntime.GOARCH }
