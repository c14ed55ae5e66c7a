package container

import (
	"github.com/berth-dev/berth/internal/cli/format"
	ctypes "github.com/moby/moby/api/types/container"
)

// DiskUsageRows renders containers as "berth ps" rows for the
// containers section of "berth system df -v": the writable layer's size
// only, as docker shows it there. The header titles the columns.
func DiskUsageRows(items []ctypes.Summary, trunc bool) ([]any, format.Header) {
	rows := make([]any, 0, len(items))
	for _, c := range items {
		c.SizeRootFs = 0
		rows = append(rows, &psRow{c: c, trunc: trunc})
	}
	return rows, psHeader
}
