package firewall

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Firewall for the daemon's unit tests. It validates
// and refuses exactly what the nftables implementation does, records every
// call, and exposes the resulting state.
type Fake struct {
	// Fail, when set, is asked before each call (named as in Calls); a
	// non-nil error fails that call without changing the state.
	Fail func(call string) error

	mu      sync.Mutex
	calls   []string
	st      state
	deleted bool
}

var _ Firewall = (*Fake)(nil)

// NewFake returns a Fake whose table does not exist yet (Reset it first).
func NewFake() *Fake { return &Fake{} }

func (f *Fake) begin(call string) error {
	f.calls = append(f.calls, call)
	if f.Fail != nil {
		return f.Fail(call)
	}
	return nil
}

// Reset implements Firewall.
func (f *Fake) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Reset"); err != nil {
		return err
	}
	f.st.reset()
	f.deleted = false
	return nil
}

// AddNetwork implements Firewall.
func (f *Fake) AddNetwork(n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("AddNetwork " + n.Name); err != nil {
		return err
	}
	if err := f.st.checkNetwork(n); err != nil {
		return err
	}
	f.st.networks[n.Name] = n
	return nil
}

// RemoveNetwork implements Firewall.
func (f *Fake) RemoveNetwork(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("RemoveNetwork " + name); err != nil {
		return err
	}
	if !f.st.ready {
		return errNotReady
	}
	delete(f.st.networks, name)
	return nil
}

// AddPorts implements Firewall.
func (f *Fake) AddPorts(owner string, ms []PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("AddPorts " + owner); err != nil {
		return err
	}
	ms, err := f.st.checkPorts(owner, ms)
	if err != nil {
		return err
	}
	f.st.addPorts(owner, ms)
	return nil
}

// RemovePorts implements Firewall.
func (f *Fake) RemovePorts(owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("RemovePorts " + owner); err != nil {
		return err
	}
	if !f.st.ready {
		return errNotReady
	}
	f.st.removePorts(owner)
	return nil
}

// Delete implements Firewall.
func (f *Fake) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Delete"); err != nil {
		return err
	}
	f.st = state{}
	f.deleted = true
	return nil
}

// Calls returns the calls made so far, such as "AddPorts c1", in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Ready reports whether the table exists (Reset and no Delete since).
func (f *Fake) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.ready
}

// Deleted reports whether the last of Reset and Delete was Delete.
func (f *Fake) Deleted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deleted
}

// Networks returns the networks set up, sorted by name.
func (f *Fake) Networks() []Network {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.networkList()
}

// Ports returns the mappings published for owner, normalized (an
// unspecified host address becomes the zero netip.Addr), in the order added.
func (f *Fake) Ports(owner string) []PortMapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.st.ports[owner])
}

// Published returns every published port as "hostip:port/proto owner"
// ("*" for all addresses), sorted: a compact view for assertions.
func (f *Fake) Published() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, owner := range f.st.used {
		host := "*"
		if k.hostIP.IsValid() {
			host = k.hostIP.String()
		}
		out = append(out, fmt.Sprintf("%s:%d/%s %s", host, k.port, k.proto, owner))
	}
	slices.SortFunc(out, strings.Compare)
	return out
}
