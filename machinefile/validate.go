package machinefile

import (
	"net/netip"
	"strings"
)

// validName accepts RFC 1123 host names, loosened to allow '_' (common on
// internal networks), and IPv4 addresses. Beyond catching typos, it keeps
// anything ssh could read as an option ("-oProxyCommand=...") out of a
// destination.
func validName(s string) bool {
	labels := strings.TrimSuffix(s, ".") // a fully qualified name may end in a dot
	if labels == "" || len(labels) > 253 {
		return false
	}
	numeric := true
	for label := range strings.SplitSeq(labels, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-', c == '_':
				numeric = false
			default:
				return false
			}
		}
	}
	if numeric {
		// The resolver reads "10.1" or "123" as an IPv4 address in a short
		// form, which is never what a cluster file means; require all four
		// parts, without leading zeros that some resolvers take as octal.
		a, err := netip.ParseAddr(s)
		return err == nil && a.Is4()
	}
	return true
}

// validUser accepts the portable POSIX user names.
func validUser(s string) bool {
	return s != "" && s[0] != '-' && plainWord(s)
}

// validIPv6 accepts an IPv6 address, with a zone ("fe80::1%eth0") limited to
// what interface names use: netip takes any byte there.
func validIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return false
	}
	return a.Zone() == "" || plainWord(a.Zone())
}

// plainWord reports whether s is only ASCII letters, digits, '.', '_' and '-'.
func plainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func parseCount(s string) (int, bool) {
	n, ok := parseDecimal(s, MaxSlots)
	return n, ok && n >= 1
}

func parsePort(s string) (int, bool) {
	n, ok := parseDecimal(s, 65535)
	return n, ok && n >= 1
}

// parseDecimal reads plain ASCII digits, no sign, up to limit. Unlike
// strconv.Atoi it refuses "+4", and it stops before a long number can
// overflow.
func parseDecimal(s string, limit int) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}
