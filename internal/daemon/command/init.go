package command

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// initBinary returns the function that gives --init containers their
// reaper: a copy of berthd's own static binary, which runs as berth-init
// when started under that name. A copy, not the binary itself: the
// runtime refuses to execute its own binary inside a container, and a
// container must never be able to reach the daemon's executable.
func initBinary(execRoot string) func() (string, error) {
	var (
		once sync.Once
		path string
		err  error
	)
	return func() (string, error) {
		once.Do(func() { path, err = copySelf(filepath.Join(execRoot, "berth-init")) })
		return path, err
	}
}

func copySelf(dst string) (string, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".berth-init-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copying the init binary: %w", err)
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}
