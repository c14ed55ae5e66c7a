package containers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/containerd/errdefs"
)

// listFilters are the filters GET /containers/json accepts.
var listFilters = []string{"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"}

type listFilter struct {
	f             map[string][]string
	names         []*regexp.Regexp
	ancestorIDs   []string
	exited        []int
	before, since time.Time
	hasBefore     bool
	hasSince      bool
	s             *Service
}

func newListFilter(s *Service, f map[string][]string) (*listFilter, error) {
	lf := &listFilter{f: f, s: s}
	for k, vs := range f {
		if !slices.Contains(listFilters, k) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
		switch k {
		case "status":
			for _, v := range vs {
				switch v {
				case "created", "restarting", "running", "removing", "paused", "exited", "dead":
				default:
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'status=%s'", v))
				}
			}
		case "name":
			for _, v := range vs {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'name=%s': %v", v, err))
				}
				lf.names = append(lf.names, re)
			}
		case "exited":
			for _, v := range vs {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'exited=%s'", v))
				}
				lf.exited = append(lf.exited, n)
			}
		case "ancestor":
			for _, v := range vs {
				img, err := s.cfg.Images.Get(v)
				if err != nil {
					continue // an unknown image matches nothing
				}
				lf.ancestorIDs = append(lf.ancestorIDs, img.ID.String())
			}
			if len(lf.ancestorIDs) == 0 {
				lf.ancestorIDs = []string{"-"}
			}
		case "before", "since":
			if len(vs) != 1 {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("filter %q accepts one value", k))
			}
			ref, err := s.store.Get(vs[0])
			if err != nil {
				return nil, err
			}
			if k == "before" {
				lf.before, lf.hasBefore = ref.Created, true
			} else {
				lf.since, lf.hasSince = ref.Created, true
			}
		}
	}
	return lf, nil
}

// needsAll reports whether the filters select stopped containers, which
// lists them even without all=1 (as Docker does for status and exited).
func (lf *listFilter) needsAll() bool {
	if len(lf.exited) > 0 || lf.hasBefore || lf.hasSince {
		return true
	}
	for _, v := range lf.f["status"] {
		if v != "running" && v != "paused" && v != "restarting" {
			return true
		}
	}
	return false
}

// match is called with c locked.
func (lf *listFilter) match(c *container.Container) bool {
	if vs := lf.f["status"]; len(vs) > 0 && !slices.Contains(vs, string(c.State.API().Status)) {
		return false
	}
	if len(lf.names) > 0 && !slices.ContainsFunc(lf.names, func(re *regexp.Regexp) bool { return re.MatchString(c.InspectName()) }) {
		return false
	}
	if vs := lf.f["id"]; len(vs) > 0 && !slices.ContainsFunc(vs, func(v string) bool { return strings.HasPrefix(c.ID, v) }) {
		return false
	}
	if vs := lf.f["label"]; len(vs) > 0 {
		for _, v := range vs {
			k, want, hasValue := strings.Cut(v, "=")
			got, ok := c.Config.Labels[k]
			if !ok || (hasValue && got != want) {
				return false
			}
		}
	}
	if len(lf.ancestorIDs) > 0 && !slices.Contains(lf.ancestorIDs, c.Image) {
		return false
	}
	if len(lf.exited) > 0 && (c.State.Running || c.State.StartedAt.IsZero() || !slices.Contains(lf.exited, c.State.ExitCode)) {
		return false
	}
	if lf.hasBefore && !c.Created.Before(lf.before) {
		return false
	}
	if lf.hasSince && !c.Created.After(lf.since) {
		return false
	}
	if vs := lf.f["network"]; len(vs) > 0 && !lf.s.onNetwork(c, vs) {
		return false
	}
	return true
}
