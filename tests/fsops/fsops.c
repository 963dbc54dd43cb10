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
