// SPDX-License-Identifier: GPL-2.0
/*
 * lockpid FILE [READY GATE]: record locks name their holder's pid (F_GETLK's l_pid), so
 * they show whether the server's shadows have their client processes' pids. FILE must
 * exist (an open that creates would commit, and so free, the writes a crash test keeps).
 *
 * The process locks byte 0 of FILE and forks; the child locks byte 1. The child asks who
 * holds byte 0 (must be its parent's pid), the parent who holds byte 1 (must be the
 * child's). With READY and GATE (local paths) both wait in between: the parent creates
 * READY and reads a line from the FIFO GATE, so that the host can kill the server; then both
 * lock again (a restarted server lost the locks) and ask again. Prints one line per
 * answer; exits 0 when every answer names the right pid, 1 when one does not, 2 on an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "lockpid: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void lock(int fd, off_t byte)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	if (fcntl(fd, F_SETLK, &l))
		die("F_SETLK");
}

/* The pid holding a lock on `byte` against us, 0 when none. */
static pid_t holder(int fd, off_t byte)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	if (fcntl(fd, F_GETLK, &l))
		die("F_GETLK");
	return l.l_type == F_UNLCK ? 0 : l.l_pid;
}

static int check(const char *phase, const char *who, pid_t got, pid_t want)
{
	printf("%s: %s holder is %s\n", phase, who, got == want ? "right" : "wrong");
	if (got != want)
		fprintf(stderr, "lockpid: %s: %s holder %d, expected %d\n", phase, who, got, want);
	return got == want;
}

/* One byte through a pipe: the other side's turn. */
static void pass(int fd)
{
	if (write(fd, "x", 1) != 1)
		die("pipe write");
}

static void await(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		die("pipe read");
}

int main(int argc, char **argv)
{
	int to_child[2], to_parent[2], fd, ok = 1, status;
	int phases = argc == 4 ? 2 : 1;
	pid_t child;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: lockpid FILE [READY GATE]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(argv[1], O_RDWR);
	if (fd < 0)
		die(argv[1]);
	if (pipe(to_child) || pipe(to_parent))
		die("pipe");
	child = fork();
	if (child < 0)
		die("fork");
	for (int phase = 0; phase < phases; phase++) {
		const char *name = phase ? "after" : "before";

		if (child == 0) {
			await(to_child[0]);
			lock(fd, 1);
			ok &= check(name, "child sees byte 0's", holder(fd, 0), getppid());
			pass(to_parent[1]);
			continue;
		}
		if (phase) {
			FILE *gate;
			char line[16];

			if (close(open(argv[2], O_CREAT | O_WRONLY, 0644)))
				die(argv[2]);
			gate = fopen(argv[3], "r");
			if (!gate || !fgets(line, sizeof(line), gate))
				die(argv[3]);
			fclose(gate);
		}
		lock(fd, 0);
		pass(to_child[1]);
		await(to_parent[0]);
		ok &= check(name, "parent sees byte 1's", holder(fd, 1), child);
	}
	/* The child keeps its lock until the parent asked. */
	if (child == 0) {
		await(to_child[0]);
		return !ok;
	}
	pass(to_child[1]);
	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	return !(ok && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
