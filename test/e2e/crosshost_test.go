package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestCrossHostRoutes runs hack/crosshost.sh: two berthd "hosts" in two
// network namespaces, linked by a veth with routes to each other's
// container subnet; a container on one pings a container on the other.
func TestCrossHostRoutes(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"berthd", "berth"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			t.Skipf("bin/%s not built (make build)", b)
		}
	}
	out, err := exec.Command(filepath.Join(root, "hack", "crosshost.sh")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cross-host ping OK") {
		t.Fatalf("crosshost.sh: %v\n%s", err, out)
	}
}
