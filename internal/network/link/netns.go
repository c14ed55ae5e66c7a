package link

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNetns creates a network namespace that outlives its processes, like
// `ip netns add`: the namespace is bind-mounted on path (its directory is
// created). Its loopback interface is up.
func NewNetns(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) {
		// An empty file is what a crash between creation and mount
		// leaves; a mounted namespace is a real conflict.
		if isNetns(path) {
			return fmt.Errorf("network namespace %s: %w", path, errdefs.ErrAlreadyExists)
		}
	} else if err != nil {
		return err
	} else {
		f.Close()
	}
	if err := mountNewNetns(path); err != nil {
		os.Remove(path)
		return fmt.Errorf("creating network namespace %s: %w", path, err)
	}
	if err := loUp(path); err != nil {
		DeleteNetns(path)
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nil
}

// mountNewNetns unshares a new network namespace on a thread of its own,
// bind-mounts it on path and takes the thread back to its namespace. If
// it cannot go back, the thread stays locked and dies with its goroutine:
// no other goroutine ever runs in the new namespace, and no thread keeps
// it alive.
func mountNewNetns(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		err = unix.Mount(src, path, "", unix.MS_BIND, "")
		if rerr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); rerr == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

func loUp(path string) error {
	h, err := handleAt(path)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// handleAt opens a netlink handle in the network namespace at path.
func handleAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// isNetns reports whether path is a network namespace (a mounted nsfs file).
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// DeleteNetns unmounts the namespace at path and removes the file; the
// namespace goes away with its last process. An absent path is not an
// error.
func DeleteNetns(path string) error {
	// Mounted twice over is possible after a race; take off every layer.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more), or absent
		}
		if err != nil {
			return fmt.Errorf("unmounting network namespace %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
