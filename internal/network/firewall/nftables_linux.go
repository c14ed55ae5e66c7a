package firewall

import (
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Option configures New.
type Option func(*nft)

// WithNetNS programs the table in the network namespace open at fd instead
// of the caller's. The fd must stay open while the Firewall is used.
func WithNetNS(fd int) Option { return func(f *nft) { f.netns = fd; f.hasNetNS = true } }

// nft is the Firewall over nf_tables.
type nft struct {
	mu       sync.Mutex
	table    *nftables.Table
	netns    int
	hasNetNS bool
	st       state
}

var _ Firewall = (*nft)(nil)

// New returns the Firewall that programs the inet table named table
// (DefaultTable if empty). It does not touch the kernel: call Reset.
func New(table string, opts ...Option) (Firewall, error) {
	if table == "" {
		table = DefaultTable
	}
	if len(table) > 200 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("firewall: table name too long: %q", table))
	}
	f := &nft{table: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// batch runs fill on a new connection and sends what it queued as one
// netlink transaction.
func (f *nft) batch(what string, fill func(c *nftables.Conn) error) error {
	var opts []nftables.ConnOption
	if f.hasNetNS {
		opts = append(opts, nftables.WithNetNSFd(f.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("firewall: %s: %w", what, err)
	}
	if err := fill(c); err != nil {
		return fmt.Errorf("firewall: %s: %w", what, err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: %s: %w", what, err)
	}
	return nil
}

func (f *nft) addRules(c *nftables.Conn, chain *nftables.Chain, rules [][]expr.Any) {
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: f.table, Chain: chain, Exprs: r})
	}
}

// Reset implements Firewall: delete (if present) and recreate the table
// with its fixed chains and empty sets, in one transaction.
func (f *nft) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.table
	err := f.batch("reset table "+t.Name, func(c *nftables.Conn) error {
		c.AddTable(t) // so that the delete cannot fail on a missing table
		c.DelTable(t)
		c.AddTable(t)
		s := sets(t)
		for _, name := range []string{setBridges, setRouted, mapFwdFrom, mapNATFrom, mapNATTo, mapPorts4, mapPorts4Addr} {
			if err := c.AddSet(s[name], nil); err != nil {
				return err
			}
		}
		accept := nftables.ChainPolicyAccept
		chains := map[string]*nftables.Chain{
			chainPrerouting: {Name: chainPrerouting, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
			chainOutput: {Name: chainOutput, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
			chainPostrouting: {Name: chainPostrouting, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
			chainForward: {Name: chainForward, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
			chainPorts: {Name: chainPorts},
		}
		// Regular chains first: the base chains jump to them.
		for _, name := range []string{chainPorts, chainPrerouting, chainOutput, chainPostrouting, chainForward} {
			ch := chains[name]
			ch.Table = t
			c.AddChain(ch)
		}
		rules := baseRules(s)
		for _, name := range []string{chainPorts, chainPrerouting, chainOutput, chainPostrouting, chainForward} {
			f.addRules(c, chains[name], rules[name])
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.st.reset()
	return nil
}

// Delete implements Firewall.
func (f *nft) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.batch("delete table "+f.table.Name, func(c *nftables.Conn) error {
		c.AddTable(f.table)
		c.DelTable(f.table)
		return nil
	})
	if err != nil {
		return err
	}
	f.st = state{}
	return nil
}

// AddNetwork implements Firewall.
func (f *nft) AddNetwork(n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.st.checkNetwork(n); err != nil {
		return err
	}
	err := f.batch("add network "+n.Name, func(c *nftables.Conn) error {
		s := sets(f.table)
		rules := networkRules(n, s)
		for _, name := range []string{natChain(n.Name), fwdChain(n.Name)} {
			ch := c.AddChain(&nftables.Chain{Table: f.table, Name: name})
			f.addRules(c, ch, rules[name])
		}
		key := ifname(n.Bridge)
		if err := c.SetAddElements(s[setBridges], []nftables.SetElement{{Key: key}}); err != nil {
			return err
		}
		if n.Routed {
			if err := c.SetAddElements(s[setRouted], []nftables.SetElement{{Key: key}}); err != nil {
				return err
			}
		}
		if err := c.SetAddElements(s[mapFwdFrom], []nftables.SetElement{{Key: key,
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: fwdChain(n.Name)}}}); err != nil {
			return err
		}
		for _, m := range []string{mapNATFrom, mapNATTo} {
			if err := c.SetAddElements(s[m], []nftables.SetElement{{Key: key,
				VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: natChain(n.Name)}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.st.networks[n.Name] = n
	return nil
}

// RemoveNetwork implements Firewall.
func (f *nft) RemoveNetwork(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.st.ready {
		return errNotReady
	}
	n, ok := f.st.networks[name]
	if !ok {
		return nil
	}
	err := f.batch("remove network "+name, func(c *nftables.Conn) error {
		s := sets(f.table)
		key := []nftables.SetElement{{Key: ifname(n.Bridge)}}
		for _, set := range []string{setBridges, mapFwdFrom, mapNATFrom, mapNATTo} {
			if err := c.SetDeleteElements(s[set], key); err != nil {
				return err
			}
		}
		if n.Routed {
			if err := c.SetDeleteElements(s[setRouted], key); err != nil {
				return err
			}
		}
		for _, ch := range []string{natChain(name), fwdChain(name)} {
			chain := &nftables.Chain{Table: f.table, Name: ch}
			c.FlushChain(chain)
			c.DelChain(chain)
		}
		return nil
	})
	if err != nil {
		return err
	}
	delete(f.st.networks, name)
	return nil
}

// portElements groups the elements of ms by map.
func portElements(ms []PortMapping) map[string][]nftables.SetElement {
	out := map[string][]nftables.SetElement{}
	for _, m := range ms {
		name, e := portElement(m)
		out[name] = append(out[name], e)
	}
	return out
}

func (f *nft) portBatch(what string, ms []PortMapping, op func(c *nftables.Conn, s *nftables.Set, e []nftables.SetElement) error) error {
	return f.batch(what, func(c *nftables.Conn) error {
		s := sets(f.table)
		for name, elems := range portElements(ms) {
			if err := op(c, s[name], elems); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddPorts implements Firewall.
func (f *nft) AddPorts(owner string, ms []PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms, err := f.st.checkPorts(owner, ms)
	if err != nil || len(ms) == 0 {
		return err
	}
	if err := f.portBatch("publish ports of "+owner, ms, (*nftables.Conn).SetAddElements); err != nil {
		return err
	}
	f.st.addPorts(owner, ms)
	return nil
}

// RemovePorts implements Firewall.
func (f *nft) RemovePorts(owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.st.ready {
		return errNotReady
	}
	ms := f.st.ports[owner]
	if len(ms) == 0 {
		return nil
	}
	if err := f.portBatch("unpublish ports of "+owner, ms, (*nftables.Conn).SetDeleteElements); err != nil {
		return err
	}
	f.st.removePorts(owner)
	return nil
}
