package httputil

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Filters is the decoded "filters" query parameter of list and prune
// endpoints: each key maps to a set of values. The zero value is an empty
// set of filters.
type Filters struct {
	fields map[string]map[string]bool
}

// ParseFilters decodes the "filters" query parameter. Both encodings Docker
// clients send are accepted: {"key":{"value":true}} and the legacy
// {"key":["value"]}. An empty string gives no filters. A malformed value is
// an invalid-argument error reading "invalid filter", as dockerd's.
func ParseFilters(param string) (Filters, error) {
	f := Filters{fields: map[string]map[string]bool{}}
	if param == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(param), &f.fields); err == nil {
		if f.fields == nil {
			f.fields = map[string]map[string]bool{}
		}
		return f, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(param), &legacy); err != nil {
		return Filters{}, invalidFilterError{}
	}
	f.fields = make(map[string]map[string]bool, len(legacy))
	for k, values := range legacy {
		set := make(map[string]bool, len(values))
		for _, v := range values {
			set[v] = true
		}
		f.fields[k] = set
	}
	return f, nil
}

// Add adds value to the values of key.
func (f *Filters) Add(key, value string) {
	if f.fields == nil {
		f.fields = map[string]map[string]bool{}
	}
	if f.fields[key] == nil {
		f.fields[key] = map[string]bool{}
	}
	f.fields[key][value] = true
}

// Len is the number of keys.
func (f Filters) Len() int { return len(f.fields) }

// Keys returns the keys, sorted.
func (f Filters) Keys() []string { return slices.Sorted(maps.Keys(f.fields)) }

// Get returns the values of key, sorted; an empty slice when there are none.
func (f Filters) Get(key string) []string {
	return slices.Sorted(maps.Keys(f.fields[key]))
}

// Contains reports whether key is present, even with no values.
func (f Filters) Contains(key string) bool {
	_, ok := f.fields[key]
	return ok
}

// Validate returns dockerd's "invalid filter 'x'" error (an invalid
// argument) for the first key, in sorted order, not in accepted.
func (f Filters) Validate(accepted ...string) error {
	for _, k := range f.Keys() {
		if !slices.Contains(accepted, k) {
			return invalidFilterError{key: k}
		}
	}
	return nil
}

// ExactMatch reports whether source is one of the values of key. A key
// with no values matches everything.
func (f Filters) ExactMatch(key, source string) bool {
	values := f.fields[key]
	if len(values) == 0 {
		return true
	}
	return values[source]
}

// UniqueExactMatch reports whether key has exactly one value and it is
// source. A key with no values matches everything.
func (f Filters) UniqueExactMatch(key, source string) bool {
	values := f.fields[key]
	if len(values) == 0 {
		return true
	}
	return len(values) == 1 && values[source]
}

// Match reports whether source equals one of the values of key or matches
// one of them as a regular expression, as dockerd's name filters do.
func (f Filters) Match(key, source string) bool {
	if f.ExactMatch(key, source) {
		return true
	}
	for pattern := range f.fields[key] {
		if ok, err := regexp.MatchString(pattern, source); err == nil && ok {
			return true
		}
	}
	return false
}

// FuzzyMatch reports whether source equals one of the values of key or
// starts with one of them, as dockerd's ID filters do.
func (f Filters) FuzzyMatch(key, source string) bool {
	if f.ExactMatch(key, source) {
		return true
	}
	for prefix := range f.fields[key] {
		if strings.HasPrefix(source, prefix) {
			return true
		}
	}
	return false
}

// MatchKVList reports whether every value of key, "k" or "k=v", is found
// in sources (label filters). A key with no values matches everything.
func (f Filters) MatchKVList(key string, sources map[string]string) bool {
	values := f.fields[key]
	if len(values) == 0 {
		return true
	}
	if len(sources) == 0 {
		return false
	}
	for value := range values {
		k, v, hasValue := strings.Cut(value, "=")
		got, ok := sources[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// GetBoolOrDefault returns the boolean value of key ("1"/"true" or
// "0"/"false"), or def when key is absent. No value, another value or
// conflicting values give dockerd's "invalid filter 'key=[values]'".
func (f Filters) GetBoolOrDefault(key string, def bool) (bool, error) {
	values, ok := f.fields[key]
	if !ok {
		return def, nil
	}
	if len(values) == 0 {
		return def, invalidFilterError{key: key}
	}
	isFalse := values["0"] || values["false"]
	isTrue := values["1"] || values["true"]
	if isFalse == isTrue {
		return def, invalidFilterError{key: key, values: f.Get(key)}
	}
	return isTrue, nil
}

// WalkValues calls fn for each value of key, sorted, until fn fails.
func (f Filters) WalkValues(key string, fn func(value string) error) error {
	for _, v := range f.Get(key) {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// invalidFilterError is dockerd's error for a bad filter; it is classified
// as an invalid argument (400).
type invalidFilterError struct {
	key    string
	values []string
}

func (e invalidFilterError) Error() string {
	if e.key == "" {
		return "invalid filter"
	}
	if e.values != nil {
		return fmt.Sprintf("invalid filter '%s=%s'", e.key, e.values)
	}
	return "invalid filter '" + e.key + "'"
}

// InvalidParameter marks the error for errdefs.IsInvalidArgument.
func (invalidFilterError) InvalidParameter() {}
