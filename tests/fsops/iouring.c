// SPDX-License-Identifier: GPL-2.0
/*
 * iouring: calls io_uring_setup(8, &params) once and prints the outcome, "io_uring_setup
 * = FD" or "io_uring_setup = -1 (ENOSYS)". A tethered task must get ENOSYS (an io_uring
 * would run I/O without passing through tether's proxy); any other task a valid fd.
 * Exit status 0 when the call returned an fd, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	unsigned char params[120];	/* struct io_uring_params */
	long fd;

	memset(params, 0, sizeof(params));
	fd = syscall(__NR_io_uring_setup, 8, params);
	if (fd < 0) {
		printf("io_uring_setup = -1 (%s)\n", strerrorname_np(errno));
		return 1;
	}
	printf("io_uring_setup = %ld\n", fd);
	close(fd);
	return 0;
}
