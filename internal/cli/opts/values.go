// Package opts holds the CLI's flag value types and the parsers and
// validators behind them, with docker's syntax and messages.
package opts

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Validator checks and may normalise one flag value.
type Validator func(string) (string, error)

// List is a repeatable string flag with an optional validator.
type List struct {
	values   []string
	validate Validator
}

// NewList returns a List validated by v (nil for none).
func NewList(v Validator) List { return List{validate: v} }

// Set adds a value.
func (l *List) Set(v string) error {
	if l.validate != nil {
		var err error
		if v, err = l.validate(v); err != nil {
			return err
		}
	}
	l.values = append(l.values, v)
	return nil
}

func (l *List) String() string {
	if len(l.values) == 0 {
		return ""
	}
	return "[" + strings.Join(l.values, " ") + "]"
}

// Type names the flag's value in help.
func (*List) Type() string { return "list" }

// Values returns the values in order (nil when none).
func (l *List) Values() []string { return l.values }

// OrEmpty returns the values, never nil.
func (l *List) OrEmpty() []string {
	if l.values == nil {
		return []string{}
	}
	return l.values
}

// Len is the number of values.
func (l *List) Len() int { return len(l.values) }

// Has reports whether v was given.
func (l *List) Has(v string) bool {
	for _, x := range l.values {
		if x == v {
			return true
		}
	}
	return false
}

// Map is a repeatable key=value flag.
type Map struct {
	values   map[string]string
	validate Validator
}

// NewMap returns a Map validated by v (nil for none).
func NewMap(v Validator) *Map { return &Map{values: map[string]string{}, validate: v} }

// Set adds key=value (a bare key maps to "").
func (m *Map) Set(v string) error {
	if m.validate != nil {
		var err error
		if v, err = m.validate(v); err != nil {
			return err
		}
	}
	k, val, _ := strings.Cut(v, "=")
	m.values[k] = val
	return nil
}

func (m *Map) String() string {
	if len(m.values) == 0 {
		return ""
	}
	return fmt.Sprintf("map%v", m.values)
}

// Type names the flag's value in help.
func (*Map) Type() string { return "map" }

// Values returns the map.
func (m *Map) Values() map[string]string { return m.values }

// Filter is a repeatable key=value filter flag.
type Filter struct{ filters client.Filters }

// NewFilter returns an empty filter flag.
func NewFilter() Filter { return Filter{filters: client.Filters{}} }

// Set adds one key=value filter.
func (f *Filter) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if f.filters == nil {
		f.filters = client.Filters{}
	}
	f.filters.Add(k, strings.TrimSpace(val))
	return nil
}

func (f *Filter) String() string {
	if len(f.filters) == 0 {
		return ""
	}
	b, _ := json.Marshal(f.filters)
	return string(b)
}

// Type names the flag's value in help.
func (*Filter) Type() string { return "filter" }

// Value returns the filters.
func (f *Filter) Value() client.Filters {
	if f.filters == nil {
		return client.Filters{}
	}
	return f.filters
}

// MemBytes is a size in bytes written like "512m" or "1.5GB".
type MemBytes int64

// Set parses a size.
func (m *MemBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = MemBytes(n)
	return err
}

func (m *MemBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

// Type names the flag's value in help.
func (*MemBytes) Type() string { return "bytes" }

// Value returns the size.
func (m *MemBytes) Value() int64 { return int64(*m) }

// MemSwapBytes is a size that also accepts -1 (unlimited).
type MemSwapBytes int64

// Set parses a size or -1.
func (m *MemSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	return (*MemBytes)(m).Set(v)
}

func (m *MemSwapBytes) String() string { return (*MemBytes)(m).String() }

// Type names the flag's value in help.
func (*MemSwapBytes) Type() string { return "bytes" }

// Value returns the size.
func (m *MemSwapBytes) Value() int64 { return int64(*m) }

// NanoCPUs is a CPU count in billionths written as a decimal ("1.5").
type NanoCPUs int64

// Set parses a decimal CPU count.
func (c *NanoCPUs) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	*c = NanoCPUs(n.Num().Int64())
	return nil
}

func (c *NanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

// Type names the flag's value in help.
func (*NanoCPUs) Type() string { return "decimal" }

// Value returns the count in billionths.
func (c *NanoCPUs) Value() int64 { return int64(*c) }

// Ulimits is a repeatable name=soft[:hard] flag.
type Ulimits struct{ values map[string]*container.Ulimit }

// NewUlimits returns an empty ulimit flag.
func NewUlimits() *Ulimits { return &Ulimits{values: map[string]*container.Ulimit{}} }

// Set parses one ulimit; a later one for the same name wins.
func (u *Ulimits) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	u.values[l.Name] = l
	return nil
}

func (u *Ulimits) String() string {
	if len(u.values) == 0 {
		return ""
	}
	out := make([]string, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l.String())
	}
	return fmt.Sprintf("%v", out)
}

// Type names the flag's value in help.
func (*Ulimits) Type() string { return "ulimit" }

// Values returns the ulimits (nil when none).
func (u *Ulimits) Values() []*container.Ulimit {
	var out []*container.Ulimit
	for _, l := range u.values {
		out = append(out, l)
	}
	return out
}
