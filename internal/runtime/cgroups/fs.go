package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// fileSystem is the small set of operations the managers perform on a
// cgroup filesystem. The kernel-backed implementation is hostFS; unit tests
// substitute an in-memory one to check which files receive which values.
type fileSystem interface {
	// ReadFile returns the content of a cgroup file.
	ReadFile(name string) ([]byte, error)
	// WriteFile writes data to an existing cgroup file. It never creates
	// files: a missing file means the controller or knob is unavailable.
	WriteFile(name, data string) error
	// Mkdir creates one cgroup directory; it reports fs.ErrExist when the
	// directory is already there.
	Mkdir(name string) error
	// Rmdir removes one (empty of sub-cgroups) cgroup directory.
	Rmdir(name string) error
	// Exists reports whether a file or directory exists.
	Exists(name string) bool
	// SubDirs lists the names of the child directories of name.
	SubDirs(name string) ([]string, error)
}

// hostFS is the fileSystem of the running kernel.
type hostFS struct{}

func (hostFS) ReadFile(name string) ([]byte, error) {
	for {
		b, err := os.ReadFile(name)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return b, err
	}
}

func (hostFS) WriteFile(name, data string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		_, err = f.WriteString(data)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", data, name, err)
	}
	return nil
}

func (hostFS) Mkdir(name string) error { return os.Mkdir(name, 0o755) }

func (hostFS) Rmdir(name string) error {
	if err := unix.Rmdir(name); err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

func (hostFS) Exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func (hostFS) SubDirs(name string) ([]string, error) {
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, nil
}

// readString reads a cgroup file and trims surrounding white space.
func readString(fsys fileSystem, name string) (string, error) {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
