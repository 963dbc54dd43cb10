// SPDX-License-Identifier: GPL-2.0
/*
 * tether-shadow: the server-side body of one tethered client process.
 *
 * Started by tether_server.ko (user-mode helper) as
 *     TETHER_TOKEN=N tether-shadow --root DIR --uid UID [--pidns KEEPER --pid PID]
 * it moves into the pid namespace of its session (the one whose init has global pid
 * KEEPER) as pid PID, its client process's, opens /dev/tether_shadow, confines itself to
 * the export root, drops to UID, then loops: take the next CLIENT_SYSTEM_CALL body for its
 * token (the module checked it against the same call table, tether_abi.h), make the
 * real system call with the buffers placed in its own memory, send the SERVER_REPLY body.
 * A NEXT with op TETHER_OP_FORK forks the shadow: the child, pid fork_pid when free,
 * serves fork_token. Tokens come in the environment, never on the command line.
 *     TETHER_TOKEN=N tether-shadow --keeper [--pids-max P --memory-mb M]
 * makes a session's cgroup (cgroup v2: tether/session-<pid>, limits P processes and M MiB,
 * 0: none) and pid namespace, and its init in a child: it registers with token N and reaps
 * orphaned shadows until the module kills it (server_comm/keeper.rs); the shadows of the
 * session start in both.
 * The signals the kernel raises for the caller of a file-system call (SIGPIPE, SIGXFSZ)
 * are blocked; the ones a call raised are collected after it and reported with its reply
 * (the module forwards them to the client process). The module sets the shadow's uid,
 * gids and RLIMIT_FSIZE to the client process's (mapped) inside NEXT.
 * Wire format: rust/src/syscall.rs; call table, ioctls and constants: tether_abi.h,
 * generated from rust/src/calls.rs and rust/src/device.rs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <unistd.h>

#include "tether_abi.h"

#define MAX_FRAME TETHER_MAX_BODY
#define MAX_BUFS TETHER_MAX_BUFS
#define REQ_HEAD TETHER_REQ_HEAD
#define DIR_IN TETHER_DIR_IN
#define DIR_OUT TETHER_DIR_OUT
#define DIR_RET TETHER_DIR_RET
#define DEV_FD TETHER_DEV_FD
#define ROOT_FD TETHER_ROOT_FD

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

/* The table entry of call nr, NULL when a shadow does not run it. */
static const struct tether_call *call_of(uint32_t nr)
{
	for (size_t i = 0; i < sizeof(tether_calls) / sizeof(tether_calls[0]); i++)
		if (tether_calls[i].nr == nr)
			return &tether_calls[i];
	return NULL;
}

/*
 * Commits: a call that changes the namespace, a file's size or its attributes
 * (TETHER_COMMITS, and opens that create or truncate) is made durable before its reply, as
 * NFS servers commit such operations before answering (nfsd's commit_metadata): fsync of
 * what it changed, the object and the directories that hold its names. The client keeps
 * every plain data write until the flusher's SERVER_FLUSHED and writes it again, by path,
 * after a crash; on a committed call it drops what it kept for the names the call removed
 * or moved (unlink, rename: client_proxy/syscalls/names.rs), whose data the commit made
 * durable. So a replay never has to redo a rename or a truncate. Where a name-by-name
 * commit would not cover what the client drops, the whole export is synced (syncfs) and
 * the reply says so (TETHER_REPLY_SYNCED_ALL: the client then drops everything it kept
 * before the call): size changes (a truncation through one name would let data kept for
 * another name of the file come back), renames of directories and symlinks, removals of
 * a symlink, and removals of a name whose file lives on under another name when that
 * file cannot be synced first.
 */

/* The names a call changes: (dirfd, path) pairs, the one it creates, removes or changes
 * first, the one a rename or link makes second. */
struct names {
	int n;
	int dirfd[2];
	const char *path[2];
};

static void add_name(struct names *nm, uint64_t dirfd, uint64_t path)
{
	if (path && nm->n < 2) {
		nm->dirfd[nm->n] = (int)dirfd;
		nm->path[nm->n] = (const char *)(uintptr_t)path;
		nm->n++;
	}
}

