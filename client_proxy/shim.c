// SPDX-License-Identifier: GPL-2.0
/* C part of tether_client.ko: the shared vsock shim. */
#include "../rust/kernel/vsock_shim.c"
#include "../rust/kernel/auth_shim.c"

#include <linux/moduleparam.h>

static char *local_prefixes =
	"/dev:/proc:/sys:/bin:/sbin:/lib:/lib64:/usr/bin:/usr/sbin:/usr/lib:/usr/libexec:/usr/share:/etc/ld.so.cache";
module_param(local_prefixes, charp, 0444);
MODULE_PARM_DESC(local_prefixes,
		 "colon-separated path prefixes that stay local for tethered tasks (the console, "
		 "kernel file systems, and by default the client's programs, libraries and their data)");

const char *tether_local_prefixes(void);
const char *tether_local_prefixes(void)
{
	return local_prefixes;
}

static char *servers = "";
module_param(servers, charp, 0444);
MODULE_PARM_DESC(servers,
		 "comma-separated servers to connect to, tried in turn after a connection is lost "
		 "(a failover server has the same storage): CID or vsock:CID[:PORT] (vsock), "
		 "tcp:A.B.C.D[:PORT] (TCP over IPv4); PORT defaults to port=; empty: server_cid");

const char *tether_servers(void);
const char *tether_servers(void)
{
	return servers;
}

static bool retain = true;
module_param(retain, bool, 0644);
MODULE_PARM_DESC(retain,
		 "keep written data until the server says it is durable, to write it again after a "
		 "server crash (0: a crash loses unflushed writes; for measuring the cost)");

bool tether_retain(void);
bool tether_retain(void)
{
	return READ_ONCE(retain);
}

#include <linux/sched/signal.h>

/*
 * Waits until *done is set: 0, or -ERESTARTSYS when the task got a fatal signal (SIGKILL
 * ends the wait; other signals wait). The waker (rpc.rs, Pending::set_done) stores *done
 * and then wakes this task alone with wake_up_process(); the state is set before *done is
 * read, so no wake-up is lost.
 */
int tether_call_wait(const int *done);
int tether_call_wait(const int *done)
{
	int ret = 0;

	for (;;) {
		set_current_state(TASK_KILLABLE);
		if (smp_load_acquire(done))
			break;
		if (fatal_signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		schedule();
	}
	__set_current_state(TASK_RUNNING);
	return ret;
}

#include <linux/cred.h>
#include <linux/sched/signal.h>
#include <linux/uidgid.h>

/*
 * Raises @sig in the calling thread the way the kernel raises SIGPIPE and SIGXFSZ for a
 * file-system call (send_sig(): si_code SI_USER, from the task itself): a signal the
 * server's kernel raised for the shadow while it ran the thread's call.
 */
void tether_send_sig(int sig);
void tether_send_sig(int sig)
{
	send_sig(sig, current, 0);
}

/*
 * Current's identity and RLIMIT_FSIZE, ids as the initial user namespace sees them:
 * ids[] = uid, euid, fsuid, gid, egid, fsgid; fsize[] = soft, hard limit. Copies at most
 * @max supplementary groups and returns how many the task has.
 */
unsigned int tether_current_attrs(u32 *ids, u64 *fsize, u32 *groups, unsigned int max);
unsigned int tether_current_attrs(u32 *ids, u64 *fsize, u32 *groups, unsigned int max)
{
	const struct cred *cred = current_cred();
	const struct group_info *gi = cred->group_info;
	unsigned int i;

	ids[0] = from_kuid_munged(&init_user_ns, cred->uid);
	ids[1] = from_kuid_munged(&init_user_ns, cred->euid);
	ids[2] = from_kuid_munged(&init_user_ns, cred->fsuid);
	ids[3] = from_kgid_munged(&init_user_ns, cred->gid);
	ids[4] = from_kgid_munged(&init_user_ns, cred->egid);
	ids[5] = from_kgid_munged(&init_user_ns, cred->fsgid);
	fsize[0] = rlimit(RLIMIT_FSIZE);
	fsize[1] = rlimit_max(RLIMIT_FSIZE);
	for (i = 0; i < gi->ngroups && i < max; i++)
		groups[i] = from_kgid_munged(&init_user_ns, gi->gid[i]);
	return gi->ngroups;
}

/* The client-local file the syscall log is persisted to (persist.rs, logfile.c). */
static char *log_file = "/var/lib/tether/client.log";
module_param(log_file, charp, 0444);
MODULE_PARM_DESC(log_file,
		 "absolute path of the client-local file the syscall log is persisted to (the "
		 "previous one is kept as <log_file>.prev at load); empty: not persisted");

const char *tether_log_file(void);
const char *tether_log_file(void)
{
	return log_file;
}
