// SPDX-License-Identifier: GPL-2.0
/*
 * remotemix FILE: calls that mix a remote file FILE (created, must be on the server when
 * run tethered) with local objects (a memfd, a pipe), and a mapping of FILE. One line
 * each, "what = result"; the first line is "pid=N". Tethered, sendfile from FILE to the
 * pipe and the memfd must do what it does untethered, and so must read-only mappings of
 * FILE (copies, client_proxy/syscalls/mmap.rs); copy_file_range with the memfd and
 * sendfile from the memfd fail with the error Linux gives for a file without copy or
 * splice operations (client_proxy/syscalls/copy.rs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

static void r(const char *what, long ret)
{
	if (ret < 0)
		printf("%s = -1 (%s)\n", what, strerrorname_np(errno));
	else
		printf("%s = %ld\n", what, ret);
}

int main(int argc, char **argv)
{
	int fd, mfd, p[2], n;
	char buf[64];
	off_t o = 0;
	void *m;

	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("pid=%d\n", getpid());
	fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0644);
	mfd = memfd_create("remotemix", 0);
	if (fd < 0 || mfd < 0 || pipe(p) || write(fd, "hello", 5) != 5 || write(mfd, "local", 5) != 5)
		return 1;
	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	r("mmap MAP_PRIVATE", m == MAP_FAILED ? -1 : 0);
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	r("mmap MAP_SHARED", m == MAP_FAILED ? -1 : 0);
	r("copy_file_range remote -> memfd", copy_file_range(fd, &o, mfd, NULL, 5, 0));
	o = 0;
	r("copy_file_range memfd -> remote", copy_file_range(mfd, &o, fd, NULL, 5, 0));
	r("sendfile remote -> pipe", sendfile(p[1], fd, &o, 5));
	n = read(p[0], buf, sizeof(buf));
	printf("pipe holds \"%.*s\"\n", n > 0 ? n : 0, buf);
	o = 1;
	r("sendfile remote -> memfd, offset", sendfile(mfd, fd, &o, 5));
	printf("offset %lld\n", (long long)o);
	r("sendfile remote -> memfd, no offset", sendfile(mfd, fd, NULL, 5));
	r("lseek remote", lseek(fd, 2, SEEK_SET));
	r("sendfile remote -> memfd, no offset, at 2", sendfile(mfd, fd, NULL, 2));
	r("lseek remote", lseek(fd, 0, SEEK_CUR));
	n = pread(mfd, buf, sizeof(buf), 0);
	printf("memfd holds \"%.*s\"\n", n > 0 ? n : 0, buf);
	o = 0;
	r("sendfile memfd -> remote", sendfile(fd, mfd, &o, 5));
	r("unlink", unlink(argv[1]));
	return 0;
}
