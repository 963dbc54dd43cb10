// SPDX-License-Identifier: GPL-2.0
/*
 * threads DIR: system calls of several threads of one process on files in DIR (on the
 * server when run tethered), where one thread's call blocks until another's runs: one line
 * per case, "what = result", so that the tethered transcript can be compared with the
 * untethered one. Run tethered, each client thread's calls run on a shadow thread of its
 * own (server_comm/shadow.rs, lanes): with one shadow thread per process these cases
 * would wait forever (an alarm ends the program after 20 s instead).
 * - a FIFO opened for reading in one thread (blocks) and for writing in another;
 * - flock on two open files of one file: the second thread waits until the first unlocks;
 * - setfsuid in one thread changes the owner of the files that thread creates only
 *   (credentials are per thread), run as root;
 * - 20 threads in turn, each with its own calls (threads that exit and new ones);
 * - a process whose leader left with pthread_exit(): its other thread's calls still run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;
static char path_fifo[4096], path_lock[4096];

static void r(const char *what, long ret)
{
	if (ret < 0)
		printf("%s = -1 (%s)\n", what, strerrorname_np(errno));
	else
		printf("%s = %ld\n", what, ret);
}

static void *fifo_writer(void *arg)
{
	int fd;

	(void)arg;
	/* The reader is (very likely) blocked in its open by now. */
	usleep(200 * 1000);
	fd = open(path_fifo, O_WRONLY);
	if (fd < 0 || write(fd, "lanes", 5) != 5)
		return (void *)1;
	close(fd);
	return NULL;
}

static void *locker(void *arg)
{
	int fd = open(path_lock, O_RDWR);
	long ret;

	(void)arg;
	/* Blocks until the main thread unlocks (its own open file). */
	ret = fd < 0 ? -1 : flock(fd, LOCK_EX);
	if (fd >= 0)
		close(fd);
	return (void *)ret;
}

static void *creator(void *arg)
{
	char p[4096];
	int fd;

	snprintf(p, sizeof(p), "%s/own-%s", dir, (const char *)arg);
	if (!strcmp(arg, "1000"))
		syscall(SYS_setfsuid, 1000);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return (void *)-1;
	close(fd);
	return NULL;
}

static void *stat_one(void *arg)
{
	struct stat st;

	return (void *)(long)stat((const char *)arg, &st);
}

/* After its leader left with pthread_exit(): the process's calls still run. */
static void *survivor(void *arg)
{
	struct stat st;
	char p[4096];
	int fd;

	usleep(300 * 1000);
	snprintf(p, sizeof(p), "%s/survivor", (const char *)arg);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) || stat(p, &st) || unlink(p))
		exit(1);
	exit(st.st_size == 1 ? 0 : 2);
}

static void on_alarm(int sig)
{
	(void)sig;
	printf("timeout: a thread's call waited for another's\n");
	fflush(stdout);
	_exit(3);
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *ret;
	char buf[16] = "";
	struct stat st;
	int fd, lfd, n;

	if (argc != 2)
		return 2;
	dir = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(20);
	/* uid 1000 creates a file in it (run as root). */
	r("chmod 1777", chmod(dir, 01777));
	snprintf(path_fifo, sizeof(path_fifo), "%s/fifo", dir);
	snprintf(path_lock, sizeof(path_lock), "%s/lock", dir);
	unlink(path_fifo);

	r("mkfifo", mkfifo(path_fifo, 0600));
	pthread_create(&t, NULL, fifo_writer, NULL);
	fd = open(path_fifo, O_RDONLY);
	r("fifo: open for reading (a thread opens it for writing)", fd < 0 ? -1 : 0);
	n = fd < 0 ? -1 : (int)read(fd, buf, sizeof(buf) - 1);
	r("fifo: read the other thread's bytes", n);
	printf("fifo: bytes = %s\n", buf);
	pthread_join(t, &ret);
	r("fifo: writer thread", (long)ret);
	if (fd >= 0)
		close(fd);

	lfd = open(path_lock, O_CREAT | O_RDWR, 0644);
	r("flock: lock", lfd < 0 ? -1 : flock(lfd, LOCK_EX));
	pthread_create(&t, NULL, locker, NULL);
	usleep(300 * 1000);
	r("flock: unlock (the other thread waits for it)", flock(lfd, LOCK_UN));
	pthread_join(t, &ret);
	r("flock: the other thread's lock", (long)ret);
	close(lfd);

	pthread_create(&t, NULL, creator, "1000");
	pthread_join(t, &ret);
	r("setfsuid in a thread: its create", (long)ret);
	pthread_create(&t, NULL, creator, "main");
	pthread_join(t, &ret);
	r("another thread's create", (long)ret);
	{
		char p[4096];

		snprintf(p, sizeof(p), "%s/own-1000", dir);
		r("setfsuid in a thread: owner of its file", stat(p, &st) ? -1 : (long)st.st_uid);
		snprintf(p, sizeof(p), "%s/own-main", dir);
		r("another thread: owner of its file", stat(p, &st) ? -1 : (long)st.st_uid);
		unlink(p);
		snprintf(p, sizeof(p), "%s/own-1000", dir);
		unlink(p);
	}

	n = 0;
	for (int i = 0; i < 20; i++) {
		pthread_create(&t, NULL, stat_one, (void *)dir);
		pthread_join(t, &ret);
		n += ret == NULL;
	}
	r("20 threads in turn: stat", n);

	fflush(stdout);
	if (fork() == 0) {
		pthread_create(&t, NULL, survivor, (void *)dir);
		pthread_exit(NULL);
	}
	r("leader gone (pthread_exit): the other thread's calls, exit status", wait(&n) > 0 ? n : -1);
	r("unlink fifo", unlink(path_fifo));
	r("unlink lock", unlink(path_lock));
	return 0;
}
