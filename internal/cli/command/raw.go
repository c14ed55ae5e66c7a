package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// PostJSON posts v as JSON to a path of the daemon's API (a berth
// extension the Go client has no call for) and decodes the answer into
// out. The path is prefixed with the negotiated API version.
func (c *Cli) PostJSON(ctx context.Context, path string, v, out any) error {
	host, err := c.Options.Host()
	if err != nil {
		return err
	}
	hc := &http.Client{}
	base := ""
	switch {
	case strings.HasPrefix(host, "unix://"):
		sock := strings.TrimPrefix(host, "unix://")
		hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		base = "http://berthd"
	case strings.HasPrefix(host, "tcp://"):
		if c.Options.TLS {
			if hc, err = c.Options.httpClient(); err != nil {
				return err
			}
			base = "https://" + strings.TrimPrefix(host, "tcp://")
		} else {
			base = "http://" + strings.TrimPrefix(host, "tcp://")
		}
	default:
		return fmt.Errorf("unsupported daemon host %q", host)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v"+c.client.ClientVersion()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
