// Package build is `berth build`: it packs a build context as the docker
// CLI does (.dockerignore applied, the Dockerfile always included) and
// renders the daemon's classic build output.
package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/opts"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type options struct {
	tags        []string
	file        string
	buildArgs   []string
	labels      []string
	noCache     bool
	pull        bool
	quiet       bool
	rm          bool
	forceRm     bool
	squash      bool
	network     string
	target      string
	iidfile     string
	addHosts    []string
	platform    string
	cacheFrom   []string
	memory      string
	memorySwap  string
	cpuShares   int64
	cpuPeriod   int64
	cpuQuota    int64
	cpusetCpus  string
	cpusetMems  string
	shmSize     string
	cgroupParnt string
}

// NewBuildCommand returns "berth build".
func NewBuildCommand(cli *command.Cli) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), cli, args[0], o)
		},
		Annotations:           map[string]string{"category-top": "4", "aliases": "berth image build, berth build, berth builder build"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, `Name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&o.file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "Set build-time variables")
	f.StringArrayVar(&o.labels, "label", nil, "Set metadata for an image")
	f.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.BoolVar(&o.rm, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "Always remove intermediate containers")
	f.BoolVar(&o.squash, "squash", false, "Squash newly built layers into a single new layer")
	f.StringVar(&o.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&o.target, "target", "", "Set the target build stage to build.")
	f.StringVar(&o.iidfile, "iidfile", "", "Write the image ID to the file")
	f.StringArrayVar(&o.addHosts, "add-host", nil, "Add a custom host-to-IP mapping (\"host:ip\")")
	f.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	f.StringArrayVar(&o.cacheFrom, "cache-from", nil, "Images to consider as cache sources")
	f.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	f.StringVar(&o.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit the CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit the CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.shmSize, "shm-size", "", "Size of /dev/shm")
	f.StringVar(&o.cgroupParnt, "cgroup-parent", "", `Set the parent cgroup for the "RUN" instructions during build`)
	f.Bool("disable-content-trust", true, "Skip image verification")
	_ = f.MarkHidden("disable-content-trust")
	return cmd
}

func run(ctx context.Context, cli *command.Cli, path string, o options) error {
	if o.iidfile != "" {
		// A stale ID must not survive a failed build.
		if err := os.Remove(o.iidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing image ID file: %w", err)
		}
	}
	bo := client.ImageBuildOptions{
		Tags: o.tags, SuppressOutput: o.quiet, NoCache: o.noCache, Remove: o.rm || o.forceRm, ForceRemove: o.forceRm,
		PullParent: o.pull, NetworkMode: o.network, Target: o.target, ExtraHosts: o.addHosts, Squash: o.squash,
		CacheFrom: o.cacheFrom, CPUShares: o.cpuShares, CPUPeriod: o.cpuPeriod, CPUQuota: o.cpuQuota,
		CPUSetCPUs: o.cpusetCpus, CPUSetMems: o.cpusetMems, CgroupParent: o.cgroupParnt,
		BuildArgs: buildArgs(o.buildArgs), Labels: labels(o.labels), Version: build.BuilderV1,
	}
	for _, m := range []struct {
		s   string
		dst *int64
	}{{o.memory, &bo.Memory}, {o.memorySwap, &bo.MemorySwap}, {o.shmSize, &bo.ShmSize}} {
		if m.s == "" {
			continue
		}
		if m.s == "-1" {
			*m.dst = -1
			continue
		}
		n, err := units.RAMInBytes(m.s)
		if err != nil {
			return err
		}
		*m.dst = n
	}
	if o.platform != "" {
		p, err := opts.ParsePlatform(o.platform)
		if err != nil {
			return err
		}
		bo.Platforms = []ocispec.Platform{p}
	}

	send := func(stubs bool) (*countingReader, client.ImageBuildResult, error) {
		var body io.Reader
		if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
			// The daemon downloads the context (a tar) or the Dockerfile.
			bo.RemoteContext = path
			bo.Dockerfile = o.file
			body = strings.NewReader("")
		} else {
			var dockerfile string
			var err error
			if body, dockerfile, err = contextFor(ctx, cli, path, o.file, stubs); err != nil {
				return nil, client.ImageBuildResult{}, err
			}
			bo.Dockerfile = dockerfile
		}
		counter := &countingReader{r: body}
		resp, err := cli.Client().ImageBuild(ctx, counter, bo)
		return counter, resp, err
	}
	counter, resp, err := send(true)
	if cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "send the whole context") {
		// berthd lost files it had said it kept: send them all.
		counter, resp, err = send(false)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !o.quiet && bo.RemoteContext == "" {
		fmt.Fprintf(cli.Out(), "Sending build context to Docker daemon  %s\n", units.HumanSizeWithPrecision(float64(counter.n), 4))
	}

	var imageID string
	aux := func(m jsonstream.Message) {
		var r build.Result
		if m.Aux != nil && json.Unmarshal(*m.Aux, &r) == nil && r.ID != "" {
			imageID = r.ID
		}
	}
	out := io.Writer(cli.Out())
	var quietBuf bytes.Buffer
	if o.quiet {
		out = &quietBuf
	}
	fd, isTerm := cli.Out().FD(), cli.Out().IsTerminal() && !o.quiet
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, out, fd, isTerm, aux); err != nil {
		var je *jsonstream.Error
		if errors.As(err, &je) {
			if o.quiet {
				fmt.Fprint(cli.Err(), quietBuf.String())
			}
			code := je.Code
			if code == 0 {
				code = 1
			}
			return command.StatusError{Status: je.Message, StatusCode: code}
		}
		return err
	}
	if o.quiet {
		fmt.Fprint(cli.Out(), quietBuf.String())
	}
	if o.iidfile != "" {
		if imageID == "" {
			return errors.New("server did not provide an image ID: cannot write the image ID file")
		}
		if err := os.WriteFile(o.iidfile, []byte(imageID), 0o666); err != nil {
			return err
		}
	}
	return nil
}

func buildArgs(in []string) map[string]*string {
	out := map[string]*string{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// "--build-arg NAME" takes NAME from the environment.
			if ev, found := os.LookupEnv(k); found {
				out[k] = &ev
			} else {
				out[k] = nil
			}
			continue
		}
		out[k] = &v
	}
	return out
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// contextFor returns the context to send and the Dockerfile's name in it,
// for PATH, "-" (a tar or a Dockerfile on stdin) and -f (a path, or "-"
// for stdin).
func contextFor(ctx context.Context, cli *command.Cli, path, file string, stubs bool) (io.Reader, string, error) {
	if strings.HasPrefix(path, "git@") || strings.HasPrefix(path, "git://") || strings.HasSuffix(path, ".git") {
		return nil, "", errors.New("building from a git repository is not supported yet: clone it and build from its directory")
	}
	if path == "-" {
		if file == "-" {
			return nil, "", errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		return stdinContext(cli.In())
	}
	dir, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: path %q not found", path)
	}
	if !st.IsDir() {
		return nil, "", fmt.Errorf("unable to prepare context: context must be a directory: %s", dir)
	}

	var extra []byte // a Dockerfile from stdin or outside the context
	dockerfile := ""
	switch {
	case file == "-":
		if extra, err = io.ReadAll(cli.In()); err != nil {
			return nil, "", err
		}
	case file != "":
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, "", err
		}
		rel, err := filepath.Rel(dir, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			if extra, err = os.ReadFile(abs); err != nil {
				return nil, "", fmt.Errorf("unable to prepare context: unable to evaluate symlinks in Dockerfile path: %w", err)
			}
		} else {
			dockerfile = filepath.ToSlash(rel)
		}
	default:
		dockerfile = "Dockerfile"
		if _, err := os.Stat(filepath.Join(dir, dockerfile)); err != nil {
			if _, lerr := os.Stat(filepath.Join(dir, "dockerfile")); lerr == nil {
				dockerfile = "dockerfile"
			} else {
				return nil, "", fmt.Errorf("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat %s: no such file or directory", filepath.Join(dir, "Dockerfile"))
			}
		}
	}
	if extra != nil {
		dockerfile = "__dockerfile-" + randomHex()
	}

	excludes, err := readDockerignore(dir)
	if err != nil {
		return nil, "", err
	}
	// The Dockerfile and .dockerignore go to the daemon even when
	// excluded: the daemon needs one and drops both from what COPY sees.
	excludes = keepFiles(excludes, dockerfile, ".dockerignore")
	var tarStream io.Reader
	tarStream, err = archive.TarWithOptions(dir, &archive.TarOptions{
		ExcludePatterns: excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if stubs {
		tarStream = withStubs(ctx, cli, dir, excludes, tarStream)
	}
	if extra == nil {
		return tarStream, dockerfile, nil
	}
	return appendFile(tarStream, dockerfile, extra), dockerfile, nil
}

func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	excludes, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("error reading .dockerignore: %w", err)
	}
	if _, err := patternmatcher.New(excludes); err != nil {
		return nil, fmt.Errorf("error checking context: %w", err)
	}
	return excludes, nil
}

// keepFiles adds exceptions so that names always go into the context.
func keepFiles(excludes []string, names ...string) []string {
	if len(excludes) == 0 {
		return excludes
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if m, _ := patternmatcher.Matches(n, excludes); m {
			excludes = append(excludes, "!"+n)
		}
	}
	return excludes
}

// stdinContext reads a context tar (possibly compressed) or a bare
// Dockerfile from stdin, as `docker build -` does.
func stdinContext(in io.Reader) (io.Reader, string, error) {
	br := bufio.NewReaderSize(in, 1<<16)
	head, _ := br.Peek(512)
	if compression.Detect(head) != compression.None || isTar(head) {
		return br, "", nil
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, "", err
	}
	empty, _ := archive.Generate()
	return appendFile(empty, "Dockerfile", data), "Dockerfile", nil
}

func isTar(b []byte) bool {
	return len(b) >= 262 && (string(b[257:262]) == "ustar")
}

// appendFile returns tarStream with one more file, name, holding data.
func appendFile(tarStream io.Reader, name string, data []byte) io.Reader {
	return archive.ReplaceFileTarWrapper(io.NopCloser(tarStream), map[string]archive.TarModifierFunc{
		name: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			return &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}, data, nil
		},
	})
}

// labels turns --label k=v (or k alone) into a map.
func labels(in []string) map[string]string {
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func randomHex() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}
