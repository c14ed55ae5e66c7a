package image

import (
	"context"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

func (f *fakeBackend) PushImage(_ context.Context, ref reference.Named, auth *registry.AuthConfig, out io.Writer) error {
	user := ""
	if auth != nil {
		user = auth.Username
	}
	f.calls = append(f.calls, fmt.Sprintf("push %s %s", ref, user))
	fmt.Fprint(out, `{"status":"The push refers to repository [`+ref.Name()+`]"}`+"\r\n")
	return f.pullErr
}

func (f *fakeBackend) SearchImages(_ context.Context, term string, limit int, sf SearchFilters, _ *registry.AuthConfig) ([]registry.SearchResult, error) {
	official := "-"
	if sf.Official != nil {
		official = fmt.Sprint(*sf.Official)
	}
	f.calls = append(f.calls, fmt.Sprintf("search %s %d %d %s", term, limit, sf.MinStars, official))
	return []registry.SearchResult{{Name: term, StarCount: 3}}, nil
}
