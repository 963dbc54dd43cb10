// SPDX-License-Identifier: GPL-2.0
/*
 * tether-shadow: the server-side body of one tethered client process.
 *
 * Started by tether_server.ko (user-mode helper) as
 *     tether-shadow --token N --root DIR --uid UID [--pidns KEEPER --pid PID]
 * it moves into the pid namespace of its session (the one whose init has global pid
 * KEEPER) as pid PID, its client process's, opens /dev/tether_shadow, confines itself to
 * the export root, drops to UID, then loops: take the next CLIENT_SYSTEM_CALL body for its
 * token, make the real system call with the buffers placed in its own memory, send the
 * SERVER_REPLY body. A request with number FORK_NR forks the shadow: the child, pid
 * args[1] when free, serves the token in args[0].
 *     tether-shadow --keeper N
 * makes a session's pid namespace and becomes its init in a child: it registers with
 * token N and reaps orphaned shadows until the module kills it (server_comm/keeper.rs).
 * The signals the kernel raises for the caller of a file-system call (SIGPIPE, SIGXFSZ)
 * are blocked; the ones a call raised are collected after it and reported with its reply
 * (the module forwards them to the client process). The module sets the shadow's uid,
 * gids and RLIMIT_FSIZE to the client process's (mapped) inside NEXT.
 * Wire format: rust/src/syscall.rs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

struct next_args { uint64_t token; uint64_t buf; uint32_t cap; uint32_t len; uint64_t seq; };
struct reply_args { uint64_t token; uint64_t buf; uint32_t len; uint32_t signals; uint64_t seq; };
#define SHADOW_NEXT _IOWR('T', 2, struct next_args)
#define SHADOW_REPLY _IOW('T', 3, struct reply_args)
#define SHADOW_KEEPER _IOW('T', 4, uint64_t)

#define MAX_FRAME (1u << 20)
#define MAX_BUFS 4
#define DIR_IN 1
#define DIR_OUT 2
#define DIR_RET 4
#define REQ_HEAD 56
#define DEV_FD 1023
#define ROOT_FD 1022
#define FORK_NR 0xffffffffu
#define APPEND_NR 0xfffffffeu
#define GETDENTS_NR 0xfffffffdu

/* System calls a shadow makes for its client: the file system and fd families. */
static const int allowed[] = {
	SYS_read, SYS_write, SYS_close, SYS_stat, SYS_fstat, SYS_lstat, SYS_lseek,
	SYS_pread64, SYS_pwrite64, SYS_access, SYS_dup, SYS_dup2, SYS_dup3, SYS_fcntl,
	SYS_flock, SYS_fsync, SYS_fdatasync, SYS_truncate, SYS_ftruncate, SYS_getdents64,
	SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_rename, SYS_mkdir, SYS_rmdir, SYS_creat,
	SYS_link, SYS_unlink, SYS_symlink, SYS_readlink, SYS_chmod, SYS_fchmod, SYS_chown,
	SYS_fchown, SYS_lchown, SYS_umask, SYS_statfs, SYS_fstatfs, SYS_openat, SYS_mkdirat,
	SYS_fchownat, SYS_newfstatat, SYS_unlinkat, SYS_renameat, SYS_linkat, SYS_symlinkat,
	SYS_readlinkat, SYS_fchmodat, SYS_faccessat, SYS_utimensat, SYS_fallocate,
	SYS_renameat2, SYS_statx, SYS_faccessat2, SYS_copy_file_range, SYS_sync_file_range,
	SYS_openat2, SYS_sendfile, SYS_open, SYS_mknod, SYS_mknodat, SYS_setxattr, SYS_lsetxattr,
	SYS_fsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr, SYS_llistxattr,
	SYS_flistxattr, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_syncfs,
	452 /* fchmodat2 */,
};

/*
 * Calls that change the namespace, a file's size or its attributes are committed before
 * their reply: the export's file system is synced (syncfs) after each one that succeeded,
 * as NFS servers commit such operations before answering. The client keeps only plain
 * data writes until the flusher's SERVER_FLUSHED, and drops what it kept for writes
 * answered before a committed call once that call returns (client_proxy/retain.rs,
 * COMMITTED: the two lists must match). So a replay never has to redo a rename or a
 * truncate, whose second run is not idempotent.
 */
static const int committed[] = {
	SYS_truncate, SYS_ftruncate, SYS_rename, SYS_mkdir, SYS_rmdir, SYS_creat, SYS_link,
	SYS_unlink, SYS_symlink, SYS_chmod, SYS_fchmod, SYS_chown, SYS_fchown, SYS_lchown,
	SYS_mkdirat, SYS_fchownat, SYS_unlinkat, SYS_renameat, SYS_linkat, SYS_symlinkat,
	SYS_fchmodat, SYS_utimensat, SYS_fallocate, SYS_renameat2, SYS_copy_file_range,
	SYS_sendfile, SYS_mknod, SYS_mknodat, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr,
	SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, 452 /* fchmodat2 */,
};

