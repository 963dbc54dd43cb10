// SPDX-License-Identifier: GPL-2.0
/*
 * bypass: tries the ways a tethered task could get around tether's route table and prints
 * one line per try:
 *   int80 getpid = PID | -ERRNO      getpid through the 32-bit int $0x80 entry
 *   int80 open = FD | -ERRNO         open("/etc/hostname", O_RDONLY) through int $0x80
 *   prctl dispatch off = 0 | -ERRNO  prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)
 * A tethered task must get -ENOSYS, -ENOSYS, -EPERM; any other task a pid, an fd and 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#endif

/* ia32 syscall numbers */
#define IA32_OPEN 5
#define IA32_GETPID 20

static long int80(long nr, long a, long b)
{
	long ret = nr;

	asm volatile("int $0x80" : "+a"(ret) : "b"(a), "c"(b) : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

static void show(const char *what, long ret)
{
	if (ret < 0 && ret > -4096)
		printf("%s = -%s\n", what, strerrorname_np((int)-ret));
	else
		printf("%s = %ld\n", what, ret);
}

int main(void)
{
	/* int $0x80 takes 32-bit pointers: the path lives below 4 GiB. */
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
			 -1, 0);
	long ret;

	if (low == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	strcpy(low, "/etc/hostname");
	show("int80 getpid", int80(IA32_GETPID, 0, 0));
	show("int80 open", int80(IA32_OPEN, (long)low, 0));
	ret = prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	show("prctl dispatch off", ret < 0 ? -errno : ret);
	return 0;
}
