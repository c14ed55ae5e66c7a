package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// TLSOptions are the daemon's --tlsverify settings.
type TLSOptions struct {
	Verify                bool
	CACert, Cert, KeyFile string
}

// Listen opens the listener for one -H address: unix:///path (mode 0660,
// group group when it exists) or tcp://host:port, which needs TLS with
// client verification.
func Listen(addr, group string, t TLSOptions) (net.Listener, error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("invalid host %q: want unix:///path or tcp://host:port", addr)
	}
	switch proto {
	case "unix":
		return listenUnix(rest, group)
	case "tcp":
		if !t.Verify || t.CACert == "" || t.Cert == "" || t.KeyFile == "" {
			return nil, fmt.Errorf("refusing to listen on %s without TLS: use --tlsverify with --tlscacert, --tlscert and --tlskey", addr)
		}
		cfg, err := serverTLS(t)
		if err != nil {
			return nil, err
		}
		return tls.Listen("tcp", rest, cfg)
	}
	return nil, fmt.Errorf("invalid host %q: unsupported protocol %q", addr, proto)
}

func listenUnix(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket left by a daemon that died: the data-root lock tells that no
	// other daemon runs, so it can go.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	gid := 0
	if g, err := user.LookupGroup(group); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func serverTLS(t TLSOptions) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %w", err)
	}
	ca, err := os.ReadFile(t.CACert)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", t.CACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
