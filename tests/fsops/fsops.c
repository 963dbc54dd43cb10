// SPDX-License-Identifier: GPL-2.0
/*
 * fsops DIR: runs a fixed sequence of file-system and fd system calls in DIR (which must
 * not exist) and prints one line per call: its result, errno and the data that must not
 * depend on where it ran (sizes, modes, link counts, contents, names; never inode numbers,
 * times or absolute paths). Run once on the server, once tethered on the client against
 * the server: the two transcripts must be identical.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x20
#endif
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x40
#endif

static long r(const char *what, long ret)
{
	printf("%-28s = %ld", what, ret);
	if (ret < 0)
		printf(" (%s)", strerrorname_np(errno));
	putchar('\n');
	return ret;
}

#define R(call) r(#call, (long)(call))

static void st(const char *what, int ret, const struct stat *s)
{
	r(what, ret);
	if (ret == 0)
		printf("    mode %o nlink %lu size %lld\n", s->st_mode, (unsigned long)s->st_nlink,
		       (long long)s->st_size);
}

static void data(const char *what, long n, const char *buf)
{
	r(what, n);
	if (n > 0)
		printf("    \"%.*s\"\n", (int)n, buf);
}

static void flags(const char *what, int fd)
{
	int f = fcntl(fd, F_GETFL);

	r(what, f);
	if (f >= 0)
		printf("    flags 0%o\n", f);
}

/* (the offsets by reference: read after the call that sets them) */
static void offs(const char *what, long ret, const loff_t *in, const loff_t *out)
{
	r(what, ret);
	printf("    off_in %lld off_out %lld\n", (long long)*in, out ? (long long)*out : -1LL);
}