static void names_of(uint32_t nr, const uint64_t *a, struct names *nm)
{
	const uint64_t cwd = (uint64_t)(int64_t)AT_FDCWD;

	nm->n = 0;
	switch (nr) {
	case SYS_open: case SYS_creat: case SYS_mkdir: case SYS_rmdir: case SYS_unlink:
	case SYS_mknod: case SYS_truncate: case SYS_chmod: case SYS_chown: case SYS_lchown:
	case SYS_setxattr: case SYS_lsetxattr: case SYS_removexattr: case SYS_lremovexattr:
		add_name(nm, cwd, a[0]);
		break;
	case SYS_openat: case SYS_openat2: case SYS_mkdirat: case SYS_mknodat: case SYS_unlinkat:
	case SYS_fchownat: case SYS_fchmodat: case SYS_fchmodat2: case SYS_utimensat:
		add_name(nm, a[0], a[1]);
		break;
	case SYS_symlink:
		add_name(nm, cwd, a[1]);
		break;
	case SYS_symlinkat:
		add_name(nm, a[1], a[2]);
		break;
	case SYS_link: case SYS_rename:
		add_name(nm, cwd, a[0]);
		add_name(nm, cwd, a[1]);
		break;
	case SYS_linkat: case SYS_renameat: case SYS_renameat2:
		add_name(nm, a[0], a[1]);
		add_name(nm, a[2], a[3]);
		break;
	}
}

/* The open flags of an open call, 0 for any other call. */
static uint64_t open_flags(uint32_t nr, const uint64_t *a)
{
	uint64_t flags;

	switch (nr) {
	case SYS_open: return a[1];
	case SYS_openat: return a[2];
	case SYS_creat: return O_CREAT | O_WRONLY | O_TRUNC;
	case SYS_openat2:  /* struct open_how, in the request: flags first */
		memcpy(&flags, (const void *)(uintptr_t)a[2], 8);
		return flags;
	default: return 0;
	}
}

/* What a commit must know of the call and its names, looked at before it runs. */
struct before {
	struct names nm;      /* the names it changes */
	uint64_t oflags;      /* an open's flags */
	int whole;            /* only a sync of the whole export covers the call */
	int existed;          /* an open's file existed (then dev/ino) */
	dev_t dev;
	ino_t ino;
};

static int sync_name(int dirfd, const char *path, int follow);

/* A name about to be removed (unlink, or replaced by a rename) whose file would not be
 * covered by a commit of the name: a symlink (the client may have written through it), or
 * a file that lives on under another name (a hard link: git's objects are linked into
 * place, then their temporary name goes), unless that file's data is synced now. */
static int aliased(int dirfd, const char *path, const struct stat *st)
{
	if (S_ISLNK(st->st_mode))
		return 1;
	return !S_ISDIR(st->st_mode) && st->st_nlink > 1 && sync_name(dirfd, path, 0);
}

/* Looks at the names call nr (args a) is about to change. */
static void look_before(uint32_t nr, const uint64_t *a, struct before *b)
{
	const struct names *nm = &b->nm;
	struct stat st, st2;

	memset(b, 0, sizeof(*b));
	names_of(nr, a, &b->nm);
	b->oflags = open_flags(nr, a);
	switch (nr) {
	case SYS_truncate: case SYS_ftruncate: case SYS_fallocate: case SYS_copy_file_range:
		b->whole = 1;
		break;
	case SYS_open: case SYS_openat: case SYS_openat2: case SYS_creat:
		if (nm->n == 1 &&
		    !fstatat(nm->dirfd[0], nm->path[0], &st, b->oflags & O_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0)) {
			b->existed = 1;
			b->dev = st.st_dev;
			b->ino = st.st_ino;
			/* A truncation of data: see the comment above. */
			b->whole = (b->oflags & O_TRUNC) && S_ISREG(st.st_mode) && st.st_size > 0;
		}
		break;
	case SYS_unlink:
	case SYS_unlinkat:
		if (nr == SYS_unlink || !(a[2] & AT_REMOVEDIR))
			b->whole = nm->n != 1 || fstatat(nm->dirfd[0], nm->path[0], &st, AT_SYMLINK_NOFOLLOW) ||
				   aliased(nm->dirfd[0], nm->path[0], &st);
		break;
	case SYS_rename: case SYS_renameat: case SYS_renameat2:
		/* The file moved must be a plain one; the one replaced must not live on. */
		if (nm->n != 2 || fstatat(nm->dirfd[0], nm->path[0], &st, AT_SYMLINK_NOFOLLOW) ||
		    S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))
			b->whole = 1;
		else if (!fstatat(nm->dirfd[1], nm->path[1], &st2, AT_SYMLINK_NOFOLLOW))
			b->whole = S_ISDIR(st2.st_mode) || aliased(nm->dirfd[1], nm->path[1], &st2);
		break;
	}
}

