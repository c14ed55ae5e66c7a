// Package command holds what every berth CLI command shares: the streams,
// the lazily built Engine API client, exit statuses and argument checks.
package command

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client"
)

// DefaultHost is the daemon socket used when neither -H nor BERTH_HOST is set.
const DefaultHost = "unix:///run/berth/berth.sock"

// Environment variables read by the CLI.
const (
	EnvHost      = "BERTH_HOST"
	EnvTLSVerify = "BERTH_TLS_VERIFY"
	EnvCertPath  = "BERTH_CERT_PATH"
	EnvConfig    = "BERTH_CONFIG"
)

// Version and GitCommit identify the CLI build; set with -ldflags -X.
var (
	Version   = "dev"
	GitCommit = "unknown"
)

// ClientOptions are the global flags that choose and secure the connection.
type ClientOptions struct {
	Hosts     []string
	Debug     bool
	LogLevel  string
	ConfigDir string
	TLS       bool
	TLSVerify bool
	CACert    string
	Cert      string
	Key       string
}

// DefaultConfigDir is ~/.berth, or $BERTH_CONFIG when set.
func DefaultConfigDir() string {
	if d := os.Getenv(EnvConfig); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".berth"
	}
	return filepath.Join(home, ".berth")
}

// Host resolves the daemon address: -H, then BERTH_HOST, then the default.
func (o *ClientOptions) Host() (string, error) {
	switch len(o.Hosts) {
	case 0:
		if h := os.Getenv(EnvHost); h != "" {
			return normalizeHost(h)
		}
		return DefaultHost, nil
	case 1:
		return normalizeHost(o.Hosts[0])
	default:
		return "", errors.New("specify only one -H")
	}
}

// normalizeHost accepts docker's host forms: unix://path, tcp://host:port,
// fd://, a bare path or a host:port.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	switch {
	case h == "":
		return DefaultHost, nil
	case strings.HasPrefix(h, "/"):
		return "unix://" + h, nil
	case !strings.Contains(h, "://"):
		return "tcp://" + h, nil
	}
	if _, err := client.ParseHostURL(h); err != nil {
		return "", fmt.Errorf("invalid host %q: %w", h, err)
	}
	return h, nil
}

// tlsFiles fills the certificate paths docker's way: with TLS on, a file
// not given on the command line is taken from the certificate directory
// when it exists there.
func (o *ClientOptions) tlsFiles(set func(name string) bool) {
	if os.Getenv(EnvTLSVerify) != "" && !set("tlsverify") {
		o.TLSVerify = true
	}
	if o.TLSVerify {
		o.TLS = true
	}
	if !o.TLS {
		return
	}
	dir := os.Getenv(EnvCertPath)
	if dir == "" {
		dir = o.ConfigDir
	}
	for _, f := range []struct {
		flag string
		dst  *string
		file string
	}{{"tlscacert", &o.CACert, "ca.pem"}, {"tlscert", &o.Cert, "cert.pem"}, {"tlskey", &o.Key, "key.pem"}} {
		if set(f.flag) {
			continue
		}
		p := filepath.Join(dir, f.file)
		if _, err := os.Stat(p); err == nil {
			*f.dst = p
		} else {
			*f.dst = ""
		}
	}
}

// Cli is the state shared by the commands.
type Cli struct {
	in      *In
	out     *Out
	err     io.Writer
	Options ClientOptions
	client  *client.Client
}

// New returns a Cli on the given streams.
func New(in io.ReadCloser, out, errw io.Writer) *Cli {
	return &Cli{in: NewIn(in), out: NewOut(out), err: errw}
}

// In is standard input.
func (c *Cli) In() *In { return c.in }

// Out is standard output.
func (c *Cli) Out() *Out { return c.out }

// Err is standard error.
func (c *Cli) Err() io.Writer { return c.err }

// Initialize builds the API client from the options; set tells which
// flags were given on the command line.
func (c *Cli) Initialize(set func(name string) bool) error {
	c.Options.tlsFiles(set)
	host, err := c.Options.Host()
	if err != nil {
		return err
	}
	opts := []client.Opt{client.WithUserAgent("berth-cli/" + Version)}
	if c.Options.TLS {
		hc, err := c.Options.httpClient()
		if err != nil {
			return err
		}
		opts = append(opts, client.WithHTTPClient(hc))
	}
	opts = append(opts, client.WithHost(host))
	cl, err := client.New(opts...)
	if err != nil {
		return err
	}
	c.client = cl
	return nil
}

func (o *ClientOptions) httpClient() (*http.Client, error) {
	cfg, err := tlsconfig.Client(tlsconfig.Options{
		CAFile:             o.CACert,
		CertFile:           o.Cert,
		KeyFile:            o.Key,
		InsecureSkipVerify: !o.TLSVerify,
		ExclusiveRootPools: true,
	})
	if err != nil {
		return nil, fmt.Errorf("could not configure TLS: %w", err)
	}
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: cfg},
		CheckRedirect: client.CheckRedirect,
	}, nil
}

// Client returns the API client; Initialize must have been called.
func (c *Cli) Client() *client.Client { return c.client }

// Close releases the client's connections.
func (c *Cli) Close() {
	if c.client != nil {
		_ = c.client.Close()
	}
}
