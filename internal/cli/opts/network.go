package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// NetworkAttachment is one --network value.
type NetworkAttachment struct {
	Target       string
	Aliases      []string
	DriverOpts   map[string]string
	Links        []string
	IPv4Address  netip.Addr
	IPv6Address  netip.Addr
	LinkLocalIPs []netip.Addr
	MacAddress   string
	GwPriority   int
}

// Networks is the repeatable --network flag: a name, or the long syntax
// name=…,alias=…,ip=…,ip6=…,mac-address=…,link-local-ip=…,driver-opt=k=v,gw-priority=n.
type Networks struct{ values []NetworkAttachment }

var longNetworkSyntax = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

// Set parses one --network value.
func (n *Networks) Set(value string) error {
	if !longNetworkSyntax.MatchString(value) {
		n.values = append(n.values, NetworkAttachment{Target: value})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	a := NetworkAttachment{Aliases: []string{}}
	for _, field := range fields {
		key, val, ok := strings.Cut(strings.ToLower(field), "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			a.Target = val
		case "alias":
			a.Aliases = append(a.Aliases, val)
		case "ip":
			if a.IPv4Address, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "ip6":
			if a.IPv6Address, err = netip.ParseAddr(val); err != nil {
				return err
			}
		case "mac-address":
			a.MacAddress = val
		case "link-local-ip":
			ip, err := netip.ParseAddr(val)
			if err != nil {
				return err
			}
			a.LinkLocalIPs = append(a.LinkLocalIPs, ip)
		case "driver-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if a.DriverOpts == nil {
				a.DriverOpts = map[string]string{}
			}
			a.DriverOpts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "gw-priority":
			if a.GwPriority, err = strconv.Atoi(val); err != nil {
				return fmt.Errorf("invalid gw-priority (%s): %w", val, errors.Unwrap(err))
			}
		default:
			return errors.New("invalid field key " + key)
		}
	}
	if a.Target == "" {
		return errors.New("network name/id is not specified")
	}
	n.values = append(n.values, a)
	return nil
}

// Type names the flag's value in help.
func (*Networks) Type() string { return "network" }

func (*Networks) String() string { return "" }

// Value returns the attachments in order.
func (n *Networks) Value() []NetworkAttachment { return n.values }

// Mode is the network mode: the first network, or "default".
func (n *Networks) Mode() string {
	if len(n.values) == 0 {
		return "default"
	}
	return n.values[0].Target
}