/* fsync of an fd; 0 or -1. */
static int sync_fd(int fd)
{
	return fsync(fd) ? -1 : 0;
}

/* fsync of `path` (at dirfd) opened read-only with `flags` added; 0 or -1. */
static int sync_at(int dirfd, const char *path, int flags)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | flags), r;

	if (fd < 0)
		return -1;
	r = sync_fd(fd);
	close(fd);
	return r;
}

/* fsync of the directory that holds name `path` (at dirfd); -1 when it cannot. */
static int sync_parent(int dirfd, const char *path)
{
	char dir[4096];
	size_t l = strlen(path);
	const char *slash, *last;

	while (l > 1 && path[l - 1] == '/')
		l--;
	if (l >= sizeof(dir))
		return -1;
	memcpy(dir, path, l);
	dir[l] = 0;
	slash = strrchr(dir, '/');
	last = slash ? slash + 1 : dir;
	if (!strcmp(last, ".") || !strcmp(last, "..") || !*last)
		return -1;
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		dir[slash - dir] = 0;
	return sync_at(dirfd, dir, O_DIRECTORY);
}

/* fsync of what name `path` (at dirfd) is now (follow: a final symlink is followed): of
 * the file itself when it is a regular file or a directory, else (a symlink, a device, a
 * FIFO: nothing to open safely) of the directory holding its name, which commits the
 * journal its change is in. -1 when it cannot. */
