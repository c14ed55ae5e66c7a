package opts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

const whitespace = " \t"

// ValidateEnv accepts KEY=VALUE; a bare KEY takes its value from the
// environment when set there.
func ValidateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", errors.New("invalid environment variable: " + v)
	}
	if hasValue {
		return v, nil
	}
	if val, ok := os.LookupEnv(k); ok {
		return k + "=" + val, nil
	}
	return v, nil
}

// ValidateLabel requires a label name without whitespace.
func ValidateLabel(v string) (string, error) {
	k, _, _ := strings.Cut(v, "=")
	k = strings.TrimLeft(k, whitespace)
	if k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	if strings.ContainsAny(k, whitespace) {
		return "", fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return v, nil
}

// ValidateIPAddress requires an IPv4 or IPv6 address.
func ValidateIPAddress(v string) (string, error) {
	if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
}

// ValidateDNSSearch requires a domain name (or "." for none).
func ValidateDNSSearch(v string) (string, error) {
	if v = strings.Trim(v, " "); v == "." {
		return v, nil
	}
	ns := strings.TrimSuffix(v, ".")
	if ns == "" || strings.HasPrefix(ns, ".") || strings.Contains(ns, "..") {
		return "", fmt.Errorf("%s is not a valid domain", v)
	}
	if len(ns) > 255 {
		return "", fmt.Errorf("domain name %s is too long", v)
	}
	return v, nil
}

// ValidateExtraHost accepts host:ip or host=ip (ip may be bracketed IPv6 or
// "host-gateway") and normalises it to host:ip.
func ValidateExtraHost(v string) (string, error) {
	k, ip, ok := strings.Cut(v, "=")
	if !ok {
		k, ip, ok = strings.Cut(v, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	if ip != "host-gateway" {
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if net.ParseIP(ip) == nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return k + ":" + ip, nil
}

// ValidateSysctl allows the namespaced sysctls docker allows.
func ValidateSysctl(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if ok && k != "" {
		switch {
		case strings.HasPrefix(k, "net."), strings.HasPrefix(k, "fs.mqueue."):
			return v, nil
		case strings.HasPrefix(k, "kernel.msg"), strings.HasPrefix(k, "kernel.shm"), k == "kernel.sem":
			return v, nil
		}
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", v)
}

// ValidateAttach accepts stdin, stdout or stderr in any case.
func ValidateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	switch s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return v, errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// ReadKVFiles reads key=value files (env or label files) and appends the
// overrides. With lookup, a bare key takes its value from lookup and is
// dropped when lookup does not know it.
func ReadKVFiles(files, overrides []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		lines, err := parseKVFile(b, lookup)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return append(out, overrides...), nil
}

func parseKVFile(b []byte, lookup func(string) (string, bool)) ([]string, error) {
	lines := []string{}
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, raw)
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(k, whitespace) {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		switch {
		case hasValue:
			lines = append(lines, line)
		case lookup != nil:
			if v, ok := lookup(line); ok {
				lines = append(lines, k+"="+v)
			}
		}
	}
	return lines, sc.Err()
}

// KVMap converts key=value strings to a map (a bare key maps to "").
func KVMap(values []string) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		k, val, _ := strings.Cut(v, "=")
		m[k] = val
	}
	return m
}
