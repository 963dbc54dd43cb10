// SPDX-License-Identifier: GPL-2.0
/* C part of tether_client.ko: the shared vsock shim. */
#include "../rust/kernel/vsock_shim.c"

#include <linux/moduleparam.h>

static char *local_prefixes =
	"/dev:/proc:/sys:/bin:/sbin:/lib:/lib64:/usr/bin:/usr/sbin:/usr/lib:/usr/libexec:/etc/ld.so.cache";
module_param(local_prefixes, charp, 0444);
MODULE_PARM_DESC(local_prefixes,
		 "colon-separated path prefixes that stay local for tethered tasks (the console, "
		 "kernel file systems, and until remote exec and paging, programs and libraries)");

const char *tether_local_prefixes(void);
const char *tether_local_prefixes(void)
{
	return local_prefixes;
}

#include <linux/wait.h>

/* Tasks in a remote call wait here, killable (SIGKILL ends the wait; other signals wait). */
static DECLARE_WAIT_QUEUE_HEAD(tether_call_wq);

void tether_call_wake(void);
void tether_call_wake(void)
{
	wake_up_all(&tether_call_wq);
}

/* Waits until *done is set: 0, or -ERESTARTSYS when the task got a fatal signal. */
int tether_call_wait(const int *done);
int tether_call_wait(const int *done)
{
	return wait_event_killable(tether_call_wq, smp_load_acquire(done));
}