static int sync_name(int dirfd, const char *path, int follow)
{
	struct stat st;

	if (fstatat(dirfd, path, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW))
		return -1;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return sync_parent(dirfd, path);
	return sync_at(dirfd, path, O_NONBLOCK | O_NOCTTY | (follow ? 0 : O_NOFOLLOW) |
		       (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
}

/* Whether a path-taking attribute call follows a final symlink. */
static int follows(uint32_t nr, const uint64_t *a)
{
	switch (nr) {
	case SYS_lchown: case SYS_lsetxattr: case SYS_lremovexattr:
		return 0;
	case SYS_fchownat:  /* (dirfd, path, owner, group, flags) */
		return !(a[4] & AT_SYMLINK_NOFOLLOW);
	case SYS_fchmodat2: case SYS_utimensat:  /* (dirfd, path, mode or times, flags) */
		return !(a[3] & AT_SYMLINK_NOFOLLOW);
	default:
		return 1;
	}
}

/* Whether call c with args a is committed once it succeeded: TETHER_COMMITS, and opens
 * that create or truncate. */
static int commits(const struct tether_call *c, const uint64_t *a)
{
	return c->effect == TETHER_COMMITS ||
	       (c->effect == TETHER_COMMITS_IF_CREATES && (open_flags(c->nr, a) & (O_CREAT | O_TRUNC)));
}

/*
 * Commits call nr (args a) that returned ret >= 0, with what look_before saw: 0, or -EIO
 * when nothing could make it durable. Sets TETHER_REPLY_SYNCED_ALL in *flags when it
 * synced the whole export.
 */
static int commit(uint32_t nr, const uint64_t *a, int64_t ret, const struct before *b,
		  uint32_t *flags)
{
	const struct names *nm = &b->nm;
	int whole = b->whole, i;
	struct stat st;

	if (whole)
		goto all;
	switch (nr) {
	case SYS_open: case SYS_openat: case SYS_openat2: case SYS_creat:
		/* The file it opened was there before, and kept its data: nothing changed. */
		if (b->existed && !fstat((int)ret, &st) && st.st_dev == b->dev && st.st_ino == b->ino &&
		    !(b->oflags & O_TRUNC))
			return 0;
		whole = sync_fd((int)ret) || sync_parent(nm->dirfd[0], nm->path[0]);
		break;
	case SYS_mkdir: case SYS_mkdirat:
		whole = sync_name(nm->dirfd[0], nm->path[0], 0) || sync_parent(nm->dirfd[0], nm->path[0]);
		break;
	case SYS_rmdir: case SYS_unlink: case SYS_unlinkat: case SYS_mknod: case SYS_mknodat:
	case SYS_symlink: case SYS_symlinkat:
		whole = sync_parent(nm->dirfd[0], nm->path[0]);
		break;
	case SYS_link: case SYS_linkat:
		whole = sync_parent(nm->dirfd[1], nm->path[1]);
		break;
	case SYS_rename: case SYS_renameat: case SYS_renameat2:
		/* The moved file under its new name (both, for an exchange), both directories. */
		whole = sync_name(nm->dirfd[1], nm->path[1], 0) ||
			(nr == SYS_renameat2 && (a[4] & RENAME_EXCHANGE) && sync_name(nm->dirfd[0], nm->path[0], 0)) ||
			sync_parent(nm->dirfd[0], nm->path[0]) || sync_parent(nm->dirfd[1], nm->path[1]);
		break;
	default:
		/* An attribute: the file, through its fd or its name. */
		if (nm->n == 0) {
			whole = sync_fd((int)a[0]);
			break;
		}
		for (i = 0; i < nm->n && !whole; i++)
			whole = sync_name(nm->dirfd[i], nm->path[i], follows(nr, a));
		break;
	}
	if (!whole)
		return 0;
all:
	if (syncfs(ROOT_FD))
		return -EIO;
	*flags |= TETHER_REPLY_SYNCED_ALL;
	return 0;
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

/* clone3's argument (linux/sched.h) up to cgroup (CLONE_ARGS_SIZE_VER2). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* Like fork(), with clone flags, as pid `pid` in the children's pid namespace (0: any),
 * into the cgroup whose directory is open as `cgroup` (-1: the caller's). */
static pid_t clone_as(uint64_t flags, int exit_signal, pid_t pid, int cgroup)
{
	struct clone3_args a = {
		.flags = flags | (cgroup >= 0 ? CLONE_INTO_CGROUP : 0),
		.exit_signal = (uint64_t)exit_signal,
		.set_tid = pid > 0 ? (uintptr_t)&pid : 0,
		.set_tid_size = pid > 0,
		.cgroup = cgroup >= 0 ? (uint64_t)cgroup : 0,
	};

	return (pid_t)syscall(SYS_clone3, &a, sizeof(a));
}

/*
 * Session cgroups (cgroup v2 mounted at /sys/fs/cgroup; without it there are none): a
 * session's keeper and shadows run in tether/session-N, N the pid of the keeper's helper,
 * which makes it with the session's limits (pids.max, memory.max) and removes it once the
 * keeper is gone. The session's processes, memory and page cache are charged there.
 */
#define CGROUP_FS "/sys/fs/cgroup"
#define CGROUP_SESSIONS CGROUP_FS "/tether"
#define CGROUP_SESSION "/tether/session-"

/* Writes `s` to the file at `path`; 0 or -1. */
static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, s, strlen(s));

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Removes the session cgroups whose helper is gone (killed before it could). */
static void sweep_session_cgroups(void)
{
	DIR *d = opendir(CGROUP_SESSIONS);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *end;
		long pid = strncmp(e->d_name, "session-", 8) ? 0 : strtol(e->d_name + 8, &end, 10);

		if (pid > 0 && !*end && kill((pid_t)pid, 0) && errno == ESRCH)
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	if (d)
		closedir(d);
}

/* Makes this helper's session cgroup at `path` with its limits (memory_mb 0: no limit);
 * its directory fd, or -1 when there is no cgroup v2 or it cannot be made. */
static int session_cgroup(char *path, size_t cap, long pids_max, long memory_mb)
{
	static const char *const controllers[] = { "+pids", "+memory" };
	struct statfs fs;
	char file[160], v[32];
	int fd;

	if (statfs(CGROUP_FS, &fs) || fs.f_type != CGROUP2_SUPER_MAGIC)
		return -1;
	if (mkdir(CGROUP_SESSIONS, 0755) && errno != EEXIST) {
		report("keeper: cannot make " CGROUP_SESSIONS);
		return -1;
	}
	/* The controllers the sessions' limits need (already on where systemd runs). */
	for (size_t i = 0; i < sizeof(controllers) / sizeof(controllers[0]); i++) {
		write_file(CGROUP_FS "/cgroup.subtree_control", controllers[i]);
		write_file(CGROUP_SESSIONS "/cgroup.subtree_control", controllers[i]);
	}
	sweep_session_cgroups();
	snprintf(path, cap, CGROUP_FS CGROUP_SESSION "%d", getpid());
	if (mkdir(path, 0755)) {
		report("keeper: cannot make the session's cgroup");
		return -1;
	}
	snprintf(file, sizeof(file), "%s/pids.max", path);
	snprintf(v, sizeof(v), "%ld", pids_max);
	if (write_file(file, v))
		report("keeper: cannot set the session's pids.max");
	snprintf(file, sizeof(file), "%s/memory.max", path);
	snprintf(v, sizeof(v), "%lld", (long long)memory_mb << 20);
	if (memory_mb > 0 && write_file(file, v))
		report("keeper: cannot set the session's memory.max");
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		report("keeper: cannot open the session's cgroup");
		rmdir(path);
	}
	return fd;
}

/* The session cgroup of process `pid` (its directory fd), or -1 when it is in none. */
static int session_cgroup_of(pid_t pid)
{
	char file[64], line[256], path[300];
	int fd = -1;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%d/cgroup", pid);
	f = fopen(file, "re");
	while (f && fd < 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "0::" CGROUP_SESSION, 3 + strlen(CGROUP_SESSION)))
			continue;
		snprintf(path, sizeof(path), CGROUP_FS "%s", line + 3);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (f)
		fclose(f);
	return fd;
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
	ret = clone_as(0, SIGCHLD, pid, -1);

	if (!had)
		checkpoint_cap(0);
	return ret < 0 ? fork() : ret;
}

