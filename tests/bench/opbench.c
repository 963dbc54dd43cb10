// SPDX-License-Identifier: GPL-2.0
/*
 * opbench DIR [N] [MIB] [RANDOPS] [DIRENTS]: file-system figures of the calling process in
 * DIR (created; its parent must exist), run the same way locally, on an NFS mount and
 * tethered (tests/bench-all.sh). One line per figure, "name value":
 *   NAME_p50_us / NAME_p99_us over N (200) timed calls of each operation:
 *     pread64 of 64 B (one open file), fstat, stat (a path), open+close, create+write
 *     4 KiB+close, unlink, rename, mkdir+rmdir, readdir of DIRENTS (1000) entries
 *     (opendir, readdir to the end, closedir; N/10 rounds, at least 5);
 *   seq_write_MBps: MIB (1024) MiB in 1 MiB writes, then fsync, timed together;
 *   seq_read_MBps: the file read back in 1 MiB reads, after posix_fadvise(DONTNEED)
 *     (drops the reader's cached pages; on NFS the client's, tethered the server's);
 *   rand{read,write}_qd1_iops: RANDOPS (2000) 4 KiB preads / pwrites at random aligned
 *     offsets of that file, one process (the writes end with an fsync, timed);
 *   rand{read,write}_8p_iops: the same total spread over 8 processes (forked before the
 *     clock starts; each ends with its own fsync for writes).
 * Nothing is checked here: the figures only (tests/bench-all.sh never asserts on time).
 *
 * OPBENCH_STAGES=pread64 or =create in the environment: only N calls of one kind, between
 * two raise(SIGSTOP)s, so that whoever continues the process (SIGCONT) can read the
 * modules' call counters while it is stopped, with nothing but those N calls in between
 * (tests/vm/bench-all-client.sh, "where the time of one call goes"): pread64 of 64 B on
 * one open 4 KiB file (made before the first stop), or create: open(O_WRONLY | O_CREAT |
 * O_EXCL) of N new files, kept open until after the second stop (then written 4 KiB
 * and closed), so the window holds only the creating openat calls. Prints NAME_p50_us and
 * NAME_p99_us (pread64, create_open) after the second stop.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "opbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *t, long n)
{
	qsort(t, n, sizeof(*t), cmp);
	printf("%s_p50_us %.1f\n%s_p99_us %.1f\n", name, t[n / 2] / 1000.0, name,
	       t[n * 99 / 100] / 1000.0);
	fflush(stdout);
}

static char dir[4096];

static char *path(const char *fmt, long i)
{
	static char p[2][4200];
	static int k;
	char name[64];

	k ^= 1;
	snprintf(name, sizeof(name), fmt, i);
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static uint64_t xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* RANDOPS 4 KiB ops on fd over BLOCKS blocks, from seed. */
static void rand_ops(const char *file, long ops, uint64_t blocks, int write, uint64_t seed)
{
	static char b[4096];
	int fd = open(file, write ? O_RDWR : O_RDONLY);

	if (fd < 0)
		die("open (random)");
	memset(b, 'r', sizeof(b));
	seed = seed * 2654435761u + 1;
	for (long i = 0; i < ops; i++) {
		off_t off = (off_t)(xrand(&seed) % blocks) * 4096;

		if ((write ? pwrite(fd, b, 4096, off) : pread(fd, b, 4096, off)) != 4096)
			die(write ? "pwrite (random)" : "pread (random)");
	}
	if (write && fsync(fd))
		die("fsync (random)");
	close(fd);
}