/* The signals a call may raise for its caller (forwarded to the client), blocked. */
static sigset_t call_signals;

/* Takes the pending call signals: bit n for signal n. */
static uint32_t take_signals(void)
{
	static const struct timespec zero;
	uint32_t mask = 0;
	int sig;

	while ((sig = sigtimedwait(&call_signals, NULL, &zero)) > 0)
		if (sig < 32)
			mask |= 1u << sig;
	return mask;
}

static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A device node in the export would open the server's devices (its disks) from inside the
 * export root: creating one is refused, whoever asks (squash_root=0 included). */
static int makes_device(uint32_t nr, const uint64_t *args)
{
	uint64_t mode = nr == SYS_mknod ? args[1] : nr == SYS_mknodat ? args[2] : 0;

	return S_ISCHR(mode) || S_ISBLK(mode);
}

static int in(const int *list, size_t n, uint32_t nr)
{
	for (size_t i = 0; i < n; i++)
		if ((uint32_t)list[i] == nr)
			return 1;
	return 0;
}

static int is_allowed(uint32_t nr)
{
	return in(allowed, sizeof(allowed) / sizeof(allowed[0]), nr);
}

/* Whether call nr with args must be committed once it succeeded (see committed[]); opens
 * that create or truncate too. */
static int commits(uint32_t nr, const uint64_t *args)
{
	uint64_t flags;

	switch (nr) {
	case SYS_open:
		flags = args[1];
		break;
	case SYS_openat:
		flags = args[2];
		break;
	case SYS_openat2:  /* struct open_how, in the request: flags first */
		memcpy(&flags, (const void *)(uintptr_t)args[2], 8);
		break;
	default:
		return in(committed, sizeof(committed) / sizeof(committed[0]), nr);
	}
	return !!(flags & (O_CREAT | O_TRUNC));
}

/* Reports a failure to start in the kernel log (a user-mode helper has no stderr). */
static void report(const char *what)
{
	int e = errno, fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		dprintf(fd, "<4>tether-shadow[%d]: %s: %s\n", getpid(), what, strerror(e));
		close(fd);
	}
	errno = e;
}

/* clone3's argument (linux/sched.h) up to set_tid_size (CLONE_ARGS_SIZE_VER1). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size;
};

/* Like fork(), with clone flags, as pid `pid` in the children's pid namespace (0: any). */
static pid_t clone_as(uint64_t flags, int exit_signal, pid_t pid)
{
	struct clone3_args a = {
		.flags = flags,
		.exit_signal = (uint64_t)exit_signal,
		.set_tid = pid > 0 ? (uintptr_t)&pid : 0,
		.set_tid_size = pid > 0,
	};

	return (pid_t)syscall(SYS_clone3, &a, sizeof(a));
}

/* Sets CAP_CHECKPOINT_RESTORE (which set_tid needs; the module leaves it permitted) in the
 * effective set; returns whether it was there. */
static int checkpoint_cap(int on)
{
	const uint32_t bit = 1u << (CAP_CHECKPOINT_RESTORE - 32);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int was;

	if (syscall(SYS_capget, &h, d))
		return 0;
	was = !!(d[1].effective & bit);
	if (on)
		d[1].effective |= d[1].permitted & bit;
	else
		d[1].effective &= ~bit;
	syscall(SYS_capset, &h, d);
	return was;
}

/* Whether the shadow runs in its session's pid namespace (else in the initial one, where
 * it must not pick pids). */
static int own_pidns;

/* A client fork: the child shadow gets the client child's pid when it is free. */
static pid_t fork_as(pid_t pid)
{
	int had;
	pid_t ret;

	if (!own_pidns)
		return fork();
	had = checkpoint_cap(1);
	ret = clone_as(0, SIGCHLD, pid);

	if (!had)
		checkpoint_cap(0);
	return ret < 0 ? fork() : ret;
}

/* The keeper of a session's pid namespace: the helper the module started makes the
 * namespace; its child, the namespace's init (its parent is the helper's, which reaps it),
 * registers and reaps the shadows orphaned to it. */