/* The keeper of a session's pid namespace: the helper the module started makes the
 * session's cgroup and the namespace; its child, the namespace's init, registers and reaps
 * the shadows orphaned to it. The helper (tether-session) waits until the module killed the
 * keeper (and with it the namespace), then removes the cgroup. */
static int keeper(uint64_t token, long pids_max, long memory_mb)
{
	char cgroup[128];
	int cg = session_cgroup(cgroup, sizeof(cgroup), pids_max, memory_mb), dev;
	sigset_t chld;
	pid_t pid;

	if (unshare(CLONE_NEWPID)) {
		report("keeper: cannot make a pid namespace");
		pid = -1;
	} else {
		pid = clone_as(0, SIGCHLD, 0, cg);
		if (pid < 0)
			report("keeper: cannot start the namespace's init");
	}
	if (pid != 0) {
		prctl(PR_SET_NAME, "tether-session");
		while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (cg >= 0) {
			close(cg);
			/* The namespace's other processes die with its init, not at once. */
			for (int i = 0; i < 100 && rmdir(cgroup) && errno == EBUSY; i++)
				usleep(100 * 1000);
		}
		return pid < 0;
	}
	if (cg >= 0)
		close(cg);
	prctl(PR_SET_NAME, "tether-keeper");
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	dev = open("/dev/tether_shadow", O_RDWR | O_CLOEXEC);
	if (dev < 0 || ioctl(dev, TETHER_SHADOW_KEEPER, &token)) {
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
	int pfd = (int)syscall(SYS_pidfd_open, keeper, 0), cg = session_cgroup_of(keeper);
	pid_t child;

	if (pfd < 0 || setns(pfd, CLONE_NEWPID)) {
		report("cannot enter the session's pid namespace");
		if (pfd >= 0)
			close(pfd);
		if (cg >= 0)
			close(cg);
		return -1;
	}
	close(pfd);
	child = clone_as(CLONE_PARENT, 0, pid, cg);
	if (child < 0 && errno != EAGAIN)
		child = clone_as(CLONE_PARENT, 0, 0, cg);
	if (cg >= 0)
		close(cg);
	if (child < 0) {
		report("cannot fork into the session's pid namespace and cgroup");
		/* Never outside the session's cgroup: no shadow then. */
		return cg >= 0 ? 1 : -1;
	}
	return child > 0;
}

/* Writes a reply body without output (ret: a result or -errno) into rep; its length. */
/*
 * The shadow call REOPEN (rust/src/calls.rs): openat(DIRFD, PATH, FLAGS, MODE) without
 * O_CREAT, O_EXCL or O_TRUNC, for a replay. When the open fails with EACCES on a regular
 * file the caller owns whose owner bits lack what the access needs (a file created
 * O_WRONLY|O_CREAT with mode 0444, then written), the owner's bits are lent for the open
 * and given back at once: the owner may chmod its file anyway. Returns the fd or -errno.
 */
static int reopen(int dirfd, const char *path, int flags, mode_t mode)
{
	int acc = flags & O_ACCMODE, fd, e;
	mode_t need = (acc != O_WRONLY ? S_IRUSR : 0) | (acc != O_RDONLY ? S_IWUSR : 0);
	struct stat st;

	flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
	fd = openat(dirfd, path, flags, mode);
	if (fd >= 0 || errno != EACCES)
		return fd >= 0 ? fd : -errno;
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
	    st.st_uid != (uid_t)setfsuid(-1) || (st.st_mode & need) == need)
		return -EACCES;
	if (fchmodat(dirfd, path, (st.st_mode | need) & 07777, 0))
		return -EACCES;
	fd = openat(dirfd, path, flags | O_NOFOLLOW, mode);
	e = errno;
	if (fchmodat(dirfd, path, st.st_mode & 07777, 0) && fd >= 0)
		report("reopen: giving back a file's mode failed");
	return fd >= 0 ? fd : -e;
}

