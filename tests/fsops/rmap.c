// SPDX-License-Identifier: GPL-2.0
/*
 * rmap FILE: mappings of FILE, which it creates (3 pages and 100 bytes of a known pattern;
 * on the server when run tethered). One line per case, "what = result", so that the
 * tethered transcript can be compared with the untethered one: private and shared
 * read-only mappings see the file's bytes (also at an offset), a private mapping's writes
 * stay in the process, a page wholly past the end of the file gets SIGBUS and the rest of
 * the last page reads as zeros, mprotect and the argument checks answer as Linux does;
 * stores into a shared writable mapping reach the file at msync, munmap, fsync and exit,
 * and another process's mapping of the file sees them at once
 * (client_proxy/syscalls/shmap.rs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define SIZE (3 * PG + 100)

static unsigned char want[SIZE];
static sigjmp_buf jump;

static void r(const char *what, long ret)
{
	if (ret < 0)
		printf("%s = -1 (%s)\n", what, strerrorname_np(errno));
	else
		printf("%s = %ld\n", what, ret);
}

static void on_sigbus(int sig __attribute__((unused)))
{
	siglongjmp(jump, 1);
}

/* Prints the byte read at P, or SIGBUS. */
static void peek(const char *what, volatile unsigned char *p)
{
	if (sigsetjmp(jump, 1))
		printf("%s = SIGBUS\n", what);
	else
		printf("%s = %d\n", what, *p);
}

/* Whether the LEN bytes at M are the file's from offset OFF. */
static int same(const unsigned char *m, size_t off, size_t len)
{
	return !memcmp(m, want + off, len);
}

/* Whether byte OFF of the file open as FD (read with pread) is V. */
static int file_has(int fd, off_t off, unsigned char v)
{
	unsigned char b;

	return pread(fd, &b, 1, off) == 1 && b == v;
}

/*
 * Shared writable mappings: stores reach the file at msync, munmap, fsync and exit; other
 * processes' mappings of the file see them at once.
 */
static void shared_rw(int fd)
{
	unsigned char *m, *m2;
	int st = -1;
	pid_t pid;

	m = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r("mmap shared read-write, 5 pages", m == MAP_FAILED ? -1 : 0);
	if (m == MAP_FAILED)
		return;
	r("  shared rw: bytes are the file's", same(m, 0, SIZE));
	peek("  shared rw: a page wholly past the end of the file", m + 4 * PG + 1);
	m[10] = 0x5a;
	m[2 * PG + 3] = 0xa5;
	r("  shared rw: msync", msync(m, SIZE, MS_SYNC));
	r("  shared rw: pread sees the stores after msync",
	  file_has(fd, 10, 0x5a) && file_has(fd, 2 * PG + 3, 0xa5));
	r("  shared rw: other bytes unchanged", file_has(fd, 11, want[11]));
	/* A child maps the file too: each sees the other's stores at once. */
	pid = fork();
	if (pid == 0) {
		m2 = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m2 == MAP_FAILED || m2[10] != 0x5a)
			_exit(1);
		m2[12] = 0x77;
		for (int i = 0; i < 10000 && m2[13] != 0x66; i++)
			usleep(1000);
		/* Written back as it exits. */
		m2[PG + 1] = 0x44;
		_exit(0);
	}
	for (int i = 0; i < 10000 && m[12] != 0x77 && pid > 0; i++)
		usleep(1000);
	r("  shared rw: the parent sees the child's store", m[12]);
	m[13] = 0x66;
	r("  shared rw: the child saw the parent's stores and exited", pid > 0 && waitpid(pid, &st, 0) == pid ? st : -1);
	r("  shared rw: the child's store reached the file when it exited", file_has(fd, PG + 1, 0x44));
	m[3 * PG + 5] = 0x42;
	r("munmap shared rw", munmap(m, 5 * PG));
	r("  shared rw: munmap wrote the store back", file_has(fd, 3 * PG + 5, 0x42));
	m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG);
	r("mmap shared read-write at offset 1 page", m == MAP_FAILED ? -1 : 0);
	if (m == MAP_FAILED)
		return;
	r("  offset rw: sees the stores of the earlier mappings", m[1] == 0x44);
	m[7] = 0x21;
	r("  offset rw: fsync", fsync(fd));
	r("  offset rw: fsync wrote the store back", file_has(fd, PG + 7, 0x21));
	r("munmap offset rw", munmap(m, PG));
}

int main(int argc, char **argv)
{
	unsigned char *m, buf[16];
	int fd, rfd, wfd;

	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGBUS, on_sigbus);
	for (int i = 0; i < SIZE; i++)
		want[i] = (unsigned char)(i * 7 + i / PG + 1);
	fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0 || write(fd, want, SIZE) != SIZE)
		return 1;

	m = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	r("mmap private read", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED) {
		r("  private: bytes are the file's", same(m, 0, SIZE));
		peek("  private: past the end of the file in its last page", m + SIZE + 10);
		r("  private: mprotect read-write", mprotect(m, PG, PROT_READ | PROT_WRITE));
		m[5] = 0xee;
		r("  private: its write is seen in the mapping", m[5]);
		r("  private: pread after the write", pread(fd, buf, 8, 0));
		r("  private: the file keeps its byte", buf[5] == want[5]);
		r("munmap private", munmap(m, SIZE));
	}

	m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 2 * PG);
	r("mmap private at offset 2 pages", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED) {
		r("  offset: bytes are the file's", same(m, 2 * PG, PG));
		munmap(m, PG);
	}

	rfd = open(argv[1], O_RDONLY);
	m = mmap(NULL, 5 * PG, PROT_READ, MAP_SHARED, rfd, 0);
	r("mmap shared read-only (fd read-only), 5 pages", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED) {
		r("  shared: bytes are the file's", same(m, 0, SIZE));
		peek("  shared: a page wholly past the end of the file", m + 4 * PG + 1);
		r("  shared: mprotect read-write", mprotect(m, PG, PROT_READ | PROT_WRITE));
		munmap(m, 5 * PG);
	}
	close(rfd);

	m = mmap(NULL, PG, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	r("mmap private read-exec", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED)
		munmap(m, PG);

	m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, PG);
	r("mmap private, populated", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED) {
		r("  populated: bytes are the file's", same(m, PG, PG));
		munmap(m, PG);
	}

	m = mmap(NULL, 0, PROT_READ, MAP_PRIVATE, fd, 0);
	r("mmap length 0", m == MAP_FAILED ? -1 : 0);
	m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 100);
	r("mmap unaligned offset", m == MAP_FAILED ? -1 : 0);
	wfd = open(argv[1], O_WRONLY);
	m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, wfd, 0);
	r("mmap of a write-only fd", m == MAP_FAILED ? -1 : 0);
	close(wfd);
	shared_rw(fd);
	return 0;
}
