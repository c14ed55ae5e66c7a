package httputil

import (
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		param   string
		want    string // fmt of key → values
		wantErr string
	}{
		{param: "", want: "map[]"},
		{param: "{}", want: "map[]"},
		{param: "null", want: "map[]"},
		{param: `{"dangling":{"true":true}}`, want: "map[dangling:[true]]"},
		{param: `{"label":{"a=b":true,"c":true},"reference":{"busybox*":true}}`, want: "map[label:[a=b c] reference:[busybox*]]"},
		{param: `{"label":["a=b","c"]}`, want: "map[label:[a=b c]]"},
		{param: `{"label":[]}`, want: "map[label:[]]"},
		{param: `{"label":"a"}`, wantErr: "invalid filter"},
		{param: `[1]`, wantErr: "invalid filter"},
		{param: `{`, wantErr: "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			f, err := ParseFilters(tt.param)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, k := range f.Keys() {
				got[k] = f.Get(k)
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}

func TestFiltersValidate(t *testing.T) {
	f, _ := ParseFilters(`{"dangling":{"true":true},"bogus":{"x":true}}`)
	err := f.Validate("dangling", "label")
	if err == nil || err.Error() != "invalid filter 'bogus'" || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Validate = %v", err)
	}
	if err := f.Validate("dangling", "bogus"); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	var zero Filters
	if zero.Validate() != nil || zero.Len() != 0 || zero.Contains("x") || len(zero.Get("x")) != 0 {
		t.Fatal("zero Filters not empty")
	}
	zero.Add("k", "v")
	if !zero.Contains("k") || zero.Get("k")[0] != "v" {
		t.Fatal("Add on zero Filters")
	}
}

func TestFiltersMatching(t *testing.T) {
	f, _ := ParseFilters(`{"name":{"web":true,"^db-[0-9]+$":true},"id":{"abc":true},"empty":{}}`)
	tests := []struct {
		name string
		fn   func(key, source string) bool
		key  string
		src  string
		want bool
	}{
		{"exact hit", f.ExactMatch, "name", "web", true},
		{"exact miss", f.ExactMatch, "name", "web1", false},
		{"exact absent key", f.ExactMatch, "other", "x", true},
		{"exact empty key", f.ExactMatch, "empty", "x", true},
		{"match regexp", f.Match, "name", "db-12", true},
		{"match substring regexp", f.Match, "name", "myweb1", true},
		{"match miss", f.Match, "name", "db-x", false},
		{"fuzzy prefix", f.FuzzyMatch, "id", "abcdef", true},
		{"fuzzy miss", f.FuzzyMatch, "id", "xabc", false},
		{"unique exact multiple", f.UniqueExactMatch, "name", "web", false},
		{"unique exact single", f.UniqueExactMatch, "id", "abc", true},
		{"unique exact single miss", f.UniqueExactMatch, "id", "abcd", false},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.key, tt.src); got != tt.want {
			t.Errorf("%s: (%s, %s) = %v, want %v", tt.name, tt.key, tt.src, got, tt.want)
		}
	}
}

func TestFiltersMatchKVList(t *testing.T) {
	labels := map[string]string{"a": "1", "b": "2"}
	tests := []struct {
		param   string
		sources map[string]string
		want    bool
	}{
		{`{}`, labels, true},
		{`{"label":{"a":true}}`, labels, true},
		{`{"label":{"a=1":true,"b":true}}`, labels, true},
		{`{"label":{"a=2":true}}`, labels, false},
		{`{"label":{"c":true}}`, labels, false},
		{`{"label":{"a":true}}`, nil, false},
		{`{"label":{"a=":true}}`, map[string]string{"a": ""}, true},
	}
	for _, tt := range tests {
		f, err := ParseFilters(tt.param)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.MatchKVList("label", tt.sources); got != tt.want {
			t.Errorf("%s on %v = %v, want %v", tt.param, tt.sources, got, tt.want)
		}
	}
}

func TestFiltersGetBoolOrDefault(t *testing.T) {
	tests := []struct {
		param   string
		def     bool
		want    bool
		wantErr string
	}{
		{`{}`, true, true, ""},
		{`{"dangling":{"true":true}}`, false, true, ""},
		{`{"dangling":{"1":true}}`, false, true, ""},
		{`{"dangling":{"false":true}}`, true, false, ""},
		{`{"dangling":{"0":true}}`, true, false, ""},
		{`{"dangling":{"true":true,"false":true}}`, false, false, "invalid filter 'dangling=[false true]'"},
		{`{"dangling":{"maybe":true}}`, false, false, "invalid filter 'dangling=[maybe]'"},
		{`{"dangling":{}}`, false, false, "invalid filter 'dangling'"},
	}
	for _, tt := range tests {
		f, _ := ParseFilters(tt.param)
		got, err := f.GetBoolOrDefault("dangling", tt.def)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
				t.Errorf("%s: err = %v, want %q", tt.param, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: = %v, %v; want %v", tt.param, got, err, tt.want)
		}
	}
}

func TestFiltersWalkValues(t *testing.T) {
	f, _ := ParseFilters(`{"before":{"b":true,"a":true,"c":true}}`)
	var seen []string
	stop := fmt.Errorf("stop")
	err := f.WalkValues("before", func(v string) error {
		seen = append(seen, v)
		if v == "b" {
			return stop
		}
		return nil
	})
	if err != stop || fmt.Sprint(seen) != "[a b]" {
		t.Fatalf("WalkValues = %v, saw %v", err, seen)
	}
}
