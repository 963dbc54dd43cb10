// SPDX-License-Identifier: GPL-2.0
/*
 * The signals a file-system call raises for its caller, and RLIMIT_FSIZE:
 *     tether-sigs MODE PATH
 * MODE is {fsize,pipe}-{kill,ign,handler} or inherit. fsize-*: sets RLIMIT_FSIZE (soft)
 * to 4096 and writes PATH (a file) past it; pipe-*: makes a FIFO at PATH, opens it for
 * reading and writing (non-blocking), closes the reader and writes. kill: default action
 * (the process dies: 128+25 or 128+13 in the shell); ign: SIG_IGN (EFBIG / EPIPE only);
 * handler: an SA_SIGINFO handler reports what it got. inherit: no setrlimit, SIG_IGN, so
 * the limit the process inherited decides. Prints one line per step, no paths, so that
 * the transcripts of a tethered and a local run compare equal. Run it with stdout on a
 * pipe (| cat): the limit applies to a regular file on stdout too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t got, got_signo, got_code, got_self;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got++;
	got_signo = sig;
	got_code = si->si_code;
	got_self = si->si_pid == getpid();
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s = -1 %s", what, strerrorname_np(errno));
	else
		printf("%s = %ld", what, r);
	printf(" [signals seen by the handler: %d", (int)got);
	if (got)
		printf(", last %s code %s from self %s", sigabbrev_np(got_signo),
		       got_code == SI_USER ? "SI_USER" : got_code == SI_KERNEL ? "SI_KERNEL" : "other",
		       got_self ? "yes" : "no");
	printf("]\n");
	fflush(stdout);
}

static int fsize_limit(rlim_t cur)
{
	struct rlimit rl;

	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = cur;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < cur)
		rl.rlim_max = cur;
	return setrlimit(RLIMIT_FSIZE, &rl);
}

int main(int argc, char **argv)
{
	static char buf[8192];
	const char *mode, *path, *how;
	struct sigaction sa = { 0 };
	sigset_t set;
	int sig, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s {fsize,pipe}-{kill,ign,handler}|inherit PATH\n", argv[0]);
		return 2;
	}
	mode = argv[1];
	path = argv[2];
	setvbuf(stdout, NULL, _IONBF, 0);
	sig = !strncmp(mode, "pipe", 4) ? SIGPIPE : SIGXFSZ;
	how = strchr(mode, '-') ? strchr(mode, '-') + 1 : "ign";
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (!strcmp(how, "handler")) {
		sa.sa_sigaction = on_signal;
		sa.sa_flags = SA_SIGINFO;
	} else {
		sa.sa_handler = !strcmp(how, "kill") ? SIG_DFL : SIG_IGN;
	}
	sigaction(sig, &sa, NULL);
	memset(buf, 'x', sizeof(buf));

	if (sig == SIGPIPE) {
		int r, w;

		unlink(path);
		show("mkfifo", mkfifo(path, 0600));
		r = open(path, O_RDONLY | O_NONBLOCK);
		show("open reader", r >= 0 ? 0 : -1);
		w = open(path, O_WRONLY | O_NONBLOCK);
		show("open writer", w >= 0 ? 0 : -1);
		show("write with a reader", write(w, buf, 1));
		show("close reader", close(r));
		show("write without a reader", write(w, buf, 1));
		show("second write without a reader", write(w, buf, 10));
		unlink(path);
		printf("survived\n");
		return 0;
	}
	if (strcmp(mode, "inherit"))
		show("setrlimit FSIZE 4096", fsize_limit(4096));
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	show("open", fd >= 0 ? 0 : -1);
	show("write 3000 at 0", pwrite(fd, buf, 3000, 0));
	show("write 2000 crossing the limit (short, no signal)", pwrite(fd, buf, 2000, 3000));
	show("write 1 at the limit", pwrite(fd, buf, 1, 4096));
	if (strcmp(mode, "inherit")) {
		show("ftruncate past the limit", ftruncate(fd, 100000));
		show("setrlimit FSIZE 8192", fsize_limit(8192));
		show("write 1 at 4096 after raising the limit", pwrite(fd, buf, 1, 4096));
		show("write 8192 at 0", pwrite(fd, buf, 8192, 0));
		show("setrlimit FSIZE 1024", fsize_limit(1024));
		show("write 1 at 2000 after lowering it", pwrite(fd, buf, 1, 2000));
	} else {
		show("write 8192 at 0", pwrite(fd, buf, 8192, 0));
	}
	close(fd);
	unlink(path);
	printf("survived\n");
	return 0;
}
