package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BlockedAddressError reports a delivery address that the SSRF guard
// rejects: one inside the operator's own network rather than on the public
// internet.
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string
}

// Error describes the address and why it is blocked.
func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("address %s is %s", e.Addr, e.Reason)
}

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blockedRanges lists the address ranges deliveries never reach, from the
// IANA IPv4 and IPv6 special-purpose registries plus the cloud metadata
// addresses. More specific entries come first so that their reason wins.
var blockedRanges = func() []blockedRange {
	entries := []struct{ cidr, reason string }{
		{"169.254.169.254/32", "a cloud metadata address"},
		{"168.63.129.16/32", "a cloud metadata address"},
		{"fd00:ec2::254/128", "a cloud metadata address"},
		{"0.0.0.0/8", "an unspecified address"},
		{"10.0.0.0/8", "a private address"},
		{"100.64.0.0/10", "a carrier-grade NAT address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private address"},
		{"192.0.0.0/24", "an IETF protocol assignment"},
		{"192.0.2.0/24", "a documentation address"},
		{"192.88.99.0/24", "a 6to4 relay address"},
		{"192.168.0.0/16", "a private address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"198.51.100.0/24", "a documentation address"},
		{"203.0.113.0/24", "a documentation address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "an unspecified address"},
		{"::1/128", "a loopback address"},
		{"100::/64", "a discard-only address"},
		{"2001::/32", "a Teredo tunnel address"},
		{"2001:db8::/32", "a documentation address"},
		{"fc00::/7", "a private address"},
		{"fe80::/10", "a link-local address"},
		{"fec0::/10", "a site-local address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]blockedRange, len(entries))
	for i, e := range entries {
		out[i] = blockedRange{prefix: netip.MustParsePrefix(e.cidr), reason: e.reason}
	}
	return out
}()

// Prefixes of IPv6 forms that embed an IPv4 address.
var (
	// IPv4-compatible addresses (deprecated, ::a.b.c.d) and IPv4-translated
	// addresses (::ffff:0:a.b.c.d, in ::ffff:0:0:0/96) reach the embedded address on hosts that
	// route them.
	compatPrefix     = netip.MustParsePrefix("::/96")
	translatedPrefix = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64Prefix      = netip.MustParsePrefix("64:ff9b::/96")
	nat64LocalPrefix = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFourPrefix  = netip.MustParsePrefix("2002::/16")
)

// CheckAddr returns a *BlockedAddressError when a is an address deliveries
// must not reach: loopback, private, link-local, carrier-grade NAT,
// multicast, unspecified, reserved or cloud metadata. IPv6 forms that embed
// an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 and
// 6to4) are judged by that address.
// An IPv6 zone is ignored.
func CheckAddr(a netip.Addr) error {
	// netip.Prefix.Contains never matches an address with a zone.
	a = a.WithZone("")
	orig := a
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case compatPrefix.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback(),
			translatedPrefix.Contains(a),
			nat64Prefix.Contains(a), nat64LocalPrefix.Contains(a):
			a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFourPrefix.Contains(a):
			a = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			reason := r.reason
			if a != orig {
				reason += " (embedded in " + orig.String() + ")"
			}
			return &BlockedAddressError{Addr: a, Reason: reason}
		}
	}
	return nil
}

// guardedDialer returns a dialer whose connections to blocked addresses
// fail before they are made. The check runs on the address actually
// dialled, after DNS resolution, so a name that resolves to an internal
// address, or changes its answer between validation and delivery, cannot
// pass.
func guardedDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("dial %q: not an IP address", host)
			}
			return CheckAddr(a.WithZone(""))
		},
	}
}

// checkHost rejects a URL host that names a blocked address: an IP literal
// in any notation that resolvers accept (dotted, decimal, octal or hex
// IPv4, or IPv6), "localhost", or a name that resolves to a blocked
// address. A name that does not resolve is accepted, because DNS may be
// unavailable at the moment; the dial-time check still applies.
func checkHost(ctx context.Context, host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return &BlockedAddressError{Addr: netip.MustParseAddr("127.0.0.1"), Reason: "a loopback address (localhost)"}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return CheckAddr(a.WithZone(""))
	}
	if a, ok := parseLegacyIPv4(host); ok {
		return CheckAddr(a)
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// parseLegacyIPv4 parses the IPv4 notations of inet_aton that
// netip.ParseAddr rejects: one to four parts, each decimal, octal (leading
// 0) or hex (leading 0x), with the last part filling the remaining bytes,
// as in "2130706433", "0x7f.1" or "0177.0.0.1".
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		// strconv.ParseUint with base 0 also accepts 0b, 0o and
		// underscores, which inet_aton rejects.
		lower := strings.ToLower(p)
		if strings.Contains(p, "_") || strings.HasPrefix(lower, "0b") || strings.HasPrefix(lower, "0o") {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// isBlocked reports whether err comes from the SSRF guard.
func isBlocked(err error) bool {
	var be *BlockedAddressError
	return errors.As(err, &be)
}