static int keeper(uint64_t token)
{
	sigset_t chld;
	pid_t pid;
	int dev;

	if (unshare(CLONE_NEWPID)) {
		report("keeper: cannot make a pid namespace");
		return 1;
	}
	pid = clone_as(CLONE_PARENT, 0, 0);
	if (pid < 0)
		report("keeper: cannot start the namespace's init");
	if (pid != 0)
		return pid < 0;
	prctl(PR_SET_NAME, "tether-keeper");
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	dev = open("/dev/tether_shadow", O_RDWR | O_CLOEXEC);
	if (dev < 0 || ioctl(dev, SHADOW_KEEPER, &token)) {
		report("keeper: cannot register");
		return 1;
	}
	close(dev);
	for (;;) {
		struct timespec second = { 1, 0 };

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sigtimedwait(&chld, NULL, &second);
	}
}

/* Moves into the pid namespace whose init is `keeper` as pid `pid` (any pid when it is
 * taken): the helper forks the shadow there. Returns 1 in the helper, which is done, 0 in
 * the shadow, -1 when it cannot (the helper goes on as the shadow). */
static int enter_pidns(pid_t keeper, pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, keeper, 0);
	pid_t child;

	if (pfd < 0 || setns(pfd, CLONE_NEWPID)) {
		report("cannot enter the session's pid namespace");
		if (pfd >= 0)
			close(pfd);
		return -1;
	}
	close(pfd);
	child = clone_as(CLONE_PARENT, 0, pid);
	if (child < 0)
		child = clone_as(CLONE_PARENT, 0, 0);
	if (child < 0) {
		report("cannot fork into the session's pid namespace");
		return -1;
	}
	return child > 0;
}

/* Runs one request; writes the reply body into rep and returns its length. Returns 0 in
 * the child of a fork, with its token in *child_token (it sends no reply). */
static size_t serve(uint8_t *req, size_t len, uint8_t *rep, uint8_t *scratch, uint64_t *child_token)
{
	uint64_t args[6];
	uint32_t nr, nbufs, nout = 0, lens[MAX_BUFS];
	uint8_t *out[MAX_BUFS];
	uint8_t dirs[MAX_BUFS];
	uint32_t blen[MAX_BUFS];
	size_t off, used = 0, pos;
	int64_t ret;

	if (len < REQ_HEAD)
		goto bad;
	nr = le32(req);
	nbufs = le32(req + 4);
	if (nbufs > MAX_BUFS || len < REQ_HEAD + 8 * nbufs)
		goto bad;
	for (int i = 0; i < 6; i++)
		args[i] = le64(req + 8 + 8 * i);
	off = REQ_HEAD + 8 * nbufs;
	for (uint32_t i = 0; i < nbufs; i++) {
		const uint8_t *d = req + REQ_HEAD + 8 * i;
		uint8_t arg = d[0], dir = d[1];
		uint32_t l = le32(d + 4);
		uint8_t *p;

		if (arg >= 6 || l > MAX_FRAME)
			goto bad;
		if (dir & DIR_IN) {
			if (l > len - off)
				goto bad;
			p = req + off;  /* in place; writable for in/out buffers too */
			off += l;
		} else {
			if (l > MAX_FRAME - used)
				goto bad;
			p = scratch + used;
			used += l;
		}
		args[arg] = (uint64_t)(uintptr_t)p;
		dirs[i] = dir;
		blen[i] = l;
		out[i] = p;
	}
	if (off != len)
		goto bad;
	if (nr == FORK_NR && nbufs == 0) {
		ret = fork_as((pid_t)args[1]);
		if (ret == 0) {
			*child_token = args[0];
			return 0;
		}
		if (ret < 0)
			ret = -errno;
	} else if (nr == APPEND_NR && nbufs == 2) {
		/* An append (client_proxy/fs.rs): write, then where the file offset ended, into
		 * the 8-byte output buffer at argument 3 (-1 when it has none: a FIFO). */
		int64_t end;

		ret = write((int)args[0], (const void *)(uintptr_t)args[1], args[2]);
		if (ret < 0)
			ret = -errno;
		end = lseek((int)args[0], 0, SEEK_CUR);
		memcpy((void *)(uintptr_t)args[3], &end, 8);
	} else if (nr == GETDENTS_NR && nbufs == 2) {
		/* A directory listing (client_proxy/fs.rs): getdents64 from the client's position
		 * (argument 4), then where it ended into the 8-byte output buffer at argument 3.
		 * The client keeps a directory's position, so a restarted server goes on with a
		 * listing where the crashed one was. Seeking to the current position is a no-op
		 * that keeps the file system's readdir state. */
		int fd = (int)args[0];
		int64_t end;

		if (lseek(fd, (off_t)args[4], SEEK_SET) < 0 && errno != ESPIPE)
			ret = -errno;
		else if ((ret = syscall(SYS_getdents64, fd, args[1], args[2])) < 0)
			ret = -errno;
		end = lseek(fd, 0, SEEK_CUR);
		memcpy((void *)(uintptr_t)args[3], &end, 8);
	} else if (!is_allowed(nr)) {
		ret = -ENOSYS;
	} else if (makes_device(nr, args)) {
		ret = -EPERM;
	} else {
		ret = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
		if (ret == -1)
			ret = -errno;
		/* A commit that fails turns the call's success into EIO (an fd it opened is
		 * closed again): the client must not count on it being durable. */
		else if (commits(nr, args) && syncfs(ROOT_FD)) {
			if (nr == SYS_open || nr == SYS_openat || nr == SYS_openat2 || nr == SYS_creat)
				close((int)ret);
			ret = -EIO;
		}
	}
	/* Reply: i64 ret, u32 nout, u32 0, nout x u32 len, then the output bytes. */
	for (uint32_t i = 0; i < nbufs; i++)
		nout += !!(dirs[i] & DIR_OUT);
	pos = 16 + 4 * nout;
	nout = 0;
	for (uint32_t i = 0; i < nbufs; i++) {
		uint32_t l = blen[i];

		if (!(dirs[i] & DIR_OUT))
			continue;
		if (ret < 0)
			l = 0;
		else if ((dirs[i] & DIR_RET) && (uint64_t)ret < l)
			l = (uint32_t)ret;
		memcpy(rep + pos, out[i], l);
		pos += l;
		lens[nout++] = l;
	}
	memcpy(rep, &ret, 8);
	memcpy(rep + 8, &nout, 4);
	memset(rep + 12, 0, 4);
	memcpy(rep + 16, lens, 4 * nout);
	return pos;
bad:
	ret = -EINVAL;
	memcpy(rep, &ret, 8);
	memset(rep + 8, 0, 8);
	return 16;
}

