package container

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/containerd/errdefs"
)

func TestGenerateID(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := make(map[string]bool)
	for i := 0; i < 1000; i++ {
		id := GenerateID()
		if !hex64.MatchString(id) {
			t.Fatalf("GenerateID() = %q, want 64 lowercase hex digits", id)
		}
		if allDigits(ShortID(id)) {
			t.Fatalf("GenerateID() = %q: short form is all digits", id)
		}
		if seen[id] {
			t.Fatalf("GenerateID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestShortID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0123456789abcdef0123", "0123456789ab"},
		{"abc", "abc"},
		{"", ""},
	} {
		if got := ShortID(tc.in); got != tc.want {
			t.Errorf("ShortID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGenerateName(t *testing.T) {
	nameRe := regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]*$`)
	taken := make(map[string]bool)
	// Far more names than adjective×surname combinations, so suffixes are
	// needed; every name must still be unique and valid.
	n := len(adjectives)*len(surnames) + 500
	for i := 0; i < n; i++ {
		name := GenerateName(func(s string) bool { return taken[s] })
		if taken[name] {
			t.Fatalf("GenerateName returned taken name %q", name)
		}
		if !nameRe.MatchString(name) || ValidName(name) != nil {
			t.Fatalf("GenerateName returned malformed name %q", name)
		}
		taken[name] = true
	}
}

func TestGenerateNameAllBaseTaken(t *testing.T) {
	name := GenerateName(func(s string) bool { return regexp.MustCompile(`^[a-z]+_[a-z]+$`).MatchString(s) })
	if !regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]+$`).MatchString(name) {
		t.Fatalf("GenerateName = %q, want a numeric suffix", name)
	}
}

func TestWordLists(t *testing.T) {
	for _, list := range [][]string{adjectives[:], surnames[:]} {
		seen := map[string]bool{}
		for _, w := range list {
			if seen[w] || !regexp.MustCompile(`^[a-z]+$`).MatchString(w) {
				t.Errorf("bad or duplicate word %q", w)
			}
			seen[w] = true
		}
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true},
		{"/web", true},
		{"ab", true},
		{"my_app-1.2", true},
		{"0abc", true},
		{"A.b_c-D", true},
		{"a..", true},
		{"a", false},
		{"/a", false},
		{"", false},
		{"/", false},
		{"../etc", false},
		{"..", false},
		{".hidden", false},
		{"-x", false},
		{"_x", false},
		{"a/b", false},
		{"//ab", false},
		{"with space", false},
		{"tab\tname", false},
		{"ünïcode", false},
		{"ab\n", false},
	} {
		err := ValidName(tc.name)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidName(%q) = %v, want nil", tc.name, err)
			}
			continue
		}
		want := fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", tc.name)
		if err == nil || err.Error() != want {
			t.Errorf("ValidName(%q) = %v, want %q", tc.name, err, want)
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidName(%q): error is not ErrInvalidArgument", tc.name)
		}
	}
}