static size_t bare_reply(uint8_t *rep, int64_t ret)
{
	memcpy(rep, &ret, 8);
	memset(rep + 8, 0, TETHER_REP_HEAD - 8);
	return TETHER_REP_HEAD;
}

/* Runs one request; writes the reply body into rep and returns its length. */
static size_t run_call(uint8_t *req, size_t len, uint8_t *rep, uint8_t *scratch)
{
	const struct tether_call *c;
	uint64_t args[6];
	uint32_t nr, nbufs, nout = 0, lens[MAX_BUFS];
	uint8_t *out[MAX_BUFS];
	uint8_t dirs[MAX_BUFS];
	uint32_t blen[MAX_BUFS];
	size_t off, used = 0, pos;
	unsigned int mask = 0;  /* bit n: argument n is a buffer */
	uint32_t rflags = 0;    /* TETHER_REPLY_* */
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
		mask |= 1u << arg;
		dirs[i] = dir;
		blen[i] = l;
		out[i] = p;
	}
	if (off != len)
		goto bad;
	c = call_of(nr);
	if (!c) {
		ret = -ENOSYS;
	} else if (nr == TETHER_CALL_APPEND && (mask & 0xa) == 0xa) {
		/* An append (client_proxy/syscalls/io.rs): write at the end of the file, then where
		 * the file offset ended, into the 8-byte output buffer at argument 3 (-1 when it
		 * has none: a FIFO). RWF_APPEND appends whatever the server fd's own flags say (a
		 * replay may have reopened it without the O_APPEND an F_SETFL gave it). */
		struct iovec iov = { (void *)(uintptr_t)args[1], args[2] };
		int64_t end;

		ret = pwritev2((int)args[0], &iov, 1, -1, RWF_APPEND);
		if (ret < 0)
			ret = -errno;
		end = lseek((int)args[0], 0, SEEK_CUR);
		memcpy((void *)(uintptr_t)args[3], &end, 8);
	} else if (nr == TETHER_CALL_GETDENTS && (mask & 0xa) == 0xa) {
		/* A directory listing (client_proxy/syscalls/dir.rs): getdents64 from the client's position
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
	} else if (nr == TETHER_CALL_REOPEN && (mask & 0x2)) {
		ret = reopen((int)args[0], (const char *)(uintptr_t)args[1], (int)args[2], (mode_t)args[3]);
	} else if (nr == TETHER_CALL_APPEND || nr == TETHER_CALL_GETDENTS || nr == TETHER_CALL_REOPEN) {
		ret = -EINVAL;  /* without its buffers (arguments 1 and 3; REOPEN: 1) */
	} else {
		struct before before;
		int committed = commits(c, args);

		if (committed)
			look_before(nr, args, &before);
		ret = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
		if (ret == -1)
			ret = -errno;
		/* A commit that fails turns the call's success into EIO (an fd it opened is
		 * closed again): the client must not count on it being durable. */
		else if (committed && commit(nr, args, ret, &before, &rflags)) {
			if (nr == SYS_open || nr == SYS_openat || nr == SYS_openat2 || nr == SYS_creat)
				close((int)ret);
			ret = -EIO;
		}
	}
	/* Reply: i64 ret, u32 nout, u32 flags, nout x u32 len, then the output bytes. */
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
	memcpy(rep + 12, &rflags, 4);
	memcpy(rep + 16, lens, 4 * nout);
	return pos;
bad:
	return bare_reply(rep, -EINVAL);
}

/*
 * Lanes: one thread per client thread (rust/src/device.rs). The first thread serves
 * TETHER_LANE_MAIN; the spawner (started on OP_SPAWNER) starts the thread of each other
 * lane (OP_THREAD); a lane's thread whose client thread exited (OP_LANE_END) is parked
 * until the spawner hands it another lane, so threads never exit while the shadow runs
 * (and never hold glibc's locks when the main thread forks: thread starts run under
 * threads_lock, which a fork takes too).
 */
static uint64_t shadow_token;  /* the process's token: every thread names itself by it */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;

struct lane_thread {
	uint32_t lane;  /* 0 while parked */
	pthread_cond_t go;
	struct lane_thread *next_idle;
	uint8_t *req, *rep, *scratch;
};
static struct lane_thread *idle_threads;  /* parked, under threads_lock */

