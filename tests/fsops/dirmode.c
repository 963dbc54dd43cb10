// SPDX-License-Identifier: GPL-2.0
/*
 * dirmode DIR: the calls GNU tar makes to restore a directory's mode, one line each:
 * mkdirat(dirfd, "sub"), then chmod of "sub" relative to dirfd through fchmodat (nr 268),
 * fchmodat2 (nr 452, flags 0 and AT_SYMLINK_NOFOLLOW) and glibc's fchmodat(...,
 * AT_SYMLINK_NOFOLLOW) (which uses fchmodat2). DIR must exist; DIR/sub must not.
 * Exit status 0 when every call succeeded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

static int bad;

static void r(const char *what, long ret)
{
	if (ret < 0) {
		printf("%s = -1 (%s)\n", what, strerrorname_np(errno));
		bad = 1;
	} else {
		printf("%s = %ld\n", what, ret);
	}
}

int main(int argc, char **argv)
{
	struct stat s;
	int dfd;

	if (argc != 2)
		return 2;
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	r("open(DIR, O_DIRECTORY)", dfd);
	r("mkdirat(dfd, sub, 0700)", mkdirat(dfd, "sub", 0700));
	r("syscall fchmodat(dfd, sub, 0711)", syscall(__NR_fchmodat, dfd, "sub", 0711));
	r("syscall fchmodat2(dfd, sub, 0751, 0)", syscall(__NR_fchmodat2, dfd, "sub", 0751, 0));
	r("syscall fchmodat2(dfd, sub, 0755, AT_SYMLINK_NOFOLLOW)",
	  syscall(__NR_fchmodat2, dfd, "sub", 0755, AT_SYMLINK_NOFOLLOW));
	r("glibc fchmodat(dfd, sub, 0750, AT_SYMLINK_NOFOLLOW)",
	  fchmodat(dfd, "sub", 0750, AT_SYMLINK_NOFOLLOW));
	r("fstatat(dfd, sub)", fstatat(dfd, "sub", &s, 0));
	printf("mode of sub %o\n", s.st_mode & 07777);
	r("unlinkat(dfd, sub, AT_REMOVEDIR)", unlinkat(dfd, "sub", AT_REMOVEDIR));
	return bad;
}
