// SPDX-License-Identifier: GPL-2.0
/*
 * fsbench DIR [MIB]: file-system figures of the calling process, run locally or tethered.
 *   pread64 of 64 B and fstat: min/p50/p99 latency in ns over 2000 calls;
 *   sequential write of MIB MiB (1 MiB writes, then fsync) and read back: MB/s;
 *   getppid (never hooked) and read of 1 B from /dev/null (hooked, local): ns per call,
 *   the cost the module adds to untethered tasks.
 * One line per figure: "name value unit".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N 2000

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *t)
{
	qsort(t, N, sizeof(*t), cmp);
	printf("%s_min %llu ns\n%s_p50 %llu ns\n%s_p99 %llu ns\n", name, (unsigned long long)t[0],
	       name, (unsigned long long)t[N / 2], name, (unsigned long long)t[N * 99 / 100]);
}

static uint64_t per_call(long (*f)(int), int arg, long iters)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters; i++)
		f(arg);
	return (now_ns() - t0) / iters;
}

static long do_getppid(int unused) { (void)unused; return getppid(); }
static long do_read_null(int fd) { char c; return read(fd, &c, 1); }

int main(int argc, char **argv)
{
	static uint64_t t[N];
	static char buf[1 << 20];
	long mib = argc > 2 ? atol(argv[2]) : 64;
	char path[4096];
	struct stat st;
	uint64_t t0;
	int fd, null;

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/fsbench.dat", argv[1]);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || write(fd, buf, 4096) != 4096) {
		perror(path);
		return 1;
	}
	for (int i = 0; i < N; i++) {
		t0 = now_ns();
		if (pread(fd, buf, 64, (i * 64) % 4096) != 64)
			return 1;
		t[i] = now_ns() - t0;
	}
	report("pread64_64B", t);
	for (int i = 0; i < N; i++) {
		t0 = now_ns();
		if (fstat(fd, &st))
			return 1;
		t[i] = now_ns() - t0;
	}
	report("fstat", t);

	memset(buf, 0x5a, sizeof(buf));
	lseek(fd, 0, SEEK_SET);
	t0 = now_ns();
	for (long i = 0; i < mib; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
	fsync(fd);
	printf("seq_write %.1f MB/s\n", mib * 1048576.0 * 1000 / (now_ns() - t0));
	lseek(fd, 0, SEEK_SET);
	t0 = now_ns();
	for (long i = 0; i < mib; i++)
		if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
	printf("seq_read %.1f MB/s\n", mib * 1048576.0 * 1000 / (now_ns() - t0));
	close(fd);
	unlink(path);

	null = open("/dev/null", O_RDONLY);
	printf("getppid %llu ns\n", (unsigned long long)per_call(do_getppid, 0, 200000));
	printf("read_devnull %llu ns\n", (unsigned long long)per_call(do_read_null, null, 200000));
	return 0;
}
