package layer

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestChainIDs(t *testing.T) {
	// DiffIDs are the sha256 of "a", "b" and "c"; the expected ChainIDs
	// were computed with sha256sum over "<chain> <diff>".
	diffs := []digest.Digest{
		"sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
		"sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
		"sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6",
	}
	want := []digest.Digest{
		diffs[0],
		"sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676",
		"sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106",
	}
	got := ChainIDs(diffs)
	if len(got) != len(want) {
		t.Fatalf("got %d ChainIDs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ChainID[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if len(ChainIDs(nil)) != 0 {
		t.Error("ChainIDs(nil) not empty")
	}
	if NextChainID("", diffs[1]) != diffs[1] {
		t.Error("ChainID of a base layer must be its DiffID")
	}
}
