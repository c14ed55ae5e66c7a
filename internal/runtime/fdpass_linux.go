package runtime

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SendFd sends f over the unix socket sock with SCM_RIGHTS; the message body
// is the file's name, as in the OCI console-socket protocol.
func SendFd(sock *os.File, f *os.File) error {
	name := []byte(f.Name())
	if len(name) == 0 {
		name = []byte{0}
	}
	return unix.Sendmsg(int(sock.Fd()), name, unix.UnixRights(int(f.Fd())), nil, 0)
}

// RecvFd receives one descriptor sent by SendFd.
func RecvFd(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, errors.New("connection closed before a descriptor arrived")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("expected one control message, got %d", len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("expected one descriptor, got %d", len(fds))
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
