package cgroups

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// deviceFilterFunc installs a device policy on a v2 cgroup directory.
type deviceFilterFunc func(dir string, p devicePolicy) error

// deviceFilterProgram compiles a device policy into a
// BPF_PROG_TYPE_CGROUP_DEVICE program. The program receives a
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// where access_type holds the device type in its low 16 bits and the
// requested access in its high 16 bits; it returns 1 to allow, 0 to deny.
//
// Every exception of a policy carries the same verdict (the opposite of the
// default), so the exceptions are tested in any order and the first match
// decides. On an allow list an exception matches only if it covers the
// whole requested access; on a deny list any overlap matches. This is the
// rule of the v1 kernel controller, and it is where the filter of
// containerd/cgroups differs: that one lets an allow rule match on any
// overlap, so a device allowed "r" could be opened read-write.
func deviceFilterProgram(p devicePolicy) asm.Instructions {
	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff), // R2 = device type
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),                // R3 = requested access
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // R4 = major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // R5 = minor
	}
	var verdict, fallback int32
	if p.defaultAllow {
		fallback = 1
	} else {
		verdict = 1
	}
	label := func(i int) string { return fmt.Sprintf("exception_%d", i) }
	for i, e := range p.exceptions {
		next := label(i + 1)
		typ := int32(unix.BPF_DEVCG_DEV_CHAR)
		if e.typ == 'b' {
			typ = unix.BPF_DEVCG_DEV_BLOCK
		}
		block := asm.Instructions{asm.JNE.Imm(asm.R2, typ, next)}
		if e.access != accAll {
			block = append(block,
				asm.Mov.Reg32(asm.R1, asm.R3),
				asm.And.Imm32(asm.R1, int32(e.access)))
			if p.defaultAllow {
				block = append(block, asm.JEq.Imm(asm.R1, 0, next))
			} else {
				block = append(block, asm.JNE.Reg(asm.R1, asm.R3, next))
			}
		}
		if e.major != wildcard {
			block = append(block, asm.JNE.Imm(asm.R4, int32(e.major), next))
		}
		if e.minor != wildcard {
			block = append(block, asm.JNE.Imm(asm.R5, int32(e.minor), next))
		}
		block = append(block, asm.Mov.Imm32(asm.R0, verdict), asm.Return())
		block[0] = block[0].WithSymbol(label(i))
		insts = append(insts, block...)
	}
	insts = append(insts,
		asm.Mov.Imm32(asm.R0, fallback).WithSymbol(label(len(p.exceptions))),
		asm.Return())
	return insts
}

// attachDeviceFilter loads the policy as an eBPF program, attaches it to
// the cgroup at dir and then detaches every device program that was
// attached before, so that an update can widen access as well as narrow
// it. Until the old programs are gone both apply, which only ever denies
// more. (The loader of containerd/cgroups leaves old programs attached, and
// with BPF_F_ALLOW_MULTI every attached program must allow an access.)
func attachDeviceFilter(dir string, p devicePolicy) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: deviceFilterProgram(p),
		License:      "Apache",
	})
	if err != nil {
		return fmt.Errorf("load device filter program: %w", err)
	}
	defer prog.Close()

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)

	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	for _, ap := range old.Programs {
		op, err := ebpf.NewProgramFromID(ap.ID)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open old device program %d of %s: %w", ap.ID, dir, err)
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{
			Target:  fd,
			Program: op,
			Attach:  ebpf.AttachCGroupDevice,
		})
		op.Close()
		if err != nil {
			return fmt.Errorf("detach old device program %d from %s: %w", ap.ID, dir, err)
		}
	}
	return nil
}
