package cgroups

import (
	"math"
	"reflect"
	"testing"
)

func TestParseKV(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]uint64
		wantErr  bool
	}{
		{name: "plain", in: "a 1\nb 2\n", want: map[string]uint64{"a": 1, "b": 2}},
		{name: "max", in: "limit max\n", want: map[string]uint64{"limit": math.MaxUint64}},
		{name: "other shapes skipped", in: "a 1\nsome avg10=0.00 total=5\n\n", want: map[string]uint64{"a": 1}},
		{name: "bad number", in: "a x\n", wantErr: true},
		{name: "negative", in: "a -1\n", wantErr: true},
	} {
		got, err := parseKV(tc.in, "test")
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: parsed %v", tc.name, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestParseIOStatV2SkipsMalformed(t *testing.T) {
	got, err := parseIOStatV2("garbage\n8:0 rbytes=5 weird\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []IODeviceStats{{Major: 8, Minor: 0, ReadBytes: 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseIOStatV2("8:0 rbytes=x\n"); err == nil {
		t.Error("non-numeric value accepted")
	}
}
