package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// benchTar is a layer of files of random data.
func benchTar(b *testing.B, files, size int) []byte {
	b.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, size)
	for i := range files {
		rand.Read(data)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(size)}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkRegister is the unpacking throughput of Register, and of
// RegisterNoSync followed by Sync, for a layer of one large file and for
// one of many small files.
func BenchmarkRegister(b *testing.B) {
	testutil.RequiresRoot(b)
	ctx := context.Background()
	for _, shape := range []struct {
		name        string
		files, size int
	}{{"1x50MiB", 1, 50 << 20}, {"2000x16KiB", 2000, 16 << 10}} {
		data := benchTar(b, shape.files, shape.size)
		for _, mode := range []string{"Register", "RegisterNoSync+Sync"} {
			b.Run(shape.name+"/"+mode, func(b *testing.B) {
				s, err := New(filepath.Join(b.TempDir(), "store"))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var l Layer
					if mode == "Register" {
						l, err = s.Register(ctx, bytes.NewReader(data), "")
					} else if l, err = s.RegisterNoSync(ctx, bytes.NewReader(data), ""); err == nil {
						err = s.Sync(l.ChainID())
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Release(l.ChainID()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