static long open2(const char *path, unsigned long long resolve)
{
	struct open_how how = { .flags = O_RDONLY, .resolve = resolve };

	return syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names from getdents64 with a small buffer until the end, as one sorted line. */
static void rest(int fd, char *out, size_t size)
{
	char buf[64], *names[64];
	long len;
	int n = 0;

	/* (a record is smaller than struct dirent64: its fields are read at their offsets) */
	while ((len = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < len && n < 64;) {
			unsigned short reclen;

			memcpy(&reclen, buf + off + offsetof(struct dirent64, d_reclen), sizeof(reclen));
			names[n++] = strdup(buf + off + offsetof(struct dirent64, d_name));
			off += reclen;
		}
	qsort(names, n, sizeof(names[0]), cmp);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		snprintf(out + strlen(out), size - strlen(out), " %s", names[i]);
		free(names[i]);
	}
}

static void list(const char *what)
{
	char names[4096];
	int fd = open(".", O_RDONLY | O_DIRECTORY);

	r(what, fd);
	rest(fd, names, sizeof(names));
	printf("   %s\n", names);
	close(fd);
}

/* A listing in small pieces with telldir/seekdir/rewinddir-style lseeks in between. The
 * positions are the file system's cookies, so only what they lead to is printed. */
static void list_seek(const char *what, const char *file)
{
	char buf[64], tail[512], again[512];
	int fd = open(".", O_RDONLY | O_DIRECTORY), ffd;
	long pos;

	r(what, fd);
	R(syscall(SYS_getdents64, fd, buf, sizeof(buf)) > 0);
	pos = lseek(fd, 0, SEEK_CUR);
	R(pos > 0);
	rest(fd, tail, sizeof(tail));
	R(lseek(fd, pos, SEEK_SET) == pos);
	rest(fd, again, sizeof(again));
	printf("    the rest again after seeking back: %s\n", strcmp(tail, again) ? "differs" : "same");
	R(lseek(fd, 0, SEEK_SET));
	rest(fd, tail, sizeof(tail));
	printf("    after rewinding:%s\n", tail);
	R(syscall(SYS_getdents64, fd, buf, sizeof(buf)));
	R(close(fd));
	ffd = R(open(file, O_RDONLY));
	R(syscall(SYS_getdents64, ffd, buf, sizeof(buf)));
	R(close(ffd));
}

/*
 * Offsets and lengths at the edges (issue 10): 0, negative, near and past LLONG_MAX, the
 * largest file size of the file system (found with lseek, which refuses positions past it),
 * and sizes above one 128 KiB piece of a remote transfer. Every errno must be Linux's.
 */
#define NEAR_MAX (LLONG_MAX - 100)
#define BIG 300000
static char big[BIG], big2[BIG];
/* (the same buffers where a call gets a length they cannot hold: no compiler warning) */
static char *volatile vbig = big, *volatile vbig2 = big2;
static void *volatile vnull;
static volatile size_t size_max = (size_t)-1;
static struct iovec *volatile viov;

/* The largest position lseek accepts on fd: the file system's largest file size. */
static long long max_pos(int fd)
{
	long long lo = 0, hi = LLONG_MAX;

	while (lo < hi) {
		long long mid = lo + (hi - lo) / 2 + 1;

		if (lseek(fd, mid, SEEK_SET) == mid)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void same(const char *what, long n, const char *a, const char *b)
{
	r(what, n);
	if (n > 0)
		printf("    %s\n", memcmp(a, b, n) ? "differs" : "same");
}

static void edges(void)
{
	struct iovec iov[2], one[1];
	long long maxb;
	loff_t oi, oo;
	off_t o;
	int fd, ro, wo, dfd, src, out, pp[2];
	char buf[256];

	viov = iov;
	for (int i = 0; i < BIG; i++)
		big[i] = 'a' + i % 23;
	fd = R(open("edge", O_CREAT | O_RDWR, 0644));
	ro = R(open("edge", O_RDONLY));

	/* pread/pwrite: the oops (pos + count past LLONG_MAX), near it, negative */
	R(pread(fd, big2, BIG, NEAR_MAX));
	R(pread(fd, big2, 100, NEAR_MAX));
	R(pread(fd, big2, 101, NEAR_MAX));
	R(pread(fd, big2, 0, NEAR_MAX));
	R(pread(fd, big2, 1, LLONG_MAX));
	R(pread(fd, big2, 10, -1));
	R(pread(fd, big2, 10, LLONG_MIN));
	R(pread(fd, vbig2, size_max, 0));
	R(pread(fd, vbig2, SSIZE_MAX, 0));
	R(pread(fd, big2, 0, 0));
	R(pwrite(fd, big, BIG, NEAR_MAX));
	R(pwrite(fd, "x", 1, NEAR_MAX));
	R(pwrite(fd, big, 10, -5));
	R(pwrite(fd, vbig, size_max, 0));
	R(pwrite(fd, big, 0, NEAR_MAX));
	R(pwrite(ro, big, 0, 0));
	wo = R(open("edge", O_WRONLY));
	R(pread(wo, big2, 0, 0));
	R(read(wo, big2, 1));
	R(close(wo));
	/* more than one piece, and a short read of a huge count */
	R(pwrite(fd, big, BIG, 1000));
	same("pread 300000 at 1000", pread(fd, big2, BIG, 1000), big, big2);
	R(pread(fd, vbig2, 1UL << 40, BIG + 900));
	R(lseek(fd, 1000, SEEK_SET));
	same("read 300000 at 1000", read(fd, big2, BIG), big, big2);
	R(lseek(fd, 0, SEEK_CUR));
	R(read(fd, vbig2, size_max));
	R(read(ro, big2, 0));
	R(write(ro, big, 0));
	R(write(ro, big, 1));

	/* lseek: negative, overflowing, far, whence */
	R(lseek(fd, -1, SEEK_SET));
	R(lseek(fd, LLONG_MIN, SEEK_SET));
	R(lseek(fd, 5, SEEK_SET));
	R(lseek(fd, -6, SEEK_CUR));
	R(lseek(fd, LLONG_MAX, SEEK_CUR));
	R(lseek(fd, 0, SEEK_CUR));
	R(lseek(fd, LLONG_MAX, SEEK_END));
	R(lseek(fd, -BIG - 2000, SEEK_END));
	R(lseek(fd, NEAR_MAX, SEEK_SET));
	R(lseek(fd, 0, SEEK_CUR));
	R(lseek(fd, 1LL << 40, SEEK_SET));
	R(lseek(fd, 0, 5));
	R(lseek(fd, 0, -1));
	R(syscall(SYS_lseek, fd, 7, 0x100000000UL));
	R(lseek(fd, NEAR_MAX, SEEK_DATA));
	R(lseek(fd, -1, SEEK_HOLE));
	R(lseek(fd, 10, SEEK_HOLE));

	/* read/write at the file system's largest file size */
	maxb = max_pos(fd);
	printf("    largest position found (the same on both sides)\n");
	R(lseek(fd, maxb, SEEK_SET) == maxb);
	R(lseek(fd, maxb + 1, SEEK_SET));
	R(lseek(fd, 0, SEEK_CUR) == maxb);
	R(write(fd, "x", 1));
	R(read(fd, big2, BIG));
	R(lseek(fd, maxb - 10, SEEK_SET) == maxb - 10);
	R(write(fd, big, BIG));
	R(lseek(fd, 0, SEEK_CUR) == maxb);
	R(pread(fd, big2, BIG, maxb - 10));
	R(pread(fd, big2, BIG, maxb + 5));
	R(pwrite(fd, big, BIG, maxb - 3));
	{
		struct stat s;

		R(fstat(fd, &s) == 0 && s.st_size == maxb);
	}

	/* truncate, ftruncate, fallocate */
	R(ftruncate(fd, -1));
	R(ftruncate(fd, LLONG_MAX));
	R(ftruncate(fd, maxb + 1));
	R(ftruncate(ro, 5));
	R(truncate("edge", -1));
	R(truncate("edge", NEAR_MAX));
	R(ftruncate(fd, BIG + 1000));
	R(fallocate(fd, 0, NEAR_MAX, 200));
	R(fallocate(fd, 0, -1, 10));
	R(fallocate(fd, 0, 0, 0));
	R(fallocate(fd, 0, 0, -1));
	R(fallocate(fd, 0, maxb, 1));
	R(fallocate(fd, 0, maxb - 1, 2));
	R(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1));

	/* vectored I/O */
	iov[0] = (struct iovec){ big2, 200000 };
	iov[1] = (struct iovec){ big2 + 200000, 100000 };
	memset(big2, 0, BIG);
	same("preadv 2 x (200000, 100000) at 1000", preadv(fd, iov, 2, 1000), big, big2);
	R(preadv(fd, iov, 2, NEAR_MAX));
	R(preadv(fd, iov, 2, -1));
	R(preadv(fd, iov, 2, -2));
	R(pwritev(fd, iov, 2, NEAR_MAX));
	R(pwritev(fd, iov, 2, -1));
	R(preadv(fd, iov, 0, NEAR_MAX));
	R(preadv(fd, viov, 1025, 0));
	R(preadv(fd, vnull, 2, 0));
	R(lseek(fd, 1000, SEEK_SET));
	R(syscall(SYS_readv, fd, iov, 0x100000001UL));
	R(lseek(fd, 0, SEEK_CUR));
	one[0] = (struct iovec){ big2, (size_t)1 << 63 };
	R(readv(fd, one, 1));
	one[0] = (struct iovec){ big2, 1UL << 40 };
	R(lseek(fd, BIG + 900, SEEK_SET));
	R(readv(fd, one, 1));
	iov[0] = (struct iovec){ big2, 1UL << 62 };
	iov[1] = (struct iovec){ big2, 1 };
	R(readv(fd, iov, 2));
	iov[0] = (struct iovec){ big2, 10 };
	iov[1] = (struct iovec){ big2, (size_t)-1 };
	R(readv(fd, iov, 2));
	R(writev(ro, iov, 0));
	R(readv(ro, iov, 0));
	one[0] = (struct iovec){ big2, 5 };
	R(lseek(fd, 1003, SEEK_SET));
	data("preadv2 at -1 (the file offset)", preadv2(fd, one, 1, -1, 0), big2);
	R(lseek(fd, 0, SEEK_CUR));
	R(preadv2(fd, one, 1, 0, 0x1000));
	R(preadv2(fd, one, 1, 0, RWF_APPEND | RWF_NOAPPEND));
	R(preadv2(fd, one, 1, 0, RWF_ATOMIC));
	R(preadv2(fd, one, 1, NEAR_MAX, 0x1000));
	iov[0] = (struct iovec){ big2, 200000 };
	iov[1] = (struct iovec){ big2 + 200000, 100000 };
	R(preadv2(fd, iov, 2, NEAR_MAX, 0x1000));
	R(preadv2(fd, one, 1, -2, 0));
	R(pwritev2(fd, one, 1, -1, 0x1000));
	R(pwritev2(fd, one, 1, -1, RWF_APPEND));
	R(lseek(fd, 0, SEEK_CUR));
	R(pwritev2(fd, one, 1, 0, RWF_APPEND));
	R(lseek(fd, 0, SEEK_CUR));
	R(lseek(fd, 0, SEEK_END));
	R(pwritev2(fd, one, 1, -1, 0));
	R(lseek(fd, 0, SEEK_CUR));

	/* copy_file_range and sendfile */
	src = R(open("edge-src", O_CREAT | O_RDWR, 0644));
	out = R(open("edge-out", O_CREAT | O_RDWR, 0644));
	R(pwrite(src, big, BIG, 0));
	oi = NEAR_MAX;
	offs("copy_file_range near max", copy_file_range(src, &oi, out, NULL, 200, 0), &oi, NULL);
	oi = NEAR_MAX;
	offs("copy_file_range near max, 50", copy_file_range(src, &oi, out, NULL, 50, 0), &oi, NULL);
	oi = 0, oo = NEAR_MAX;
	offs("copy_file_range to near max", copy_file_range(src, &oi, out, &oo, 50, 0), &oi, &oo);
	oi = -1;
	offs("copy_file_range from -1", copy_file_range(src, &oi, out, NULL, 10, 0), &oi, NULL);
	oi = 0, oo = -1;
	offs("copy_file_range to -1", copy_file_range(src, &oi, out, &oo, 10, 0), &oi, &oo);
	oi = 0, oo = 0;
	offs("copy_file_range len -1", copy_file_range(src, &oi, out, &oo, (size_t)-1, 0), &oi, &oo);
	oi = 0, oo = 0;
	offs("copy_file_range 300000", copy_file_range(src, &oi, out, &oo, BIG, 0), &oi, &oo);
	oi = 0, oo = maxb - 10;
	offs("copy_file_range to the largest size", copy_file_range(src, &oi, out, &oo, 100, 0),
	     &oi, &oo);
	oi = 0;
	R(syscall(SYS_copy_file_range, src, &oi, out, NULL, 10, 0x100000000UL));
	R(ftruncate(out, 0));
	o = NEAR_MAX;
	offs("sendfile near max", sendfile(out, src, &o, 200), &o, NULL);
	o = NEAR_MAX;
	offs("sendfile near max, 50", sendfile(out, src, &o, 50), &o, NULL);
	o = maxb + 10;
	offs("sendfile past the largest size", sendfile(out, src, &o, 50), &o, NULL);
	o = maxb - 10;
	offs("sendfile before the largest size", sendfile(out, src, &o, 50), &o, NULL);
	o = -5;
	offs("sendfile at -5", sendfile(out, src, &o, 10), &o, NULL);
	o = 0;
	offs("sendfile count -1", sendfile(out, src, &o, (size_t)-1), &o, NULL);
	R(lseek(out, 0, SEEK_SET));
	o = 0;
	offs("sendfile 300000", sendfile(out, src, &o, BIG), &o, NULL);
	R(lseek(out, 0, SEEK_CUR));
	same("pread edge-out", pread(out, big2, BIG, 0), big, big2);
	R(lseek(out, NEAR_MAX, SEEK_SET));
	R(sendfile(out, src, NULL, 1));
	R(pipe(pp));
	o = NEAR_MAX;
	offs("sendfile to a pipe near max", sendfile(pp[1], src, &o, 200), &o, NULL);
	o = NEAR_MAX;
	offs("sendfile to a pipe near max, 50", sendfile(pp[1], src, &o, 50), &o, NULL);
	o = 0;
	offs("sendfile to a pipe, count -1", sendfile(pp[1], src, &o, (size_t)-1), &o, NULL);
	R(close(pp[0]));
	R(close(pp[1]));

	/* getdents64 from forged positions */
	dfd = R(open(".", O_RDONLY | O_DIRECTORY));
	R(lseek(dfd, NEAR_MAX, SEEK_SET));
	R(read(dfd, big2, BIG));
	R(read(dfd, big2, 10));
	R(read(dfd, big2, 0));
	R(write(dfd, "x", 1));
	R(syscall(SYS_getdents64, dfd, buf, sizeof(buf)));
	R(lseek(dfd, -5, SEEK_SET));
	R(lseek(dfd, LLONG_MAX, SEEK_CUR));
	R(syscall(SYS_getdents64, dfd, buf, 0));
	R(syscall(SYS_getdents64, dfd, buf, 0x100000000UL + sizeof(buf)) >= 0);
	R(lseek(dfd, 0, SEEK_SET));
	R(syscall(SYS_getdents64, dfd, buf, 0x100000000UL + 10));
	R(syscall(SYS_getdents64, dfd, NULL, 64));
	R(lseek(dfd, 0, SEEK_SET));
	rest(dfd, buf, sizeof(buf));
	printf("    after rewinding:%s\n", buf);
	R(close(dfd));

	R(close(src));
	R(close(out));
	R(close(ro));
	R(close(fd));
	R(unlink("edge"));
	R(unlink("edge-src"));
	R(unlink("edge-out"));
}

int main(int argc, char **argv)
{
	char buf[256], cwd[4096];
	struct stat s;
	struct statfs sf;
	int fd, fd2, dfd;

	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	R(mkdir(argv[1], 0755));
	R(chdir(argv[1]));
	getcwd(cwd, sizeof(cwd));
	printf("cwd basename %s\n", strrchr(cwd, '/') + 1);

	/* open, write, read, offsets */
	fd = R(open("a", O_CREAT | O_EXCL | O_RDWR, 0640));
	R(open("a", O_CREAT | O_EXCL | O_RDWR, 0640));
	R(write(fd, "hello world\n", 12));
	R(lseek(fd, 0, SEEK_CUR));
	R(lseek(fd, 0, SEEK_SET));
	data("read 5", read(fd, buf, 5), buf);
	data("read rest", read(fd, buf, sizeof(buf)), buf);
	data("read at eof", read(fd, buf, sizeof(buf)), buf);
	R(pwrite(fd, "HELLO", 5, 0));
	data("pread 0", pread(fd, buf, 12, 0), buf);
	R(lseek(fd, 0, SEEK_END));
	R(lseek(fd, 100, SEEK_END));
	R(write(fd, "x", 1));
	R(lseek(fd, 0, SEEK_DATA));
	R(lseek(fd, 20, SEEK_HOLE));
	R(lseek(fd, -1000, SEEK_SET));
	st("fstat", fstat(fd, &s), &s);
	R(ftruncate(fd, 5));
	st("stat a", stat("a", &s), &s);
	R(fsync(fd));
	R(fdatasync(fd));
	R(fallocate(fd, 0, 0, 8192));
	st("stat after fallocate", stat("a", &s), &s);
	R(flock(fd, LOCK_EX));
	R(flock(fd, LOCK_UN));
	R(fchmod(fd, 0600));
	st("stat after fchmod", stat("a", &s), &s);

	/* dup shares the offset; CLOEXEC is per fd */
	fd2 = R(dup(fd));
	R(lseek(fd, 1, SEEK_SET));
	data("read via dup", read(fd2, buf, 2), buf);
	R(lseek(fd, 0, SEEK_CUR));
	R(fcntl(fd2, F_GETFD));
	R(dup3(fd, fd2, O_CLOEXEC));
	R(fcntl(fd2, F_GETFD));
	R(close(fd2));
	R(close(fd));
	R(close(fd));
	R(read(fd, buf, 1));

	/* vectored I/O and record locks */
	{
		struct iovec out[2] = { { "abc", 3 }, { "defg", 4 } };
		struct iovec in[2] = { { buf, 3 }, { buf + 3, 4 } };
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

		fd = R(open("v", O_CREAT | O_RDWR, 0644));
		R(writev(fd, out, 2));
		R(lseek(fd, 0, SEEK_CUR));
		data("preadv at 1", preadv(fd, in, 2, 1), buf);
		R(pwritev(fd, out, 2, 10));
		R(lseek(fd, 0, SEEK_CUR));
		R(lseek(fd, 0, SEEK_SET));
		data("readv", readv(fd, in, 2), buf);
		R(fcntl(fd, F_SETLK, &fl));
		fl.l_type = F_RDLCK;
		R(fcntl(fd, F_GETLK, &fl));
		printf("    l_type %d\n", fl.l_type);
		R(fcntl(fd, F_GETFL) & O_ACCMODE);
		R(close(fd));
		R(unlink("v"));
	}

	/* O_APPEND and O_TRUNC */

	fd = R(open("b", O_CREAT | O_WRONLY | O_APPEND, 0644));
	R(write(fd, "one\n", 4));
	R(write(fd, "two\n", 4));
	R(close(fd));
	fd = R(open("b", O_RDONLY));
	data("read b", read(fd, buf, sizeof(buf)), buf);
	R(close(fd));
	fd = R(creat("c", 0644));
	R(close(fd));

	/* status flags (F_GETFL/F_SETFL) and fd flags, F_DUPFD; sync_file_range */
	fd = R(open("f", O_CREAT | O_RDWR, 0644));
	flags("F_GETFL O_RDWR", fd);
	R(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
	flags("F_GETFL after F_SETFL", fd);
	R(write(fd, "12345", 5));
	R(lseek(fd, 0, SEEK_SET));
	R(write(fd, "678", 3));
	R(lseek(fd, 0, SEEK_CUR));
	R(pwrite(fd, "9", 1, 0));
	R(lseek(fd, 0, SEEK_CUR));
	R(fcntl(fd, F_SETFL, 0));
	flags("F_GETFL after clearing", fd);
	R(lseek(fd, 0, SEEK_SET));
	R(write(fd, "ab", 2));
	R(lseek(fd, 0, SEEK_CUR));
	data("pread f", pread(fd, buf, sizeof(buf), 0), buf);
	R(fcntl(fd, F_GETFD));
	R(fcntl(fd, F_SETFD, FD_CLOEXEC));
	R(fcntl(fd, F_GETFD));
	fd2 = R(fcntl(fd, F_DUPFD, 100));
	R(fcntl(fd2, F_GETFD));
	R(lseek(fd, 2, SEEK_SET));
	data("read via F_DUPFD", read(fd2, buf, 3), buf);
	R(lseek(fd, 0, SEEK_CUR));
	dfd = R(fcntl(fd, F_DUPFD_CLOEXEC, 100));
	R(fcntl(dfd, F_GETFD));
	R(fcntl(dfd, F_SETFL, O_APPEND));
	flags("F_GETFL of the first fd", fd);
	R(write(fd, "Z", 1));
	R(lseek(fd2, 0, SEEK_CUR));
	R(close(dfd));
	R(close(fd2));
	R(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
	R(sync_file_range(fd, 0, 4096, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			  SYNC_FILE_RANGE_WAIT_AFTER));
	R(sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE));
	R(sync_file_range(fd, 0, 0, 0x100));
	R(close(fd));
	fd = R(open("f", O_RDONLY));
	flags("F_GETFL O_RDONLY", fd);
	R(close(fd));
	fd = R(open("f", O_WRONLY | O_APPEND | O_SYNC));
	flags("F_GETFL O_WRONLY|O_APPEND|O_SYNC", fd);
	R(write(fd, "!", 1));
	R(lseek(fd, 0, SEEK_CUR));
	R(close(fd));
	R(unlink("f"));

	/* copy_file_range and sendfile between two files, offsets from the files or given */
	{
		loff_t oi, oo;
		off_t o;
		int src, dst, ap, ro, out;

		src = R(open("g", O_CREAT | O_RDWR, 0644));
		R(write(src, "0123456789abcdef", 16));
		dst = R(open("h", O_CREAT | O_RDWR, 0644));
		R(lseek(src, 2, SEEK_SET));
		R(copy_file_range(src, NULL, dst, NULL, 4, 0));
		R(lseek(src, 0, SEEK_CUR));
		R(lseek(dst, 0, SEEK_CUR));
		oi = 10, oo = 20;
		offs("copy_file_range short", copy_file_range(src, &oi, dst, &oo, 100, 0), &oi, &oo);
		R(lseek(src, 0, SEEK_CUR));
		R(lseek(dst, 0, SEEK_CUR));
		offs("copy_file_range at eof", copy_file_range(src, &oi, dst, &oo, 5, 0), &oi, &oo);
		R(copy_file_range(src, NULL, dst, NULL, 4, 1));
		R(copy_file_range(src, NULL, src, NULL, 4, 0));
		oi = 0, oo = 4;
		offs("copy_file_range overlap", copy_file_range(src, &oi, src, &oo, 8, 0), &oi, &oo);
		oi = 0, oo = 16;
		offs("copy_file_range same file", copy_file_range(src, &oi, src, &oo, 4, 0), &oi, &oo);
		st("fstat g", fstat(src, &s), &s);
		R(copy_file_range(src, (loff_t *)8, dst, NULL, 4, 0));
		R(lseek(src, 0, SEEK_CUR));
		ap = R(open("h", O_WRONLY | O_APPEND));
		ro = R(open("h", O_RDONLY));
		R(copy_file_range(src, NULL, ap, NULL, 4, 0));
		R(copy_file_range(src, NULL, ro, NULL, 4, 0));
		R(copy_file_range(ap, NULL, dst, NULL, 4, 0));
		dfd = R(open(".", O_RDONLY | O_DIRECTORY));
		R(copy_file_range(dfd, NULL, dst, NULL, 4, 0));
		data("pread h", pread(dst, buf, sizeof(buf), 0), buf);

		out = R(open("k", O_CREAT | O_RDWR | O_TRUNC, 0644));
		R(lseek(src, 0, SEEK_SET));
		R(sendfile(out, src, NULL, 5));
		R(lseek(src, 0, SEEK_CUR));
		R(lseek(out, 0, SEEK_CUR));
		o = 15;
		offs("sendfile short", sendfile(out, src, &o, 100), &o, NULL);
		R(lseek(src, 0, SEEK_CUR));
		R(lseek(out, 0, SEEK_CUR));
		offs("sendfile at eof", sendfile(out, src, &o, 10), &o, NULL);
		o = -1;
		offs("sendfile at -1", sendfile(out, src, &o, 1), &o, NULL);
		R(sendfile(ap, src, NULL, 4));
		R(sendfile(ro, src, NULL, 4));
		R(sendfile(out, ap, NULL, 4));
		R(sendfile(out, dfd, NULL, 4));
		R(sendfile(out, src, (off_t *)8, 4));
		/* to a local pipe: read from the server, written locally */
		{
			int pp[2];

			R(pipe(pp));
			o = 3;
			offs("sendfile to a pipe", sendfile(pp[1], src, &o, 6), &o, NULL);
			data("read pipe", read(pp[0], buf, sizeof(buf)), buf);
			R(lseek(src, 5, SEEK_SET));
			R(sendfile(pp[1], src, NULL, 4));
			R(lseek(src, 0, SEEK_CUR));
			data("read pipe", read(pp[0], buf, sizeof(buf)), buf);
			R(sendfile(pp[0], src, NULL, 4));
			R(close(pp[0]));
			R(close(pp[1]));
		}
		/* (a forward overlap copies as splice's page references happen to make it) */
		R(lseek(out, 0, SEEK_SET));
		o = 2;
		offs("sendfile backward overlap", sendfile(out, out, &o, 8), &o, NULL);
		R(lseek(out, 0, SEEK_CUR));
		data("pread k", pread(out, buf, sizeof(buf), 0), buf);
		R(close(dfd));
		R(close(out));
		R(close(ro));
		R(close(ap));
		R(close(dst));
		R(close(src));
		R(unlink("g"));
		R(unlink("h"));
		R(unlink("k"));
	}

	edges();

	/* openat2 RESOLVE_* flags */
	fd = R(open("e", O_CREAT | O_WRONLY, 0644));
	R(close(fd));
	R(symlink("../..", "up"));
	R(symlink("/e", "abs"));
	R(open2("up/x", RESOLVE_BENEATH));
	fd = R(open2("abs", RESOLVE_IN_ROOT));
	R(close(fd));
	R(open2("abs", RESOLVE_BENEATH));
	R(open2("abs", RESOLVE_NO_SYMLINKS));
	fd = R(open2("e", RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
	R(close(fd));
	R(unlink("e"));
	R(unlink("up"));
	R(unlink("abs"));

	/* names */
	R(mkdir("d", 0755));
	R(mkdir("d", 0755));
	R(rmdir("a"));
	R(rename("b", "d/b"));
	R(rename("nope", "x"));
	R(link("d/b", "hard"));
	st("stat hard", stat("hard", &s), &s);
	R(symlink("d/b", "sym"));
	st("lstat sym", lstat("sym", &s), &s);
	data("readlink sym", readlink("sym", buf, sizeof(buf)), buf);
	R(readlink("a", buf, sizeof(buf)));
	R(access("sym", R_OK));
	R(access("none", F_OK));
	R(rmdir("d"));
	R(syscall(SYS_renameat2, AT_FDCWD, "c", AT_FDCWD, "hard", RENAME_NOREPLACE));
	R(syscall(SYS_renameat2, AT_FDCWD, "c", AT_FDCWD, "hard", RENAME_EXCHANGE));
	st("stat hard after exchange", stat("hard", &s), &s);
	R(chmod("hard", 0444));
	st("stat hard after chmod", stat("hard", &s), &s);
	R(truncate("a", 2));
	st("stat a after truncate", stat("a", &s), &s);
	R(open("a/x", O_RDONLY));
	R(open("d", O_WRONLY));
	list("list .");
	list_seek("list . in pieces", "c");

	/* *at with a remote dirfd */
	dfd = R(open("d", O_RDONLY | O_DIRECTORY));
	R(mkdirat(dfd, "sub", 0700));
	fd = R(openat(dfd, "sub/f", O_CREAT | O_WRONLY, 0600));
	R(write(fd, "at", 2));
	R(close(fd));
	st("fstatat sub/f", fstatat(dfd, "sub/f", &s, 0), &s);
	st("fstatat empty path", fstatat(dfd, "", &s, AT_EMPTY_PATH), &s);
	R(unlinkat(dfd, "sub", AT_REMOVEDIR));
	R(unlinkat(dfd, "sub/f", 0));
	R(unlinkat(dfd, "sub", AT_REMOVEDIR));
	R(fchdir(dfd));
	getcwd(cwd, sizeof(cwd));
	printf("cwd basename %s\n", strrchr(cwd, '/') + 1);
	list("list d");
	R(chdir(".."));
	R(close(dfd));
	R(statfs(".", &sf));
	printf("    f_type %lx\n", (unsigned long)sf.f_type);

	/* clean up */
	R(unlink("a"));
	R(unlink("hard"));
	R(unlink("sym"));
	R(unlink("c"));
	R(unlink("d/b"));
	R(rmdir("d"));
	list("list . at the end");
	R(chdir(".."));
	R(rmdir(argv[1]));
	return 0;
}
