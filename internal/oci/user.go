package oci

import (
	"fmt"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ResolveUser turns Docker's --user ("name", "uid", "name:group",
// "uid:gid") into numeric IDs using the container's /etc/passwd and
// /etc/group, resolved inside rootfs (symlinks cannot point outside it).
// groupAdd adds supplementary groups by name or number.
func ResolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return specs.User{}, errdefs.ErrInvalidArgument.WithMessage(err.Error()) // "unable to find user NAME: ..."
	}
	out := specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid)}
	for _, g := range u.Sgids {
		out.AdditionalGids = append(out.AdditionalGids, uint32(g))
	}
	if len(groupAdd) > 0 {
		gids, err := user.GetAdditionalGroupsPath(groupAdd, group)
		if err != nil {
			return specs.User{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find groups %v: %v", groupAdd, err))
		}
		for _, g := range gids {
			out.AdditionalGids = append(out.AdditionalGids, uint32(g))
		}
	}
	return out, nil
}