/* Opens directory path as fd number fd (close-on-exec). */
static int open_at(const char *path, int fd)
{
	int f = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (f < 0 || dup3(f, fd, O_CLOEXEC) < 0 || close(f))
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	const char *root = "/";
	uint64_t token = 0, keeper_token = 0;
	long uid = 65534, pidns = 0, want = 0;
	static uint8_t req[MAX_FRAME], rep[MAX_FRAME + 64], scratch[MAX_FRAME];
	int dev, null;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--token"))
			token = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--root"))
			root = argv[i + 1];
		else if (!strcmp(argv[i], "--uid"))
			uid = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--pidns"))
			pidns = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--pid"))
			want = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--keeper"))
			keeper_token = strtoull(argv[i + 1], NULL, 10);
	}
	if (keeper_token)
		return keeper(keeper_token);
	if (pidns > 0) {
		int r = enter_pidns((pid_t)pidns, (pid_t)want);

		if (r == 1)
			return 0;
		own_pidns = r == 0;
	}
	/* Forked shadows are reaped as they exit (orphans by the keeper). */
	signal(SIGCHLD, SIG_IGN);
	/* Started with no open files: keep 0-2 taken, the device out of the way. */
	null = open("/dev/null", O_RDWR);
	while (null >= 0 && null < 2)
		null = dup(null);
	dev = open("/dev/tether_shadow", O_RDWR | O_CLOEXEC);
	if (dev < 0 || dup3(dev, DEV_FD, O_CLOEXEC) < 0 || close(dev)) {
		report("cannot open /dev/tether_shadow");
		return 1;
	}
	if (chdir(root) || chroot(".") || chdir("/")) {
		report("cannot confine itself to the export root");
		return 1;
	}
	if (open_at("/", ROOT_FD) < 0) {
		report("cannot open the export root");
		return 1;
	}
	if (uid != 0 && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
		return 1;
	/* Another process of the same uid must not take the shadow over (ptrace). */
	prctl(PR_SET_DUMPABLE, 0);
	sigemptyset(&call_signals);
	sigaddset(&call_signals, SIGPIPE);
	sigaddset(&call_signals, SIGXFSZ);
	if (sigprocmask(SIG_BLOCK, &call_signals, NULL))
		return 1;
	umask(022);
	for (;;) {
		struct next_args na = { .token = token, .buf = (uintptr_t)req, .cap = sizeof(req) };
		struct reply_args ra;
		uint64_t child = 0;
		int r = ioctl(DEV_FD, SHADOW_NEXT, &na);

		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		ra = (struct reply_args){ .token = token, .buf = (uintptr_t)rep, .seq = na.seq };
		ra.len = serve(req, na.len, rep, scratch, &child);
		ra.signals = take_signals();
		if (child) {
			token = child;
			continue;
		}
		if (ioctl(DEV_FD, SHADOW_REPLY, &ra) && errno != EINTR)
			return 1;
	}
}
