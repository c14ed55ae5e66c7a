package firewall

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the objects in berth's table (see the package documentation).
const (
	setBridges    = "bridges"
	mapFwdFrom    = "fwd_from"
	setRouted     = "routed"
	mapNATFrom    = "nat_from"
	mapNATTo      = "nat_to"
	mapPorts4     = "ports4"
	mapPorts4Addr = "ports4_addr"

	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPorts       = "ports"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
)

func fwdChain(network string) string { return "fwd-" + network }
func natChain(network string) string { return "nat-" + network }

// Registers: reg 1 is the first 16-byte register; 9 and 10 are the second
// and third 4-byte words of it, where concatenations continue.
const (
	reg1  uint32 = unix.NFT_REG_1
	reg9  uint32 = unix.NFT_REG32_01
	reg10 uint32 = unix.NFT_REG32_02
)

var (
	typePorts4Key  = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	typePorts4Addr = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeDNAT4      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
)

// sets returns the table's sets and maps, unbound to a kernel ID.
func sets(t *nftables.Table) map[string]*nftables.Set {
	return map[string]*nftables.Set{
		setBridges: {Table: t, Name: setBridges, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian},
		setRouted:  {Table: t, Name: setRouted, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian},
		mapFwdFrom: {Table: t, Name: mapFwdFrom, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian,
			DataType: nftables.TypeVerdict},
		mapNATFrom: {Table: t, Name: mapNATFrom, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian,
			DataType: nftables.TypeVerdict},
		mapNATTo: {Table: t, Name: mapNATTo, IsMap: true, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian,
			DataType: nftables.TypeVerdict},
		mapPorts4:     {Table: t, Name: mapPorts4, IsMap: true, KeyType: typePorts4Key, DataType: typeDNAT4},
		mapPorts4Addr: {Table: t, Name: mapPorts4Addr, IsMap: true, KeyType: typePorts4Addr, DataType: typeDNAT4},
	}
}

// ifname pads an interface name as nf_tables compares it (IFNAMSIZ bytes).
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func protoNum(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// be16pad is a port as a concatenation field: big endian, padded to 4 bytes.
func be16pad(p uint16) []byte { return []byte{byte(p >> 8), byte(p), 0, 0} }

// portElement is m's element in mapPorts4 or mapPorts4Addr, and that map's name.
func portElement(m PortMapping) (string, nftables.SetElement) {
	key := append([]byte{protoNum(m.Proto), 0, 0, 0}, be16pad(m.HostPort)...)
	name := mapPorts4
	if m.HostIP.IsValid() {
		a := m.HostIP.As4()
		key = append(a[:], key...)
		name = mapPorts4Addr
	}
	c := m.ContainerIP.As4()
	return name, nftables.SetElement{Key: key, Val: append(c[:], be16pad(m.ContainerPort)...)}
}

// Expression helpers. Each loads into reg1 unless told otherwise.

func meta(k expr.MetaKey, reg uint32) expr.Any { return &expr.Meta{Key: k, Register: reg} }

func cmp(op expr.CmpOp, data []byte) expr.Any {
	return &expr.Cmp{Op: op, Register: reg1, Data: data}
}

func ifaceIs(k expr.MetaKey, name string) []expr.Any {
	return []expr.Any{meta(k, reg1), cmp(expr.CmpOpEq, ifname(name))}
}

func ifaceIsNot(k expr.MetaKey, name string) []expr.Any {
	return []expr.Any{meta(k, reg1), cmp(expr.CmpOpNeq, ifname(name))}
}

func ifaceInSet(k expr.MetaKey, s *nftables.Set) []expr.Any {
	return []expr.Any{meta(k, reg1), &expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID}}
}

func ifaceVmap(k expr.MetaKey, s *nftables.Set) []expr.Any {
	return []expr.Any{meta(k, reg1), &expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID, DestRegister: 0, IsDestRegSet: true}}
}

func ipv4() []expr.Any {
	return []expr.Any{meta(expr.MetaKeyNFPROTO, reg1), cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV4})}
}

