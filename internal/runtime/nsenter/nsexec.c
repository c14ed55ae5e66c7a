// The namespace constructor of berth's runtime; see nsenter.go for the
// protocol. It runs before the Go runtime, in a single-threaded process.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define MAX_JOIN 16

static int sync_fd = -1;

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(sync_fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void bail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bail(const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg + 1, sizeof(msg) - 64, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(msg) - 64)
		n = (int)sizeof(msg) - 64;
	msg[0] = 'E';
	n += 1;
	n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s\n", strerror(saved));
	if (sync_fd >= 0)
		write_all(msg, (size_t)n);
	_exit(1);
}

static void expect(char want)
{
	char c;
	for (;;) {
		ssize_t n = read(sync_fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1) {
			errno = EPIPE;
			bail("nsexec: waiting for '%c' from the parent", want);
		}
		break;
	}
	if (c != want) {
		errno = EPROTO;
		bail("nsexec: expected '%c', got '%c'", want, c);
	}
}

static int ns_flag(const char *kind)
{
	static const struct {
		const char *name;
		int flag;
	} kinds[] = {
		{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
		{"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"mnt", CLONE_NEWNS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, kind) == 0)
			return kinds[i].flag;
	return 0;
}

struct join {
	int fd;
	int flag;
};

// open_joins opens every namespace path first: once a mount namespace is
// joined, the host's paths are no longer reachable.
static int open_joins(char *spec, struct join *joins)
{
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		if (!colon) {
			errno = EINVAL;
			bail("nsexec: bad namespace entry %s", tok);
		}
		*colon = '\0';
		int flag = ns_flag(tok);
		if (!flag) {
			errno = EINVAL;
			bail("nsexec: unknown namespace kind %s", tok);
		}
		if (n == MAX_JOIN) {
			errno = E2BIG;
			bail("nsexec: too many namespaces to join");
		}
		int fd = open(colon + 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			bail("nsexec: open %s namespace %s", tok, colon + 1);
		joins[n].fd = fd;
		joins[n].flag = flag;
		n++;
	}
	return n;
}

static void join_all(struct join *joins, int n)
{
	// The user namespace comes first: it grants the capabilities needed to
	// join the namespaces it owns.
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			if ((joins[i].flag == CLONE_NEWUSER) != (pass == 0))
				continue;
			if (setns(joins[i].fd, joins[i].flag) < 0)
				bail("nsexec: setns 0x%x", joins[i].flag);
			close(joins[i].fd);
		}
	}
}

static void join_cgroups(const char *list)
{
	char *copy = strdup(list);
	if (!copy)
		bail("nsexec: strdup");
	for (char *save = NULL, *path = strtok_r(copy, "\n", &save); path; path = strtok_r(NULL, "\n", &save)) {
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			bail("nsexec: open %s", path);
		if (write(fd, "0", 1) != 1)
			bail("nsexec: join cgroup through %s", path);
		close(fd);
	}
	free(copy);
}

void berth_nsexec(void)
{
	const char *fdenv = getenv("_BERTH_NSEXEC_FD");
	if (!fdenv || !*fdenv)
		return;
	sync_fd = atoi(fdenv);
	if (sync_fd <= 2)
		_exit(1);
	// Until it executes the container's program this process runs the
	// runtime's own binary inside the container's namespaces: keep
	// processes of the container from opening its /proc/<pid>/exe, fds or
	// memory. execve of the container's program makes it dumpable again.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("nsexec: prctl PR_SET_DUMPABLE");

	char *joinenv = getenv("_BERTH_NSEXEC_JOIN");
	const char *flagsenv = getenv("_BERTH_NSEXEC_FLAGS");
	int flags = flagsenv ? atoi(flagsenv) : 0;

	struct join joins[MAX_JOIN];
	int njoin = 0;
	int joined_pid = 0; // or a time namespace: both apply to children only
	if (joinenv && *joinenv) {
		char *copy = strdup(joinenv);
		if (!copy)
			bail("nsexec: strdup");
		njoin = open_joins(copy, joins);
		free(copy);
		for (int i = 0; i < njoin; i++)
			if (joins[i].flag == CLONE_NEWPID || joins[i].flag == CLONE_NEWTIME)
				joined_pid = 1;
	}

	// Tell the parent we wait; it lets us go once our cgroup exists (or,
	// on cgroup v2 without CLONE_INTO_CGROUP, after it moved us there).
	write_all("R", 1);
	expect('G');
	// Join the container's cgroup v1 hierarchies while still in the
	// host's mount namespace: a single-threaded process that moves itself
	// through "tasks" avoids the kernel's threadgroup lock (see spawn in
	// the runtime).
	const char *cgenv = getenv("_BERTH_NSEXEC_CGROUPS");
	if (cgenv && *cgenv)
		join_cgroups(cgenv);
	join_all(joins, njoin);

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("nsexec: unshare user namespace");
		write_all("U", 1);
		expect('M');
		if (setresgid(0, 0, 0) < 0)
			bail("nsexec: setresgid to the mapped root");
		if (setresuid(0, 0, 0) < 0)
			bail("nsexec: setresuid to the mapped root");
	}
	int rest = flags & ~CLONE_NEWUSER;
	if (rest && unshare(rest) < 0)
		bail("nsexec: unshare 0x%x", rest);

	if (flags & CLONE_NEWTIME) {
		const char *offsets = getenv("_BERTH_NSEXEC_TIMEOFFSETS");
		if (offsets && *offsets) {
			int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				bail("nsexec: open timens_offsets");
			size_t len = strlen(offsets);
			if (write(fd, offsets, len) != (ssize_t)len)
				bail("nsexec: write timens_offsets");
			close(fd);
		}
	}

	if ((flags & (CLONE_NEWPID | CLONE_NEWTIME)) || joined_pid) {
		// A new PID or time namespace applies to children only.
		// CLONE_PARENT makes the caller the parent of the new process, so
		// it can wait for it; this intermediate process goes away.
		pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (child < 0)
			bail("nsexec: clone into the PID namespace");
		if (child > 0) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "P%d\n", child);
			write_all(buf, (size_t)n);
			_exit(0);
		}
		return;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "P%d\n", getpid());
	write_all(buf, (size_t)n);
}