static int serve(uint32_t lane, uint8_t *req, uint8_t *rep, uint8_t *scratch);

static void *lane_main(void *arg)
{
	struct lane_thread *t = arg;

	for (;;) {
		int r = serve(t->lane, t->req, t->rep, t->scratch);

		/* 0: the shadow must exit; 1: the device failed. (_exit: the main thread may be
		 * in exit() at the same time.) */
		if (r != 2)
			_exit(r);
		pthread_mutex_lock(&threads_lock);
		t->lane = 0;
		t->next_idle = idle_threads;
		idle_threads = t;
		while (t->lane == 0)
			pthread_cond_wait(&t->go, &threads_lock);
		pthread_mutex_unlock(&threads_lock);
	}
	return NULL;
}

/* Starts a thread serving LANE, or hands LANE to a parked one: 0, or -1 when it cannot. */
static int start_thread(uint32_t lane)
{
	struct lane_thread *t;
	pthread_attr_t attr;
	pthread_t id;
	int r = -1;

	pthread_mutex_lock(&threads_lock);
	if (idle_threads) {
		t = idle_threads;
		idle_threads = t->next_idle;
		t->lane = lane;
		pthread_cond_signal(&t->go);
		r = 0;
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->lane = lane;
	t->req = malloc(MAX_FRAME);
	t->rep = malloc(MAX_FRAME + 64);
	t->scratch = malloc(MAX_FRAME);
	if (t->req && t->rep && t->scratch && !pthread_cond_init(&t->go, NULL) &&
	    !pthread_attr_init(&attr)) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		r = pthread_create(&id, &attr, lane_main, t) ? -1 : 0;
		pthread_attr_destroy(&attr);
	}
	if (r) {
		report("cannot start a thread for a client thread's calls");
		free(t->req);
		free(t->rep);
		free(t->scratch);
		free(t);
	}
out:
	pthread_mutex_unlock(&threads_lock);
	return r;
}

/* In a forked child: the parent's other threads do not exist here. */
static void forget_threads(void)
{
	pthread_mutex_init(&threads_lock, NULL);
	idle_threads = NULL;
}

/*
 * Serves LANE: takes its requests (REPLY_NEXT answers one and takes the next in one call;
 * NEXT alone at the start, in a forked child, and after what needs no answer). Returns 0
 * when the shadow must exit, 1 when the device failed, 2 when the lane ended.
 */
static int serve(uint32_t lane, uint8_t *req, uint8_t *rep, uint8_t *scratch)
{
	struct tether_reply_next_args rn = { .next = { .token = shadow_token } };
	uint32_t failed = 0;
	int answer = 0;

	for (;;) {
		struct tether_next_args *na = &rn.next;
		struct tether_reply_args *ra = &rn.reply;
		int r;

		na->token = shadow_token;
		na->buf = (uintptr_t)req;
		na->cap = MAX_FRAME;
		na->lane = lane;
		na->failed_lane = failed;
		r = answer ? ioctl(DEV_FD, TETHER_SHADOW_REPLY_NEXT, &rn)
			   : ioctl(DEV_FD, TETHER_SHADOW_NEXT, na);
		if (r == 0)
			return 0;
		if (r < 0) {
			/* EINTR: nothing was sent (a reply goes out before the wait), the
			 * failed lane was taken. */
			if (errno == EINTR) {
				answer = 0;
				failed = 0;
				continue;
			}
			return 1;
		}
		failed = 0;
		*ra = (struct tether_reply_args){
			.token = shadow_token, .buf = (uintptr_t)rep, .seq = na->seq,
		};
		answer = 1;
		switch (na->op) {
		case TETHER_OP_FORK: {
			pid_t pid;
			int e;

			pthread_mutex_lock(&threads_lock);
			pid = fork_as((pid_t)na->fork_pid);
			if (pid == 0) {
				/* The child serves the client child; the parent answers the fork. */
				forget_threads();
				shadow_token = na->fork_token;
				answer = 0;
				continue;
			}
			e = errno;
			pthread_mutex_unlock(&threads_lock);
			ra->len = bare_reply(rep, pid < 0 ? -e : 0);
			break;
		}
		case TETHER_OP_SPAWNER:
		case TETHER_OP_THREAD: {
			uint32_t l = na->op == TETHER_OP_SPAWNER ? TETHER_LANE_SPAWNER : na->fork_pid;

			answer = 0;
			if (start_thread(l))
				failed = l;
			continue;
		}
		case TETHER_OP_LANE_END:
			return 2;
		default:
			ra->len = run_call(req, na->len, rep, scratch);
		}
		ra->signals = take_signals();
	}
}

