package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/daemon/images"
	"github.com/berth-dev/berth/internal/imageconfig"
	"github.com/berth-dev/berth/internal/layer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/go-archive"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/sys/user"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// run is one build in progress.
type run struct {
	b       *Builder
	o       Options
	st      *stream
	ctx     *buildContext
	df      *dockerfile
	plan    *plan
	results map[int]digest.Digest
	// bases are the images the stages start from ("" for scratch).
	bases map[int]digest.Digest
	// usedArgs are the build args an ARG consumed.
	usedArgs map[string]bool
	step     int
	// cleanups run at the end of the build (mounts of --from sources).
	cleanups []func()
}

// defaultPath is the PATH of a stage whose base image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stage is the state of the stage being built.
type stage struct {
	index int
	// id is the image of the last step ("" before the first commit of
	// a FROM scratch stage).
	id     digest.Digest
	img    dockerspec.DockerOCIImage
	chain  digest.Digest
	args   map[string]string // ARGs in scope with a value
	cmdSet bool
	lex    *shell.Lex
}

func (r *run) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func (r *run) execute(ctx context.Context) (digest.Digest, error) {
	r.usedArgs = map[string]bool{}
	for _, a := range r.df.metaArgs {
		r.stepLine(&a)
		for _, kv := range a.Args {
			if _, ok := r.o.BuildArgs[kv.Key]; ok {
				r.usedArgs[kv.Key] = true
			}
		}
	}
	for _, i := range r.plan.needed {
		id, err := r.buildStage(ctx, i)
		if err != nil {
			return "", err
		}
		r.results[i] = id
	}
	return r.results[r.plan.target], nil
}

func (r *run) stepLine(c any) {
	r.step++
	r.st.line(fmt.Sprintf("Step %d/%d : %s\n", r.step, r.df.steps, instructionText(c)))
}

func (r *run) buildStage(ctx context.Context, i int) (digest.Digest, error) {
	ds := r.df.stages[i]
	r.step++
	r.st.line(fmt.Sprintf("Step %d/%d : %s\n", r.step, r.df.steps, strings.TrimSpace(ds.SourceCode)))
	s := &stage{index: i, args: map[string]string{}, lex: shell.NewLex(r.df.escape)}
	base, err := r.plan.expandFrom(s.lex, ds.BaseName)
	if err != nil {
		return "", err
	}
	if err := r.from(ctx, s, base, ds.Platform); err != nil {
		return "", err
	}
	r.bases[i] = s.id
	// Like dockerd's builder, the steps run with (and the image keeps) the
	// default PATH when the base image has none.
	if !slices.ContainsFunc(s.img.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		s.img.Config = cloneConfig(s.img.Config)
		s.img.Config.Env = append(s.img.Config.Env, "PATH="+defaultPath)
	}
	r.st.line(fmt.Sprintf(" ---> %s\n", shortID(s.id)))
	if err := r.onbuild(ctx, s); err != nil {
		return "", err
	}
	for _, c := range ds.Commands {
		r.stepLine(c)
		if err := r.dispatch(ctx, s, c); err != nil {
			return "", err
		}
		r.st.line(fmt.Sprintf(" ---> %s\n", shortID(s.id)))
	}
	if i == r.plan.target && len(r.o.Labels) > 0 {
		if err := r.commitConfig(ctx, s, "LABEL "+labelText(r.o.Labels), func(img *dockerspec.DockerOCIImage) {
			if img.Config.Labels == nil {
				img.Config.Labels = map[string]string{}
			}
			maps.Copy(img.Config.Labels, r.o.Labels)
		}); err != nil {
			return "", err
		}
	}
	if s.id == "" {
		// FROM scratch and nothing else: an empty image.
		if err := r.commit(ctx, s, "", nil, ""); err != nil {
			return "", err
		}
	}
	return s.id, nil
}

func labelText(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%q=%q", k, labels[k]))
	}
	return strings.Join(parts, " ")
}