static void rand_fig(const char *name, const char *file, long ops, uint64_t blocks, int write, int procs)
{
	int fd = open(file, O_RDONLY), go[2];
	uint64_t t0, ns;

	if (fd < 0)
		die("open");
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	if (procs == 1) {
		t0 = now_ns();
		rand_ops(file, ops, blocks, write, 1);
		ns = now_ns() - t0;
	} else {
		if (pipe(go))
			die("pipe");
		for (int p = 0; p < procs; p++) {
			pid_t pid = fork();
			char c;

			if (pid < 0)
				die("fork");
			if (pid == 0) {
				close(go[1]);
				if (read(go[0], &c, 1) < 0)
					_exit(2);
				rand_ops(file, ops / procs, blocks, write, p + 2);
				_exit(0);
			}
		}
		close(go[0]);
		usleep(200000);	/* let the children settle at the barrier */
		t0 = now_ns();
		close(go[1]);	/* every child's read returns 0: go */
		for (int p = 0; p < procs; p++) {
			int st;

			if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				die("a random-I/O child failed");
		}
		ns = now_ns() - t0;
		ops = ops / procs * procs;
	}
	printf("%s_iops %.0f\n", name, ops * 1e9 / (ns ? ns : 1));
	fflush(stdout);
}

/* OPBENCH_STAGES: N calls of one kind between two stops (see the top). */
static int stages(const char *what, long n, uint64_t *t)
{
	static char b[4096];
	struct rlimit rl;
	uint64_t t0;
	int fd, *fds;

	memset(b, 'c', sizeof(b));
	if (!strcmp(what, "pread64")) {
		char *f = path("small", 0);

		fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, b, 4096) != 4096)
			die("small file");
		raise(SIGSTOP);
		for (long i = 0; i < n; i++) {
			t0 = now_ns();
			if (pread(fd, b, 64, (i % 64) * 64) != 64)
				die("pread");
			t[i] = now_ns() - t0;
		}
		raise(SIGSTOP);
		close(fd);
		report("pread64", t, n);
	} else if (!strcmp(what, "create")) {
		fds = calloc(n, sizeof(*fds));
		if (!fds)
			die("calloc");
		/* n files stay open at once */
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 16) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		raise(SIGSTOP);
		for (long i = 0; i < n; i++) {
			char *p = path("s%ld", i);

			t0 = now_ns();
			fds[i] = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
			t[i] = now_ns() - t0;
			if (fds[i] < 0)
				die("create");
		}
		raise(SIGSTOP);
		for (long i = 0; i < n; i++)
			if (write(fds[i], b, 4096) != 4096 || close(fds[i]))
				die("write+close");
		report("create_open", t, n);
	} else {
		fprintf(stderr, "opbench: OPBENCH_STAGES=%s: pread64 or create\n", what);
		return 2;
	}
	printf("done 1\n");
	return 0;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 200, mib = argc > 3 ? atol(argv[3]) : 1024;
	long randops = argc > 4 ? atol(argv[4]) : 2000, dirents = argc > 5 ? atol(argv[5]) : 1000;
	long rounds = n / 10 < 5 ? 5 : n / 10;
	uint64_t *t = calloc(n > rounds ? n : rounds, sizeof(*t)), t0, ns;
	static char b[1 << 20];
	struct stat st;
	char *f;
	int fd;

	if (argc < 2 || !t || n < 2 || mib < 1) {
		fprintf(stderr, "usage: %s DIR [N] [MIB] [RANDOPS] [DIRENTS]\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	if (mkdir(dir, 0755) && errno != EEXIST)
		die("mkdir DIR");
	memset(b, 'x', sizeof(b));
	if (getenv("OPBENCH_STAGES"))
		return stages(getenv("OPBENCH_STAGES"), n, t);

	/* pread 64 B and fstat on one open 4 KiB file */
	f = path("small", 0);
	fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, b, 4096) != 4096)
		die("small file");
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		if (pread(fd, b, 64, (i % 64) * 64) != 64)
			die("pread");
		t[i] = now_ns() - t0;
	}
	report("pread64", t, n);
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		if (fstat(fd, &st))
			die("fstat");
		t[i] = now_ns() - t0;
	}
	report("fstat", t, n);
	close(fd);
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		if (stat(f, &st))
			die("stat");
		t[i] = now_ns() - t0;
	}
	report("stat", t, n);
	for (long i = 0; i < n; i++) {
		t0 = now_ns();
		fd = open(f, O_RDONLY);
		if (fd < 0 || close(fd))
			die("open+close");
		t[i] = now_ns() - t0;
	}
	report("open_close", t, n);
	memset(b, 'c', 4096);
	for (long i = 0; i < n; i++) {
		char *p = path("c%ld", i);

		t0 = now_ns();
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || write(fd, b, 4096) != 4096 || close(fd))
			die("create+write+close");
		t[i] = now_ns() - t0;
	}
	report("create_write4k_close", t, n);
	for (long i = 0; i < n; i++) {
		char *from = path("c%ld", i), *to = path("r%ld", i);

		t0 = now_ns();
		if (rename(from, to))
			die("rename");
		t[i] = now_ns() - t0;
	}
	report("rename", t, n);
	for (long i = 0; i < n; i++) {
		char *p = path("r%ld", i);

		t0 = now_ns();
		if (unlink(p))
			die("unlink");
		t[i] = now_ns() - t0;
	}
	report("unlink", t, n);
	for (long i = 0; i < n; i++) {
		char *p = path("d%ld", i);

		t0 = now_ns();
		if (mkdir(p, 0755) || rmdir(p))
			die("mkdir+rmdir");
		t[i] = now_ns() - t0;
	}
	report("mkdir_rmdir", t, n);

	/* readdir of DIRENTS entries (made untimed) */
	{
		char *d = path("dir", 0), e[4300];
		long seen;

		if (mkdir(d, 0755) && errno != EEXIST)
			die("mkdir dir");
		for (long i = 0; i < dirents; i++) {
			snprintf(e, sizeof(e), "%s/e%ld", d, i);
			fd = open(e, O_WRONLY | O_CREAT, 0644);
			if (fd < 0 || close(fd))
				die("readdir setup");
		}
		for (long r = 0; r < rounds; r++) {
			DIR *dh;

			t0 = now_ns();
			dh = opendir(d);
			if (!dh)
				die("opendir");
			for (seen = 0; readdir(dh); seen++)
				;
			closedir(dh);
			t[r] = now_ns() - t0;
			if (seen != dirents + 2) {
				errno = EIO;
				die("readdir saw another number of entries");
			}
		}
		report("readdir", t, rounds);
	}

	/* sequential write (+fsync) and read of MIB MiB */
	f = path("seq", 0);
	memset(b, 's', sizeof(b));
	fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open seq");
	t0 = now_ns();
	for (long i = 0; i < mib; i++)
		if (write(fd, b, sizeof(b)) != sizeof(b))
			die("write seq");
	if (fsync(fd))
		die("fsync seq");
	ns = now_ns() - t0;
	close(fd);
	printf("seq_write_MBps %.1f\n", mib * 1048576.0 * 1000 / (ns ? ns : 1));
	fflush(stdout);
	fd = open(f, O_RDONLY);
	if (fd < 0)
		die("open seq");
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = now_ns();
	for (long i = 0; i < mib; i++)
		if (read(fd, b, sizeof(b)) != sizeof(b))
			die("read seq");
	ns = now_ns() - t0;
	close(fd);
	printf("seq_read_MBps %.1f\n", mib * 1048576.0 * 1000 / (ns ? ns : 1));
	fflush(stdout);

	/* random 4 KiB over the sequential file */
	rand_fig("randread_qd1", f, randops, mib * 256, 0, 1);
	rand_fig("randread_8p", f, randops, mib * 256, 0, 8);
	rand_fig("randwrite_qd1", f, randops, mib * 256, 1, 1);
	rand_fig("randwrite_8p", f, randops, mib * 256, 1, 8);
	unlink(f);
	printf("done 1\n");
	return 0;
}