/* Undoes /proc/self/mountinfo's escapes (\ooo: space, tab, newline, backslash) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++, w++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*w = *s;
		}
	}
	*w = 0;
}

/*
 * An export is one file system, as nfsd exports one without crossmnt: the mounts below the
 * export root ROOT are detached in this shadow's own mount namespace (made private first,
 * so nothing propagates back to the server's), and it sees the directories they cover. So
 * every change a client makes is on the export root's file system, which the flusher's
 * syncfs() and the commits make durable (docs/DESIGN.md §3.2). Forked shadows inherit the
 * namespace.
 */
static int one_file_system(const char *root)
{
	size_t rl = strlen(root), n = 0, cap = 0;
	char line[4096], **below = NULL;
	int ret = 0;
	FILE *f;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -1;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...: the fifth field. */
		char *mp = line, *end, **more;

		for (int i = 0; i < 4 && mp; i++)
			if ((mp = strchr(mp, ' ')))
				mp++;
		if (!mp || !(end = strchr(mp, ' ')))
			continue;
		*end = 0;
		unescape(mp);
		if (strncmp(mp, root, rl) || mp[rl == 1 ? 0 : rl] != '/' || !mp[1])
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			more = realloc(below, cap * sizeof(*below));
			if (!more) {
				ret = -1;
				break;
			}
			below = more;
		}
		if (!(below[n] = strdup(mp))) {
			ret = -1;
			break;
		}
		n++;
	}
	fclose(f);
	/* Deepest first (mountinfo lists a mount after the one it is on); a mount already gone
	 * with the one it was on is EINVAL. */
	while (n > 0) {
		n--;
		if (ret == 0 && umount2(below[n], MNT_DETACH) && errno != EINVAL && errno != ENOENT)
			ret = -1;
		free(below[n]);
	}
	free(below);
	return ret;
}

/* Opens directory path as fd number fd (close-on-exec). */
static int open_at(const char *path, int fd)
{
	int f = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (f < 0 || dup3(f, fd, O_CLOEXEC) < 0 || close(f))
		return -1;
	return fd;
}

/* Takes the token from the environment and wipes it there; 0 when there is none. */
static uint64_t take_token(void)
{
	char *t = getenv("TETHER_TOKEN");
	uint64_t token;

	if (!t)
		return 0;
	token = strtoull(t, NULL, 10);
	memset(t, 0, strlen(t));
	unsetenv("TETHER_TOKEN");
	return token;
}

/* tests/selftests/shadow_commit.c includes this file for its commit rules. */
#ifndef TETHER_SHADOW_NO_MAIN
int main(int argc, char **argv)
{
	const char *root = "/";
	uint64_t token;
	long uid = 65534, pidns = 0, want = 0, pids_max = 2049, memory_mb = 0;
	static uint8_t req[MAX_FRAME], rep[MAX_FRAME + 64], scratch[MAX_FRAME];
	int dev, null, is_keeper = 0;

	/* Another process of the same uid must not take the shadow over (ptrace), nor read
	 * its token (/proc/<pid>/environ). */
	prctl(PR_SET_DUMPABLE, 0);
	token = take_token();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keeper"))
			is_keeper = 1;
		else if (i + 1 >= argc)
			break;
		else if (!strcmp(argv[i], "--root"))
			root = argv[++i];
		else if (!strcmp(argv[i], "--uid"))
			uid = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--pidns"))
			pidns = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--pid"))
			want = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--pids-max"))
			pids_max = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--memory-mb"))
			memory_mb = strtol(argv[++i], NULL, 10);
	}
	if (!token) {
		errno = EINVAL;
		report("no TETHER_TOKEN in the environment");
		return 1;
	}
	if (is_keeper)
		return keeper(token, pids_max, memory_mb);
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
	/* (Forked shadows are in their parent's namespace already.) */
	if (one_file_system(root)) {
		report("cannot detach the mounts below the export root");
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
	/* setuid() made it dumpable again. */
	prctl(PR_SET_DUMPABLE, 0);
	sigemptyset(&call_signals);
	sigaddset(&call_signals, SIGPIPE);
	sigaddset(&call_signals, SIGXFSZ);
	if (sigprocmask(SIG_BLOCK, &call_signals, NULL))
		return 1;
	umask(022);
	shadow_token = token;
	return serve(TETHER_LANE_MAIN, req, rep, scratch);
}
#endif /* TETHER_SHADOW_NO_MAIN */