// from sets s to its base: an earlier stage, scratch, or an image (pulled
// when missing or with --pull).
func (r *run) from(ctx context.Context, s *stage, base, platform string) error {
	if j, ok := r.df.stageRef(base, s.index); ok {
		return r.load(s, r.results[j])
	}
	if strings.EqualFold(base, "scratch") {
		s.img = dockerspec.DockerOCIImage{Image: ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: hostArch()},
			RootFS:   ocispec.RootFS{Type: "layers"},
		}}
		return nil
	}
	if platform != "" {
		p, _, err := s.lex.ProcessWord(platform, shell.EnvsFromSlice(envList(r.plan.global)))
		if err != nil {
			return userError("%v", err)
		}
		if p != "linux/"+hostArch() && p != "linux" && p != "$BUILDPLATFORM" && p != "$TARGETPLATFORM" {
			return userError("platform %s is not supported: berth builds for linux/%s only", p, hostArch())
		}
	}
	id, err := r.image(ctx, base)
	if err != nil {
		return err
	}
	return r.load(s, id)
}

// image resolves an image name, pulling it when it is missing locally (or
// always with --pull), as docker build does.
func (r *run) image(ctx context.Context, name string) (digest.Digest, error) {
	img, err := r.b.cfg.Images.Get(name)
	if err == nil && !r.o.Pull {
		return img.ID, nil
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return "", err
	}
	ref, perr := reference.ParseNormalizedNamed(name)
	if perr != nil {
		if err != nil {
			return "", err
		}
		return img.ID, nil
	}
	if r.b.cfg.Puller == nil {
		if err != nil {
			return "", err
		}
		return img.ID, nil
	}
	ref = reference.TagNameOnly(ref)
	if perr := r.b.cfg.Puller.PullImage(ctx, ref, r.o.Platform, r.authFor(ref), r.st.pullOutput()); perr != nil {
		if err == nil {
			// --pull of an image we have: a registry problem is not
			// fatal, the local image is used.
			return img.ID, nil
		}
		return "", perr
	}
	img, err = r.b.cfg.Images.Get(reference.FamiliarString(ref))
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// authFor picks the client's credentials for ref's registry, under the
// keys the docker CLI uses (Docker Hub's is its v1 index URL).
func (r *run) authFor(ref reference.Named) *registry.AuthConfig {
	domain := reference.Domain(ref)
	keys := []string{domain, "https://" + domain, "http://" + domain}
	if domain == "docker.io" {
		keys = []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io"}
	}
	for _, k := range keys {
		if a, ok := r.o.AuthConfigs[k]; ok {
			return &a
		}
	}
	return nil
}

// load makes image id the current state of s.
func (r *run) load(s *stage, id digest.Digest) error {
	img, err := r.b.cfg.Images.Get(id.String())
	if err != nil {
		return err
	}
	s.id = id
	s.img = *img.Config
	s.chain = topChain(img.Config.RootFS.DiffIDs)
	return nil
}

func topChain(diffIDs []digest.Digest) digest.Digest {
	if len(diffIDs) == 0 {
		return ""
	}
	c := layer.ChainIDs(diffIDs)
	return c[len(c)-1]
}

// onbuild runs the ONBUILD triggers of the base image.
func (r *run) onbuild(ctx context.Context, s *stage) error {
	triggers := s.img.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	s.img.Config.OnBuild = nil
	word := "triggers"
	if len(triggers) == 1 {
		word = "trigger"
	}
	r.st.line(fmt.Sprintf("# Executing %d build %s\n", len(triggers), word))
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return userError("ONBUILD trigger %q: %v", t, err)
		}
		for _, n := range res.AST.Children {
			switch strings.ToUpper(n.Value) {
			case "ONBUILD":
				return userError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
			case "FROM", "MAINTAINER":
				return userError("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(n.Value))
			}
			c, err := instructions.ParseCommand(n)
			if err != nil {
				return parseErr(err)
			}
			if err := r.dispatch(ctx, s, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// env is what variables expand against: the image's Env, then the ARGs
// in scope that Env does not set.
func (s *stage) env() shell.EnvGetter {
	env := slices.Clone(s.img.Config.Env)
	set := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		set[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(s.args)) {
		if !set[k] {
			env = append(env, k+"="+s.args[k])
		}
	}
	return shell.EnvsFromSlice(env)
}

func (s *stage) expand(c instructions.Command) error {
	ex, ok := c.(instructions.SupportsSingleWordExpansion)
	if !ok {
		return nil
	}
	envs := s.env()
	return ex.Expand(func(word string) (string, error) {
		w, _, err := s.lex.ProcessWord(word, envs)
		return w, err
	})
}

// dispatch runs one instruction on s.
func (r *run) dispatch(ctx context.Context, s *stage, c instructions.Command) error {
	if err := s.expand(c); err != nil {
		return userError("%s: %v", strings.ToUpper(c.Name()), err)
	}
	switch c := c.(type) {
	case *instructions.ArgCommand:
		return r.arg(ctx, s, c)
	case *instructions.RunCommand:
		return r.runStep(ctx, s, c)
	case *instructions.CopyCommand:
		return r.copyStep(ctx, s, copyRequest{
			text: c.String(), sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			from: c.From, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns,
		})
	case *instructions.AddCommand:
		return r.copyStep(ctx, s, copyRequest{
			text: c.String(), sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, add: true, excludes: c.ExcludePatterns, checksum: c.Checksum,
		})
	case *instructions.WorkdirCommand:
		return r.workdir(ctx, s, c)
	case *instructions.MaintainerCommand:
		return r.commitConfig(ctx, s, "MAINTAINER "+c.Maintainer, func(img *dockerspec.DockerOCIImage) {
			img.Author = c.Maintainer
		})
	case *instructions.ShellCommand:
		return r.commitConfig(ctx, s, "SHELL "+jsonArray(c.Shell), func(img *dockerspec.DockerOCIImage) {
			img.Config.Shell = slices.Clone(c.Shell)
		})
	case *instructions.EnvCommand, *instructions.LabelCommand, *instructions.CmdCommand,
		*instructions.EntrypointCommand, *instructions.HealthCheckCommand, *instructions.ExposeCommand,
		*instructions.UserCommand, *instructions.VolumeCommand, *instructions.StopSignalCommand,
		*instructions.OnbuildCommand:
		// Check the instruction before the cache: a bad one fails even
		// when an earlier build cached its step.
		probe := cloneConfig(s.img.Config)
		cmdSet := s.cmdSet
		if err := imageconfig.Apply(&probe, c, s.lex, s.env(), &cmdSet); err != nil {
			return userError("%s", err)
		}
		err := r.commitConfig(ctx, s, configText(c), func(img *dockerspec.DockerOCIImage) {
			img.Config = probe
		})
		s.cmdSet = cmdSet
		return err
	default:
		return userError("berth does not support the %s instruction", strings.ToUpper(c.Name()))
	}
}

// configText is how a config step appears in the history after "#(nop)".
func configText(c instructions.Command) string {
	switch c := c.(type) {
	case *instructions.CmdCommand:
		return "CMD " + jsonArray(c.CmdLine)
	case *instructions.EntrypointCommand:
		return "ENTRYPOINT " + jsonArray(c.CmdLine)
	case *instructions.EnvCommand:
		var kv []string
		for _, e := range c.Env {
			kv = append(kv, e.String())
		}
		return "ENV " + strings.Join(kv, " ")
	}
	return instructionText(c)
}

func jsonArray(a []string) string {
	b, _ := json.Marshal(a)
	return string(b)
}

// arg declares build arguments in the stage.
func (r *run) arg(ctx context.Context, s *stage, c *instructions.ArgCommand) error {
	var text []string
	for _, kv := range c.Args {
		if v, ok := argValue(kv, r.o.BuildArgs); ok {
			s.args[kv.Key] = v
			r.usedArgs[kv.Key] = true
		} else if kv.Value != nil {
			s.args[kv.Key] = *kv.Value
		} else if v, ok := r.plan.global[kv.Key]; ok {
			s.args[kv.Key] = v
		}
		text = append(text, kv.String())
	}
	return r.commitConfig(ctx, s, "ARG "+strings.Join(text, " "), nil)
}

// commitConfig commits a step that changes only the config, unless the
// cache has it. The cache key covers the resulting config, so values that
// came from build args are part of it.
func (r *run) commitConfig(ctx context.Context, s *stage, text string, change func(*dockerspec.DockerOCIImage)) error {
	next := s.img
	next.Config = cloneConfig(s.img.Config)
	if change != nil {
		change(&next)
	}
	raw, err := json.Marshal(struct {
		Author string
		Config dockerspec.DockerOCIImageConfig
	}{next.Author, next.Config})
	if err != nil {
		return err
	}
	key := text + "\x00" + digest.FromBytes(raw).String()
	if r.cached(s, key) {
		return nil
	}
	s.img = next
	return r.commit(ctx, s, "/bin/sh -c #(nop) "+text, nil, "", key)
}

// cloneConfig deep-copies the parts of a config steps change in place.
func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Shell = slices.Clone(c.Shell)
	c.OnBuild = slices.Clone(c.OnBuild)
	c.Labels = maps.Clone(c.Labels)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	return c
}

// cached moves s to the cached result of a step, if there is one.
func (r *run) cached(s *stage, key string) bool {
	if r.o.NoCache {
		return false
	}
	id, ok := r.b.cache.lookup(s.id, key, r.b.cfg.Images)
	if !ok {
		return false
	}
	if err := r.load(s, id); err != nil {
		return false
	}
	r.st.line(" ---> Using cache\n")
	return true
}

// commit stores the next image of s: its config plus, unless diff is nil,
// the layer diff (an uncompressed tar) on top. With a cache key, the
// result is remembered for the next build.
func (r *run) commit(ctx context.Context, s *stage, createdBy string, diff io.Reader, containerID string, key ...string) error {
	id, err := r.b.cfg.Images.CommitLayer(ctx, images.Commit{
		Parent: s.id, Config: s.img.Config, Author: s.img.Author,
		CreatedBy: createdBy, EmptyLayer: diff == nil, ContainerID: containerID,
	}, diff)
	if err != nil {
		return err
	}
	if len(key) > 0 {
		r.b.cache.store(s.id, key[0], id)
	}
	return r.load(s, id)
}

// commitRW commits the changes of a read-write layer as the step's layer.
func (r *run) commitRW(ctx context.Context, s *stage, createdBy string, rw layer.RWLayer, containerID, key string) error {
	diff, err := rw.Diff(ctx)
	if err != nil {
		return err
	}
	defer diff.Close()
	return r.commit(ctx, s, createdBy, diff, containerID, key)
}

// ensureImage commits the empty image of a FROM scratch stage before a
// step needs an image to start from.
func (r *run) ensureImage(ctx context.Context, s *stage) error {
	if s.id != "" {
		return nil
	}
	return r.commit(ctx, s, "", nil, "")
}

// runStep runs a RUN instruction in a container and commits what it
// changed.
func (r *run) runStep(ctx context.Context, s *stage, c *instructions.RunCommand) (retErr error) {
	if len(c.FlagsUsed) > 0 {
		return userError("RUN --%s is not supported by berth's builder", c.FlagsUsed[0])
	}
	cmd := runCommand(s, c)
	// The build args in scope reach the command as variables; the image
	// keeps a record of them in its history (Docker's "|N k=v" prefix).
	var argEnv []string
	for _, k := range slices.Sorted(maps.Keys(s.args)) {
		argEnv = append(argEnv, k+"="+s.args[k])
	}
	createdBy := strings.Join(cmd, " ")
	var histArgs []string
	for _, kv := range argEnv {
		k, _, _ := strings.Cut(kv, "=")
		if !builtinArgs[k] {
			histArgs = append(histArgs, kv)
		}
	}
	if len(histArgs) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(histArgs), strings.Join(histArgs, " "), createdBy)
	}
	if r.cached(s, "RUN "+createdBy) {
		return nil
	}
	if err := r.ensureImage(ctx, s); err != nil {
		return err
	}
	env := slices.Clone(s.img.Config.Env)
	for _, kv := range argEnv {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(env, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k }) {
			env = append(env, kv)
		}
	}
	cfg := &containertypes.Config{
		Image:        s.id.String(),
		Cmd:          cmd,
		Entrypoint:   []string{},
		Env:          env,
		WorkingDir:   s.img.Config.WorkingDir,
		User:         s.img.Config.User,
		AttachStdout: true,
		AttachStderr: true,
	}
	hc := &containertypes.HostConfig{
		NetworkMode: containertypes.NetworkMode(r.o.NetworkMode),
		ExtraHosts:  r.o.ExtraHosts,
		Resources:   r.o.Resources,
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	id, err := r.b.cfg.Runner.Create(ctx, cfg, hc)
	if err != nil {
		return err
	}
	defer func() {
		if r.o.Remove || r.o.ForceRemove {
			r.st.line(fmt.Sprintf("Removing intermediate container %s\n", short(id)))
			if rerr := r.b.cfg.Runner.Remove(context.WithoutCancel(ctx), id); rerr != nil && retErr == nil {
				retErr = rerr
			}
		}
	}()
	r.st.line(fmt.Sprintf(" ---> Running in %s\n", short(id)))
	code, err := r.b.cfg.Runner.Run(ctx, id, r.st.output())
	if err != nil {
		return err
	}
	if code != 0 {
		return &stepError{msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(cmd, " "), code), code: code}
	}
	rw, err := r.b.cfg.Layers.GetRW(id)
	if err != nil {
		return err
	}
	return r.commitRW(ctx, s, createdBy, rw, id, "RUN "+createdBy)
}

