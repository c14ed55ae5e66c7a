package container

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestPrimaryNetwork(t *testing.T) {
	for mode, want := range map[container.NetworkMode]string{
		"": "bridge", "default": "bridge", "bridge": "bridge", "host": "host", "none": "none", "front": "front", "container:abc": "",
	} {
		if got := PrimaryNetwork(mode); got != want {
			t.Errorf("PrimaryNetwork(%q) = %q, want %q", mode, got, want)
		}
	}
}

func TestNetworks(t *testing.T) {
	ep := func(alias string) *network.EndpointSettings {
		return &network.EndpointSettings{Aliases: []string{alias}}
	}
	for _, tc := range []struct {
		name      string
		mode      container.NetworkMode
		order     []string
		endpoints map[string]*network.EndpointSettings
		want      []string
	}{
		{"record from before the order, default mode", "default", nil, nil, []string{"bridge"}},
		{"record from before the order, --ip on its network", "front", nil, map[string]*network.EndpointSettings{"front": ep("a")}, []string{"front"}},
		{"record from before the order, two networks", "front", nil, map[string]*network.EndpointSettings{"zz": ep("z"), "back": ep("b")}, []string{"front", "back", "zz"}},
		{"container: mode", "container:abc", nil, nil, nil},
		{"ordered", "front", []string{"front", "zz", "back"}, nil, []string{"front", "zz", "back"}},
		{"left every network", "front", []string{}, nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Container{HostConfig: &container.HostConfig{NetworkMode: tc.mode}, NetworkOrder: tc.order, Endpoints: tc.endpoints}
			if got := c.Networks(); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("Networks() = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestSetRemoveEndpoint(t *testing.T) {
	c := &Container{HostConfig: &container.HostConfig{NetworkMode: "front"}}
	c.SetEndpoint("back", &network.EndpointSettings{NetworkID: "b"})
	c.SetEndpoint("side", nil)
	c.SetEndpoint("back", &network.EndpointSettings{NetworkID: "b2"}) // replaced in place
	if got := c.Networks(); !slices.Equal(got, []string{"front", "back", "side"}) {
		t.Fatalf("after SetEndpoint: %q", got)
	}
	if es, ok := c.Endpoint("back"); !ok || es.NetworkID != "b2" {
		t.Errorf("Endpoint(back) = %+v, %v", es, ok)
	}
	if es, ok := c.Endpoint("front"); !ok || es != nil {
		t.Errorf("Endpoint(front) = %+v, %v: on it, without configuration", es, ok)
	}
	if _, ok := c.Endpoint("nope"); ok {
		t.Error("Endpoint(nope) found")
	}
	if c.RemoveEndpoint("nope") {
		t.Error("removed a network the container is not on")
	}
	for _, name := range []string{"front", "side", "back"} {
		if !c.RemoveEndpoint(name) {
			t.Fatalf("RemoveEndpoint(%s) = false", name)
		}
	}
	if c.Endpoints["back"] != nil || len(c.Endpoints) != 0 {
		t.Errorf("endpoints left: %v", c.Endpoints)
	}
	// Having left every network survives a save: not read back as a
	// record from before the order.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Container
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	back.HostConfig = c.HostConfig
	if got := back.Networks(); got == nil || len(got) != 0 {
		t.Errorf("after a round trip: %#v, want no network", got)
	}
}
