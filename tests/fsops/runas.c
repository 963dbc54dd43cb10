// SPDX-License-Identifier: GPL-2.0
/*
 * Runs a command as another user: tether-runas UID GID GROUPS CMD [ARGS...], GROUPS a
 * comma-separated list of supplementary gids or "-" for none. (The images have no setpriv.)
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	gid_t groups[64];
	size_t n = 0;
	char *s, *tok;

	if (argc < 5) {
		fprintf(stderr, "usage: %s UID GID GROUPS|- CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[3], "-"))
		for (s = argv[3]; (tok = strsep(&s, ",")) && n < 64;)
			groups[n++] = strtoul(tok, NULL, 10);
	if (setgroups(n, groups) || setresgid(atoi(argv[2]), atoi(argv[2]), atoi(argv[2])) ||
	    setresuid(atoi(argv[1]), atoi(argv[1]), atoi(argv[1]))) {
		perror("tether-runas");
		return 126;
	}
	execvp(argv[4], argv + 4);
	perror("tether-runas: exec");
	return 127;
}