// runCommand is the command line of a RUN: the shell form under the
// stage's SHELL, heredocs as scripts.
func runCommand(s *stage, c *instructions.RunCommand) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := s.img.Config.Shell
	if len(sh) == 0 {
		sh = imageconfig.DefaultShell
	}
	script := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		// "RUN <<EOF" alone runs the heredoc as the script; a command
		// with heredocs goes to the shell whole, heredocs included.
		if len(c.CmdLine) == 1 && strings.HasPrefix(strings.TrimSpace(c.CmdLine[0]), "<<") {
			script = heredocBody(c.Files[0])
		} else {
			var b strings.Builder
			b.WriteString(script)
			for _, f := range c.Files {
				b.WriteString("\n")
				b.WriteString(heredocBody(f))
				b.WriteString(f.Name)
			}
			script = b.String()
		}
	}
	return append(slices.Clone(sh), script)
}

func heredocBody(f instructions.ShellInlineFile) string {
	data := f.Data
	if f.Chomp {
		data = parser.ChompHeredocContent(data)
	}
	return data
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// squash turns the layers the target stage added on its base image into
// one: the changes between the base's and the result's file systems,
// stored on the base, with the history of the squashed steps kept as
// empty layers (what dockerd's --squash does).
func (r *run) squash(ctx context.Context, id digest.Digest) (digest.Digest, error) {
	base := r.bases[r.plan.target]
	final, err := r.b.cfg.Images.Get(id.String())
	if err != nil {
		return "", err
	}
	var baseImg dockerspec.DockerOCIImage
	if base != "" {
		b, err := r.b.cfg.Images.Get(base.String())
		if err != nil {
			return "", err
		}
		baseImg = *b.Config
	}
	nBase := len(baseImg.RootFS.DiffIDs)
	if len(final.Config.RootFS.DiffIDs) <= nBase+1 {
		return id, nil // nothing to squash
	}
	baseChain := topChain(baseImg.RootFS.DiffIDs)
	newDir, cleanNew, err := r.mountImage(ctx, topChain(final.Config.RootFS.DiffIDs))
	if err != nil {
		return "", err
	}
	defer cleanNew()
	oldDir, cleanOld, err := r.mountImage(ctx, baseChain)
	if err != nil {
		return "", err
	}
	defer cleanOld()
	changes, err := archive.ChangesDirs(newDir, oldDir)
	if err != nil {
		return "", fmt.Errorf("squash: %w", err)
	}
	diff, err := archive.ExportChanges(newDir, changes, user.IdentityMapping{})
	if err != nil {
		return "", fmt.Errorf("squash: %w", err)
	}
	l, err := r.b.cfg.Layers.Register(ctx, diff, baseChain)
	diff.Close()
	if err != nil {
		return "", fmt.Errorf("squash: %w", err)
	}
	img := *final.Config
	img.RootFS.DiffIDs = append(slices.Clone(baseImg.RootFS.DiffIDs), l.DiffID())
	img.History = slices.Clone(img.History)
	for i := len(baseImg.History); i < len(img.History); i++ {
		img.History[i].EmptyLayer = true
	}
	now := time.Now().UTC()
	img.History = append(img.History, ocispec.History{
		Created: &now, CreatedBy: fmt.Sprintf("merge %s to %s", id, base), Comment: "squashed",
	})
	img.Created = &now
	raw, err := json.Marshal(img)
	if err != nil {
		r.b.cfg.Layers.Release(l.ChainID())
		return "", err
	}
	return r.b.cfg.Images.CreateImage(raw, base)
}

// mountImage mounts an image's file system (a scratch layer on chain)
// until the returned function runs.
func (r *run) mountImage(ctx context.Context, chain digest.Digest) (string, func(), error) {
	rw, err := r.b.cfg.Layers.CreateRW(ctx, "build-"+randomID(), chain)
	if err != nil {
		return "", nil, err
	}
	dir, err := rw.Mount(ctx)
	if err != nil {
		r.b.cfg.Layers.ReleaseRW(rw.ID())
		return "", nil, err
	}
	return dir, func() {
		rw.Unmount(context.Background())
		r.b.cfg.Layers.ReleaseRW(rw.ID())
	}, nil
}