// saddrIn matches an IPv4 source address in p (after ipv4()).
func saddrIn(p netip.Prefix) []expr.Any {
	p = p.Masked()
	a := p.Addr().As4()
	m := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		cmp(expr.CmpOpEq, a[:]),
	}
}

// ctBits matches a conntrack key (state or status) having any of bits.
func ctBits(k expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: k, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		cmp(expr.CmpOpNeq, binaryutil.NativeEndian.PutUint32(0)),
	}
}

// ipsDstNAT is IPS_DST_NAT in a conntrack status.
const ipsDstNAT = 1 << 5

func daddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		cmp(expr.CmpOpEq, binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)),
	}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func masq() expr.Any { return &expr.Masq{} }

// dnatVia DNATs to the address and port a lookup of the key in reg1 finds in s.
func dnatVia(s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Lookup{SourceRegister: reg1, SetName: s.Name, SetID: s.ID, DestRegister: reg1, IsDestRegSet: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg9},
	}
}

func rule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(e expr.Any) []expr.Any { return []expr.Any{e} }

// baseRules returns the rules of the table's fixed chains.
func baseRules(s map[string]*nftables.Set) map[string][][]expr.Any {
	l4protoDport := func(first uint32) []expr.Any {
		second := reg9
		if first == reg9 {
			second = reg10
		}
		return []expr.Any{
			meta(expr.MetaKeyL4PROTO, first),
			&expr.Payload{DestRegister: second, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		}
	}
	daddr := &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	return map[string][][]expr.Any{
		chainPrerouting: {rule(daddrLocal(), one(jump(chainPorts)))},
		chainOutput:     {rule(daddrLocal(), one(jump(chainPorts)))},
		chainPorts: {
			rule(ipv4(), one(daddr), l4protoDport(reg9), dnatVia(s[mapPorts4Addr])),
			rule(ipv4(), l4protoDport(reg1), dnatVia(s[mapPorts4])),
		},
		chainPostrouting: {
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setBridges]), ipv4(), saddrIn(netip.MustParsePrefix("127.0.0.0/8")), one(masq())),
			ifaceVmap(expr.MetaKeyIIFNAME, s[mapNATFrom]),
			ifaceVmap(expr.MetaKeyOIFNAME, s[mapNATTo]),
		},
		chainForward: {
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setBridges]), ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), one(verdict(expr.VerdictAccept))),
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setBridges]), ctBits(expr.CtKeySTATUS, ipsDstNAT), one(verdict(expr.VerdictAccept))),
			ifaceVmap(expr.MetaKeyIIFNAME, s[mapFwdFrom]),
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setRouted]), one(verdict(expr.VerdictAccept))),
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setBridges]), one(verdict(expr.VerdictDrop))),
		},
	}
}

// networkRules returns the rules of n's chains, by chain name.
func networkRules(n Network, s map[string]*nftables.Set) map[string][][]expr.Any {
	icc := expr.VerdictAccept
	if !n.ICC {
		icc = expr.VerdictDrop
	}
	out := expr.VerdictAccept
	if n.Internal {
		out = expr.VerdictDrop
	}
	nat := [][]expr.Any{
		// Hairpin: a container reached a published port through a host
		// address and the DNAT sent it back into its own bridge. Keyed on
		// the source subnet, not the input interface: bridged packets (with
		// br_netfilter) have none in postrouting.
		rule(ifaceIs(expr.MetaKeyOIFNAME, n.Bridge), ipv4(), saddrIn(n.Subnet), ctBits(expr.CtKeySTATUS, ipsDstNAT), one(masq())),
	}
	if !n.Internal {
		nat = append(nat, rule(ifaceIsNot(expr.MetaKeyOIFNAME, n.Bridge), ipv4(), saddrIn(n.Subnet), one(masq())))
	}
	return map[string][][]expr.Any{
		natChain(n.Name): nat,
		fwdChain(n.Name): {
			rule(ifaceIs(expr.MetaKeyOIFNAME, n.Bridge), one(verdict(icc))),
			rule(ifaceInSet(expr.MetaKeyOIFNAME, s[setBridges]), one(verdict(expr.VerdictDrop))),
			one(verdict(out)),
		},
	}
}
