package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a spec mount's option list translated for mount(2).
type mountOptions struct {
	// Flags are the MS_* flags the options set.
	Flags uintptr
	// Cleared are the MS_* flags an option explicitly cleared ("rw",
	// "suid", "atime", ...): a bind remount must not add them back even when
	// the source mount has them locked.
	Cleared uintptr
	// Propagation holds one MS_* propagation change per propagation option,
	// applied in order after the mount itself.
	Propagation []uintptr
	// Data is every other option, comma-joined, for the filesystem.
	Data string
	// TmpCopyUp asks for the destination's contents to be copied into a
	// freshly mounted tmpfs.
	TmpCopyUp bool
}

// atimeFlags are the per-mount access time flags; mount(2) treats "none of
// them" as "relatime" on a new mount and as "keep the current one" on a
// remount.
const atimeFlags = unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// perMountFlags are the flags a MS_BIND|MS_REMOUNT call can change.
const perMountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	atimeFlags | unix.MS_NOSYMFOLLOW

type flagOption struct {
	clear bool
	flag  uintptr
}

// flagOptions are the fstab-style options that map onto mount flags.
var flagOptions = map[string]flagOption{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"nosuid":        {false, unix.MS_NOSUID},
	"suid":          {true, unix.MS_NOSUID},
	"nodev":         {false, unix.MS_NODEV},
	"dev":           {true, unix.MS_NODEV},
	"noexec":        {false, unix.MS_NOEXEC},
	"exec":          {true, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"atime":         {true, unix.MS_NOATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"iversion":      {false, unix.MS_I_VERSION},
	"noiversion":    {true, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"silent":        {false, unix.MS_SILENT},
	"loud":          {true, unix.MS_SILENT},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
}

// propagationOptions map the propagation options onto their MS_* change.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions translates a spec mount's options. Later options win
// over earlier ones for the same flag.
func parseMountOptions(options []string) mountOptions {
	var (
		o    mountOptions
		data []string
	)
	for _, opt := range options {
		if opt == "" {
			continue
		}
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.Flags &^= f.flag
				o.Cleared |= f.flag
			} else {
				o.Flags |= f.flag
				o.Cleared &^= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[opt]; ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if opt == "tmpcopyup" {
			o.TmpCopyUp = true
			continue
		}
		data = append(data, opt)
	}
	o.Data = strings.Join(data, ",")
	return o
}

// bindRemountFlags returns the flags of the MS_BIND|MS_REMOUNT call that
// applies o to a fresh bind mount, and whether such a call is needed at all
// (a plain bind ignores everything but MS_REC).
func (o mountOptions) bindRemountFlags() (uintptr, bool) {
	flags := o.Flags & perMountFlags
	atimeCleared := o.Cleared&atimeFlags != 0 && flags&atimeFlags == 0
	if flags == 0 && !atimeCleared {
		return 0, false
	}
	if atimeCleared {
		// "atime", "norelatime", "nostrictatime" and friends ask for the
		// kernel's default rather than "whatever the source had": without
		// an explicit flag the remount would keep the source's atime mode.
		flags |= unix.MS_RELATIME
	}
	return unix.MS_BIND | unix.MS_REMOUNT | flags, true
}

// rootPropagation maps spec.Linux.RootfsPropagation to the flags of the
// first mount call on "/".
func rootPropagation(s string) (uintptr, error) {
	if s == "" {
		return unix.MS_REC | unix.MS_PRIVATE, nil
	}
	if p, ok := propagationOptions[s]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown rootfs propagation %q", s)
}

// statfsToMountFlags translates statfs(2) f_flags (ST_*) into the MS_*
// per-mount flags they stand for; ST_RELATIME is not MS_RELATIME, and
// strictatime shows as the absence of both ST_NOATIME and ST_RELATIME.
func statfsToMountFlags(st int64) uintptr {
	var f uintptr
	for _, m := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{stNoSymfollow, unix.MS_NOSYMFOLLOW},
	} {
		if st&m.st != 0 {
			f |= m.ms
		}
	}
	if f&(unix.MS_NOATIME|unix.MS_RELATIME) == 0 {
		f |= unix.MS_STRICTATIME
	}
	return f
}

// stNoSymfollow is ST_NOSYMFOLLOW from statfs(2) (Linux 5.10).
const stNoSymfollow = 0x2000
