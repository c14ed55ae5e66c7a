package rootfs

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRootPropagationSequence checks where each rootfsPropagation is
// applied: shared after pivot_root (which refuses a shared new root),
// unbindable on the rootfs bind (an unbindable "/" could not be bound), the
// others on "/" before the bind.
func TestRootPropagationSequence(t *testing.T) {
	tests := []struct {
		propagation  string
		wantPrepare  []string // the calls Prepare makes up to and including the rootfs bind, and after
		wantFinalize []string
	}{
		{"", []string{`mount "" "/" "" MS_REC|MS_PRIVATE ""`, `mount "R" "R" "bind" MS_BIND|MS_REC ""`}, nil},
		{"rslave", []string{`mount "" "/" "" MS_REC|MS_SLAVE ""`, `mount "R" "R" "bind" MS_BIND|MS_REC ""`}, nil},
		{"runbindable", []string{
			`mount "" "/" "" MS_REC|MS_PRIVATE ""`, `mount "R" "R" "bind" MS_BIND|MS_REC ""`,
			`mount "" "R" "" MS_REC|MS_UNBINDABLE ""`,
		}, nil},
		{"rshared", []string{`mount "" "/" "" MS_REC|MS_SHARED ""`, `mount "R" "R" "bind" MS_BIND|MS_REC ""`},
			[]string{`mount "" "/" "" MS_REC|MS_SHARED ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.propagation, func(t *testing.T) {
			rootfs := t.TempDir()
			f := newFake(t, rootfs)
			f.mounts = v1Table()
			spec := &specs.Spec{Root: &specs.Root{Path: rootfs}, Linux: &specs.Linux{RootfsPropagation: tt.propagation}}
			if err := Prepare(spec, Options{Rootfs: rootfs, Sys: f}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range f.calls {
				if strings.HasPrefix(c, "mount ") && !strings.Contains(c, `"R/`) {
					got = append(got, c)
				}
			}
			// The parent of the rootfs may be made private in between
			// (when it is shared): leave that call out of the comparison.
			var filtered []string
			for _, c := range got {
				if !strings.Contains(c, `MS_PRIVATE ""`) || strings.Contains(c, `"/" ""`) {
					filtered = append(filtered, c)
				}
			}
			if strings.Join(filtered, "\n") != strings.Join(tt.wantPrepare, "\n") {
				t.Errorf("Prepare mounts:\n got %q\nwant %q", filtered, tt.wantPrepare)
			}
			f.calls = nil
			if err := Finalize(spec, Options{Rootfs: "/", Sys: f}); err != nil {
				t.Fatal(err)
			}
			var fin []string
			for _, c := range f.calls {
				if strings.HasPrefix(c, "mount ") {
					fin = append(fin, c)
				}
			}
			if strings.Join(fin, "\n") != strings.Join(tt.wantFinalize, "\n") {
				t.Errorf("Finalize mounts:\n got %q\nwant %q", fin, tt.wantFinalize)
			}
		})
	}
}
