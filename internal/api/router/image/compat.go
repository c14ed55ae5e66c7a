package image

import (
	"bytes"
	"encoding/json"

	"github.com/berth-dev/berth/internal/api/httputil"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// withExtraFields returns v as a JSON object with the fields of extra that
// v lacks; an object in extra adds the sub-fields the object in v lacks.
// Older API versions carry fields the current types no longer have.
func withExtraFields(v any, extra map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	for k, ev := range extra {
		cur, ok := m[k]
		if !ok || cur == nil {
			m[k] = ev
			continue
		}
		sub, isMap := cur.(map[string]any)
		extraSub, extraIsMap := ev.(map[string]any)
		if !isMap || !extraIsMap {
			continue
		}
		for sk, sv := range extraSub {
			if _, ok := sub[sk]; !ok {
				sub[sk] = sv
			}
		}
	}
	return m, nil
}

// parsePlatform reads a platform as "os", "arch", "os/arch" or
// "os/arch/variant".
func parsePlatform(s string) (ocispec.Platform, error) { return httputil.ParsePlatform(s) }
