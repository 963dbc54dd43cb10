// SPDX-License-Identifier: GPL-2.0
/*
 * logsize DIR N PERSISTED: the syscall log's size against the number of calls (DESIGN
 * §3.1: O(open state), not O(history)). Creates 10 files of 4 KiB in DIR (on the server
 * when run tethered) and keeps them open, then makes N 64-byte preads round-robin over
 * them. At 1000, 10000, 100000, ... preads and at N it prints one line
 *   preads=K log_first_line="calls=..." debugfs_bytes=B persisted_bytes=P caught_up_ms=T us_per_call=U
 * B is the size of the client's debugfs log (/sys/kernel/debug/tether_client/log, a local
 * prefix); P that of the persisted copy PERSISTED once it has caught up (its body equals
 * the debugfs text; waited for up to 10 s: T, -1 if it did not); U the mean time of the
 * preads since the previous line. PERSISTED must stay local for a tethered task, e.g.
 * /proc/self/root/var/lib/tether/client.log (the /proc prefix). The files are removed at
 * the end. Exit 1 if a call failed or the persisted copy did not catch up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NFILES 10
#define FILE_BYTES 4096
#define DEBUGFS_LOG "/sys/kernel/debug/tether_client/log"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The whole of @path in a malloc'd buffer (NUL-terminated), its length in *len; NULL on error. */
static char *slurp(const char *path, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *b = realloc(buf, cap *= 2);

			if (!b)
				break;
			buf = b;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* Whether persisted text @p (header, body, "end") holds exactly @body. */
static int persisted_is(const char *p, size_t plen, const char *body, size_t blen)
{
	const char *nl = memchr(p, '\n', plen);
	size_t hdr;

	if (!nl || plen < 4 || strcmp(p + plen - 4, "end\n") ||
	    strncmp(p, "tether-client-log v1 generation=", 32))
		return 0;
	hdr = nl + 1 - p;
	return plen - hdr - 4 == blen && !memcmp(nl + 1, body, blen);
}

static int checkpoint(long k, const char *persisted, double us_per_call)
{
	size_t blen = 0, plen = 0;
	char *body = slurp(DEBUGFS_LOG, &blen), *p = NULL, *eol;
	double t0 = now_s(), waited = -1;
	int ok = 0;

	if (!body) {
		printf("preads=%ld cannot read %s: %s\n", k, DEBUGFS_LOG, strerror(errno));
		return 1;
	}
	/* No remote call is made while waiting: the log stays as it is. */
	while (now_s() - t0 < 10) {
		free(p);
		p = slurp(persisted, &plen);
		if (p && persisted_is(p, plen, body, blen)) {
			ok = 1;
			waited = (now_s() - t0) * 1000;
			break;
		}
		usleep(20000);
	}
	eol = strchr(body, '\n');
	printf("preads=%ld log_first_line=\"%.*s\" debugfs_bytes=%zu persisted_bytes=%zd caught_up_ms=%.0f us_per_call=%.1f\n",
	       k, eol ? (int)(eol - body) : 0, body, blen, p ? (ssize_t)plen : (ssize_t)-1, waited,
	       us_per_call);
	fflush(stdout);
	free(body);
	free(p);
	return !ok;
}

int main(int argc, char **argv)
{
	char path[4096], data[FILE_BYTES], buf[64];
	int fds[NFILES], i, bad = 0;
	long n, k, next = 1000, last = 0;
	double t;

	if (argc != 4 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s DIR N PERSISTED\n", argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0755) && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	for (i = 0; i < FILE_BYTES; i++)
		data[i] = 'a' + i % 26;
	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/f%d", argv[1], i);
		fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fds[i] < 0 || write(fds[i], data, FILE_BYTES) != FILE_BYTES) {
			perror(path);
			return 1;
		}
	}
	t = now_s();
	for (k = 1; k <= n; k++) {
		off_t off = (k * 64) % FILE_BYTES;

		if (pread(fds[k % NFILES], buf, sizeof(buf), off) != sizeof(buf) ||
		    memcmp(buf, data + off, sizeof(buf))) {
			printf("pread %ld failed: %s\n", k, strerror(errno));
			return 1;
		}
		if (k == next || k == n) {
			double us = (now_s() - t) * 1e6 / (k - last);

			bad |= checkpoint(k, argv[3], us);
			if (k == next)
				next *= 10;
			last = k;
			t = now_s();
		}
	}
	for (i = 0; i < NFILES; i++) {
		close(fds[i]);
		snprintf(path, sizeof(path), "%s/f%d", argv[1], i);
		unlink(path);
	}
	rmdir(argv[1]);
	return bad;
}
