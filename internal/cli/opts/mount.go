package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// Mounts is the repeatable --mount flag (type=…,source=…,target=…).
type Mounts struct{ values []mount.Mount }

// Type names the flag's value in help.
func (*Mounts) Type() string { return "mount" }

func (m *Mounts) String() string {
	s := make([]string, 0, len(m.values))
	for _, v := range m.values {
		s = append(s, fmt.Sprintf("%s %s %s", v.Type, v.Source, v.Target))
	}
	return strings.Join(s, ", ")
}

// Value returns the mounts.
func (m *Mounts) Value() []mount.Mount { return m.values }

// Set parses one mount in docker's CSV syntax; the type defaults to volume.
func (m *Mounts) Set(value string) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	mt := mount.Mount{Type: mount.TypeVolume}
	for _, field := range fields {
		if err := setMountField(&mt, field); err != nil {
			return err
		}
	}
	if err := checkMount(&mt); err != nil {
		return err
	}
	m.values = append(m.values, mt)
	return nil
}

func setMountField(mt *mount.Mount, field string) error {
	key, val, hasValue := strings.Cut(field, "=")
	if k := strings.TrimSpace(key); k != key {
		return fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
	}
	if hasValue {
		v := strings.TrimSpace(val)
		if v == "" {
			return fmt.Errorf("invalid value for '%s': value is empty", key)
		}
		if v != val {
			return fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
		}
	}
	key = strings.ToLower(key)
	if !hasValue {
		switch key {
		case "readonly", "ro", "volume-nocopy", "bind-nonrecursive", "bind-create-src":
		default:
			return fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
	}
	var err error
	switch key {
	case "type":
		mt.Type = mount.Type(strings.ToLower(val))
	case "source", "src":
		mt.Source = val
		if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
			if abs, aerr := filepath.Abs(val); aerr == nil {
				mt.Source = abs
			}
		}
	case "target", "dst", "destination":
		mt.Target = val
	case "readonly", "ro":
		mt.ReadOnly, err = parseBool(key, val, hasValue)
	case "consistency":
		mt.Consistency = mount.Consistency(strings.ToLower(val))
	case "bind-propagation":
		bindOptions(mt).Propagation = mount.Propagation(strings.ToLower(val))
	case "bind-nonrecursive":
		return errors.New("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
	case "bind-recursive":
		switch val {
		case "enabled":
		case "disabled":
			bindOptions(mt).NonRecursive = true
		case "writable":
			bindOptions(mt).ReadOnlyNonRecursive = true
		case "readonly":
			bindOptions(mt).ReadOnlyForceRecursive = true
		default:
			return fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
		}
	case "bind-create-src":
		bindOptions(mt).CreateMountpoint, err = parseBool(key, val, hasValue)
	case "volume-subpath":
		volumeOptions(mt).Subpath = val
	case "volume-nocopy":
		volumeOptions(mt).NoCopy, err = parseBool(key, val, hasValue)
	case "volume-label":
		vo := volumeOptions(mt)
		vo.Labels = putKV(vo.Labels, val)
	case "volume-driver":
		volumeDriver(mt).Name = val
	case "volume-opt":
		d := volumeDriver(mt)
		d.Options = putKV(d.Options, val)
	case "image-subpath":
		if mt.ImageOptions == nil {
			mt.ImageOptions = &mount.ImageOptions{}
		}
		mt.ImageOptions.Subpath = val
	case "tmpfs-size":
		n, serr := units.RAMInBytes(val)
		if serr != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOptions(mt).SizeBytes = n
	case "tmpfs-mode":
		n, perr := strconv.ParseUint(val, 8, 32)
		if perr != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOptions(mt).Mode = os.FileMode(n)
	default:
		return fmt.Errorf("unknown option '%s' in '%s'", key, field)
	}
	return err
}

func checkMount(m *mount.Mount) error {
	if m.Type == "" {
		return errors.New("type is required")
	}
	for _, c := range []struct {
		set  bool
		typ  mount.Type
		name string
	}{
		{m.BindOptions != nil, mount.TypeBind, "bind"},
		{m.VolumeOptions != nil, mount.TypeVolume, "volume"},
		{m.ImageOptions != nil, mount.TypeImage, "image"},
		{m.TmpfsOptions != nil, mount.TypeTmpfs, "tmpfs"},
	} {
		if c.set && m.Type != c.typ {
			return fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", c.name, m.Type)
		}
	}
	if b := m.BindOptions; b != nil {
		if b.ReadOnlyNonRecursive && !m.ReadOnly {
			return errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
		}
		if b.ReadOnlyForceRecursive {
			if !m.ReadOnly {
				return errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
			}
			if b.Propagation != mount.PropagationRPrivate {
				return errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
			}
		}
	}
	return nil
}

func parseBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

func bindOptions(m *mount.Mount) *mount.BindOptions {
	if m.BindOptions == nil {
		m.BindOptions = &mount.BindOptions{}
	}
	return m.BindOptions
}

func volumeOptions(m *mount.Mount) *mount.VolumeOptions {
	if m.VolumeOptions == nil {
		m.VolumeOptions = &mount.VolumeOptions{}
	}
	return m.VolumeOptions
}

func volumeDriver(m *mount.Mount) *mount.Driver {
	vo := volumeOptions(m)
	if vo.DriverConfig == nil {
		vo.DriverConfig = &mount.Driver{}
	}
	return vo.DriverConfig
}

func tmpfsOptions(m *mount.Mount) *mount.TmpfsOptions {
	if m.TmpfsOptions == nil {
		m.TmpfsOptions = &mount.TmpfsOptions{}
	}
	return m.TmpfsOptions
}

func putKV(m map[string]string, kv string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	k, v, _ := strings.Cut(kv, "=")
	m[k] = v
	return m
}
