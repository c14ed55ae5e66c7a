package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/server"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// fakeConnector records the calls and answers with err.
type fakeConnector struct {
	calls []string
	err   error
}

func (f *fakeConnector) ConnectNetwork(_ context.Context, netRef, ref string, ep *network.EndpointSettings) error {
	var ip, aliases string
	if ep != nil {
		aliases = strings.Join(ep.Aliases, ",")
		if ep.IPAMConfig != nil {
			ip = ep.IPAMConfig.IPv4Address.String()
		}
	}
	f.calls = append(f.calls, fmt.Sprintf("connect %s %s ip=%s aliases=%s", netRef, ref, ip, aliases))
	return f.err
}

func (f *fakeConnector) DisconnectNetwork(_ context.Context, netRef, ref string, force bool) error {
	f.calls = append(f.calls, fmt.Sprintf("disconnect %s %s force=%v", netRef, ref, force))
	return f.err
}

func TestConnectDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		err              error
		status           int
		call, message    string
	}{
		{"connect", "/v1.50/networks/front/connect", `{"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.7.0.9"},"Aliases":["w","x"]}}`,
			nil, 200, "connect front web ip=10.7.0.9 aliases=w,x", ""},
		{"connect without endpoint config", "/v1.50/networks/5eb4/connect", `{"Container":"web"}`, nil, 200, "connect 5eb4 web ip= aliases=", ""},
		{"already connected", "/v1.50/networks/front/connect", `{"Container":"web"}`,
			errdefs.ErrPermissionDenied.WithMessage("endpoint with name web already exists in network front"), 403,
			"connect front web ip= aliases=", "endpoint with name web already exists in network front"},
		{"bad JSON", "/v1.50/networks/front/connect", `{"Container":`, nil, 400, "", "invalid JSON"},
		{"disconnect", "/v1.50/networks/front/disconnect", `{"Container":"web","Force":true}`, nil, 200, "disconnect front web force=true", ""},
		{"not connected", "/v1.50/networks/front/disconnect", `{"Container":"web"}`,
			fmt.Errorf("container 0123 is not connected to network front"), 500, "disconnect front web force=false", "container 0123 is not connected to network front"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeConnector{err: tc.err}
			srv := server.New(server.Options{MinAPIVersion: "1.24", MaxAPIVersion: "1.52"}, &Router{Connector: fc})
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if got := strings.Join(fc.calls, "\n"); got != tc.call {
				t.Errorf("calls %q, want %q", got, tc.call)
			}
			var msg struct{ Message string }
			_ = json.Unmarshal(rec.Body.Bytes(), &msg)
			if !strings.Contains(msg.Message, tc.message) || (tc.message == "" && rec.Body.Len() > 0) {
				t.Errorf("body %q, want a message with %q", rec.Body, tc.message)
			}
		})
	}
}
