// Package shim is berth's per-container monitor. One shim process supervises
// one container: it creates the container with the runtime, owns its stdio
// (pipes or a pty), copies output to the json-file log and to attached
// clients, reaps the container's processes and records the exit status. The
// daemon is only a client of the shim, so berthd can be restarted, or killed,
// without stopping containers or losing their output or exit status.
//
// # Process model
//
// New writes the configuration to <StateDir>/shim.json and starts the shim
// binary (berthd re-executes itself as "berthd shim <StateDir>"; Main is the
// entry point) in its own session, with its output going to
// <StateDir>/shim.log and a pipe on descriptor 3 on which it reports
// readiness with one JSON line: {"pid":N} once the container is created (not
// started) and the socket <StateDir>/shim.sock listens, or {"error":"..."}.
// The shim is a child subreaper, ignores termination signals, and outlives
// the daemon. When the container's init exits the shim drains the output
// (giving up after two seconds if a stray process keeps it open), writes
// <StateDir>/exit.json atomically, deletes the runtime container, answers
// every waiter, ends every attach stream, removes the socket and exits. A
// daemon that was down reads the status with ReadExit.
//
// # Socket protocol
//
// Each connection to shim.sock carries one request: the client writes one
// JSON line {"op":..., ...}, the shim answers one JSON line ({"error":"..."}
// on failure) and, for the streaming ops, the connection then carries raw
// bytes. The ops:
//
//   - state: {"pid":N,"shimPid":M}.
//   - start: the container's program begins executing; {"pid":N}.
//   - attach {"stdin":b,"stdout":b,"stderr":b}: {} and then a stream. The
//     shim sends output: raw bytes with a terminal, otherwise Docker's
//     8-byte stdcopy frames (stream 1 stdout, 2 stderr), requested streams
//     only. The client sends stdin bytes (used only when stdin was requested
//     and the container has OpenStdin); its half-close is stdin EOF, which
//     closes the container's stdin when StdinOnce is set and otherwise
//     leaves it open for the next attach. The stream ends when the container
//     has exited and its output is drained, or when the client goes away.
//   - resize {"height":h,"width":w,"exec":id}: sets the window size of the
//     container's pty ("exec" empty) or of an exec's; {}.
//   - wait: blocks until the container has exited and been deleted, then
//     {"exitCode":N,"oomKilled":b,"finishedAt":"RFC 3339"} (at once if it
//     already has).
//   - exec {"id":id,"process":<OCI process>,"stdin":b,"stdout":b,"stderr":b}:
//     starts the process in the container; {"pid":N} and then a stream like
//     attach's (framed unless process.terminal; stdin half-close closes the
//     process' stdin), which ends once the process has exited and its output
//     is drained. Unrequested streams are connected to /dev/null.
//   - exec-wait {"id":id}: blocks until that exec'd process has exited;
//     {"exitCode":N}. Statuses are kept until the shim exits.
//
// Errors from the runtime (a missing program, a permission problem) come
// back verbatim, so that the daemon can map them to Docker's exit codes.
package shim
