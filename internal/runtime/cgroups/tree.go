package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// collectPids reads cgroup.procs of dir and all its descendants.
func collectPids(fsys fileSystem, dir string) ([]int, error) {
	seen := map[int]bool{}
	var walk func(string) error
	walk = func(d string) error {
		b, err := fsys.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			return fmt.Errorf("list processes: %w", err)
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("list processes: bad pid %q in %s", f, d)
			}
			seen[pid] = true
		}
		subs, err := fsys.SubDirs(d)
		if err != nil {
			return fmt.Errorf("list processes: %w", err)
		}
		for _, s := range subs {
			if err := walk(filepath.Join(d, s)); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // removed while walking
				}
				return err
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids, nil
}

// removeCgroup removes dir and its sub-cgroups, deepest first. A missing
// directory counts as removed. EBUSY, which the kernel reports for a
// moment after the last process has exited, is retried with a short
// backoff; a cgroup that still lists processes fails at once.
func removeCgroup(fsys fileSystem, dir string) error {
	var err error
	delay := 10 * time.Millisecond
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		if err = removeTree(fsys, dir); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}

// errPopulated reports a cgroup that cannot be removed because processes
// are still in it.
var errPopulated = errors.New("cgroup still has processes")

func removeTree(fsys fileSystem, dir string) error {
	subs, err := fsys.SubDirs(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := removeTree(fsys, filepath.Join(dir, s)); err != nil {
			return err
		}
	}
	err = fsys.Rmdir(dir)
	switch {
	case err == nil, errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, unix.EBUSY):
		if procs, rerr := readString(fsys, filepath.Join(dir, "cgroup.procs")); rerr == nil && procs != "" {
			return fmt.Errorf("%s: %w", dir, errPopulated)
		}
	}
	return err
}

// mkdirAll creates dir and every missing parent below (and excluding) root.
// Each level, whether it was created or already existed, is passed to visit,
// parents first, which lets the cpuset and v2 controller code prepare a level
// before its child is made.
func mkdirAll(fsys fileSystem, root, dir string, visit func(string) error) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("cgroup %s is not below %s", dir, root)
	}
	if rel == "." {
		return nil
	}
	cur := root
	for _, elem := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, elem)
		if err := fsys.Mkdir(cur); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", cur, err)
		}
		if visit != nil {
			if err := visit(cur); err != nil {
				return err
			}
		}
	}
	return nil
}
