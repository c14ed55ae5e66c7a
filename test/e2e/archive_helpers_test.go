package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// pipeline runs `docker A... | docker B...` against the daemon and
// returns B's stdout and both stderrs.
func (c *dockerCLI) pipeline(a, b []string) (string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := exec.CommandContext(ctx, c.bin, a...)
	second := exec.CommandContext(ctx, c.bin, b...)
	first.Env, second.Env = c.d.Env(), c.d.Env()
	r, w := io.Pipe()
	var out, errA, errB bytes.Buffer
	first.Stdout, first.Stderr = w, &errA
	second.Stdin, second.Stdout, second.Stderr = r, &out, &errB
	if err := first.Start(); err != nil {
		c.t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		c.t.Fatal(err)
	}
	errFirst := first.Wait()
	w.Close()
	errSecond := second.Wait()
	if errFirst != nil || errSecond != nil {
		c.t.Fatalf("docker %s | docker %s: %v / %v (stderr %q / %q)",
			strings.Join(a, " "), strings.Join(b, " "), errFirst, errSecond, errA.String(), errB.String())
	}
	return out.String(), errA.String() + errB.String()
}

// savedArchive is an image archive read into memory.
type savedArchive struct {
	files map[string][]byte
	order []string
}

func readSavedArchive(t *testing.T, path string) *savedArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &savedArchive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.files[h.Name] = data
		a.order = append(a.order, h.Name)
	}
	return a
}

// manifest decodes manifest.json.
func (a *savedArchive) manifest(t *testing.T) []struct {
	Config   string
	RepoTags []string
	Layers   []string
} {
	t.Helper()
	var m []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(a.files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v: %s", err, a.files["manifest.json"])
	}
	return m
}

// checkBlobs fails unless every blob's content hashes to its name.
func (a *savedArchive) checkBlobs(t *testing.T) {
	t.Helper()
	n := 0
	for name, data := range a.files {
		hex, ok := strings.CutPrefix(name, "blobs/sha256/")
		if !ok {
			continue
		}
		n++
		if got := digest.FromBytes(data).Encoded(); got != hex {
			t.Errorf("blob %s hashes to %s", name, got)
		}
	}
	if n == 0 {
		t.Error("no blobs in the archive")
	}
}

// rewriteArchive writes a copy of a into dir/name with the files in
// replace changed or added.
func rewriteArchive(t *testing.T, dir, name string, a *savedArchive, replace map[string][]byte) string {
	t.Helper()
	p := dir + "/" + name
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	names := append([]string{}, a.order...)
	for n := range replace {
		if _, ok := a.files[n]; !ok {
			names = append([]string{n}, names...)
		}
	}
	for _, n := range names {
		data, ok := replace[n]
		if !ok {
			data = a.files[n]
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha256Hex(b []byte) string { return digest.FromBytes(b).Encoded() }

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
