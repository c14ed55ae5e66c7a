package container

import (
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// The networks a container is on are its Endpoints, in NetworkOrder. The
// methods below keep the two in step; call them with the container locked.

// PrimaryNetwork is the network a network mode names: "bridge" for the
// default mode, "" for container:<id>, which has no network of its own.
func PrimaryNetwork(mode container.NetworkMode) string {
	switch m := string(mode); {
	case m == "" || m == "default":
		return "bridge"
	case strings.HasPrefix(m, "container:"):
		return ""
	default:
		return m
	}
}

// Networks returns the names of the networks the container is on, in the
// order it joined them. A record from before the order was kept lists its
// network mode's network first, then its other endpoints by name.
func (c *Container) Networks() []string {
	if c.NetworkOrder != nil {
		return slices.Clone(c.NetworkOrder)
	}
	var names []string
	if p := PrimaryNetwork(c.HostConfig.NetworkMode); p != "" {
		names = append(names, p)
	}
	var rest []string
	for name := range c.Endpoints {
		if !slices.Contains(names, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// Endpoint returns the configuration of the container's endpoint on the
// named network, or nil when it is not on it.
func (c *Container) Endpoint(name string) (*network.EndpointSettings, bool) {
	if !slices.Contains(c.Networks(), name) {
		return nil, false
	}
	return c.Endpoints[name], true
}

// SetEndpoint records that the container is on the named network, with
// the endpoint configuration ep; a network it was not on goes last.
func (c *Container) SetEndpoint(name string, ep *network.EndpointSettings) {
	order := c.Networks()
	if !slices.Contains(order, name) {
		order = append(order, name)
	}
	c.NetworkOrder = order
	if ep == nil {
		ep = &network.EndpointSettings{}
	}
	if c.Endpoints == nil {
		c.Endpoints = map[string]*network.EndpointSettings{}
	}
	c.Endpoints[name] = ep
}

// RemoveEndpoint records that the container left the named network; it
// reports whether the container was on it.
func (c *Container) RemoveEndpoint(name string) bool {
	order := c.Networks()
	i := slices.Index(order, name)
	if i < 0 {
		return false
	}
	c.NetworkOrder = slices.Delete(order, i, i+1)
	delete(c.Endpoints, name)
	return true
}
