// SPDX-License-Identifier: GPL-2.0
/*
 * crashbench: figures of tether's crash recovery, run tethered in the client VM.
 *
 *   crashbench lat FILE N
 *     pwrite64 of 4 KiB and pread64 of 64 B on FILE, N calls each: p50 in ns, one line
 *     "pwrite4k_p50 NS" and "pread64_p50 NS" (the retention cost shows in pwrite).
 *   crashbench outage FILE MIB READY RESUMED
 *     writes MIB MiB to FILE (1 MiB writes, not synced: retained by the client), creates
 *     READY (a local path, e.g. under /dev), then writes 4 KiB pieces in a loop, timing
 *     each, until RESUMED exists (the host crashed the server and the client resumed) and
 *     20 more pieces came back; prints "outage_ms MS" (the longest call: from the last
 *     write before the crash to the first one after the resume) and checks that FILE reads
 *     back whole.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static int fail(const char *what)
{
	perror(what);
	return 1;
}

static int lat(const char *file, int n)
{
	static char buf[4096];
	uint64_t *w = calloc(n, sizeof(*w)), *r = calloc(n, sizeof(*r));
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || !w || !r)
		return fail("open");
	memset(buf, 'w', sizeof(buf));
	for (int i = 0; i < n; i++) {
		uint64_t t = now_ns();

		if (pwrite(fd, buf, sizeof(buf), (off_t)(i % 64) * 4096) != sizeof(buf))
			return fail("pwrite");
		w[i] = now_ns() - t;
	}
	for (int i = 0; i < n; i++) {
		uint64_t t = now_ns();

		if (pread(fd, buf, 64, (off_t)(i % 64) * 4096) != 64)
			return fail("pread");
		r[i] = now_ns() - t;
	}
	qsort(w, n, sizeof(*w), cmp);
	qsort(r, n, sizeof(*r), cmp);
	printf("pwrite4k_p50 %llu\npread64_p50 %llu\n", (unsigned long long)w[n / 2],
	       (unsigned long long)r[n / 2]);
	return close(fd) ? fail("close") : 0;
}

/* Byte i of the outage file. */
static char byte(uint64_t i)
{
	return (char)('a' + (i * 7 + i / 4096) % 26);
}

static int outage(const char *file, int mib, const char *ready, const char *resumed)
{
	static char buf[1 << 20];
	uint64_t len = (uint64_t)mib << 20, worst = 0, off;
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644), after = -1;

	if (fd < 0)
		return fail("open");
	for (off = 0; off < len; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = byte(off + i);
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != sizeof(buf))
			return fail("pwrite");
	}
	close(open(ready, O_WRONLY | O_CREAT, 0644));
	while (after < 20) {
		uint64_t t = now_ns(), d;

		for (size_t i = 0; i < 4096; i++)
			buf[i] = byte(off + i);
		if (pwrite(fd, buf, 4096, (off_t)off) != 4096)
			return fail("pwrite (loop)");
		off += 4096;
		d = now_ns() - t;
		if (d > worst)
			worst = d;
		if (after >= 0 || !access(resumed, F_OK))
			after++;
	}
	printf("outage_ms %llu\n", (unsigned long long)(worst / 1000000));
	for (uint64_t at = 0; at < off; at += sizeof(buf)) {
		size_t n = off - at < sizeof(buf) ? off - at : sizeof(buf);

		if (pread(fd, buf, n, (off_t)at) != (ssize_t)n)
			return fail("pread");
		for (size_t i = 0; i < n; i++)
			if (buf[i] != byte(at + i)) {
				fprintf(stderr, "byte %llu differs after the crash\n",
					(unsigned long long)(at + i));
				return 1;
			}
	}
	printf("checked_bytes %llu\n", (unsigned long long)off);
	return close(fd) ? fail("close") : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "lat"))
		return lat(argv[2], atoi(argv[3]));
	if (argc == 6 && !strcmp(argv[1], "outage"))
		return outage(argv[2], atoi(argv[3]), argv[4], argv[5]);
	fprintf(stderr, "usage: crashbench lat FILE N | outage FILE MIB READY RESUMED\n");
	return 2;
}
