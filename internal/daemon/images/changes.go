package images

import (
	"github.com/berth-dev/berth/internal/imageconfig"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// applyChanges applies the Dockerfile instructions of import/commit -c.
func applyChanges(cfg dockerspec.DockerOCIImageConfig, changes []string) (dockerspec.DockerOCIImageConfig, error) {
	return imageconfig.ApplyChanges(cfg, changes)
}
