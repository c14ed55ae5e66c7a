package system

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
	"github.com/moby/moby/api/types/registry"
)

func (fakeBackend) AuthenticateToRegistry(_ context.Context, ac *registry.AuthConfig) (string, error) {
	if ac.Username == "good" && ac.Password == "pw" {
		return "Login Succeeded", nil
	}
	return "", fmt.Errorf("login attempt to http://%s/v2/ failed with status: 401 Unauthorized: %w", ac.ServerAddress, errdefs.ErrUnauthenticated)
}

func TestPostAuth(t *testing.T) {
	s := server.New(server.Options{MinAPIVersion: "1.40", MaxAPIVersion: "1.56", ServerVersion: "v"},
		&Router{Backend: fakeBackend{}, MaxAPIVersion: "1.56"})
	for _, tc := range []struct {
		body, want string
		code       int
	}{
		{`{"username":"good","password":"pw","serveraddress":"r:5000"}`, `"Status":"Login Succeeded"`, http.StatusOK},
		{`{"username":"good","password":"bad","serveraddress":"r:5000"}`, `"message":"login attempt to http://r:5000/v2/ failed with status: 401 Unauthorized"`, http.StatusUnauthorized},
		{`{not json`, `"message"`, http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1.51/auth", strings.NewReader(tc.body)))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("POST /auth %s: %d %s, want %d with %s", tc.body, rec.Code, rec.Body, tc.code, tc.want)
		}
		if rec.Code == http.StatusOK {
			var resp registry.AuthResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Status != "Login Succeeded" {
				t.Errorf("auth response %s: %v", rec.Body, err)
			}
		}
	}
}
