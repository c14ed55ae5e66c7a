package format

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// TruncateID shortens an ID to 12 characters, dropping an algorithm prefix.
func TruncateID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis shortens s to max runes, the last one an ellipsis.
func Ellipsis(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return string(r[0])
	}
	return string(r[:n-1]) + "…"
}

// Since renders the age of t like "5 seconds ago".
func Since(t time.Time) string {
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// Size renders a byte count with three significant digits ("1.23MB").
func Size(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// Ports renders a container's ports like docker ps: consecutive ports
// grouped into ranges, published ones as host->container.
func Ports(ports []container.PortSummary) string {
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var keys, result, mappings []string
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b container.PortSummary) int {
		return cmp.Or(cmp.Compare(a.PrivatePort, b.PrivatePort), a.IP.Compare(b.IP),
			cmp.Compare(a.PublicPort, b.PublicPort), cmp.Compare(a.Type, b.Type))
	})
	for _, p := range ports {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				host := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", host, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		switch {
		case g == nil:
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			keys = append(keys, key)
		case p.PrivatePort == g.last+1:
			g.last = p.PrivatePort
		default:
			result = append(result, portGroup(key, g.first, g.last))
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
		}
	}
	for _, k := range keys {
		result = append(result, portGroup(k, groups[k].first, groups[k].last))
	}
	return strings.Join(append(result, mappings...), ", ")
}

func portGroup(key string, first, last uint16) string {
	ip, proto, ok := strings.Cut(key, "/")
	if !ok {
		ip, proto = "", key
	}
	r := strconv.Itoa(int(first))
	if first != last {
		r = fmt.Sprintf("%s-%d", r, last)
	}
	if ip != "" {
		r = net.JoinHostPort(ip, r) + "->" + r
	}
	return r + "/" + proto
}
