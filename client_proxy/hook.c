// SPDX-License-Identifier: GPL-2.0
/*
 * Syscall interception for tethered tasks: the part kernel Rust cannot express yet.
 *
 * Linux 7.3 builds x64_sys_call() without ftrace, so the entry of every routed syscall,
 * __x64_sys_<name>(), is hooked instead (ftrace IPMODIFY): a tethered task calling one is
 * sent to tether_sys(), which hands the call to Rust's route table (route.rs) together with
 * the address of the original, so that local calls run it unchanged. execve/execveat are
 * redirected for every task, so that exec of a file carrying trusted.tether.loader tethers.
 * Tasks inherit tethering at wake_up_new_task() and leave the set at do_exit().
 *
 * The set of tethered tasks is an XArray indexed by pid (thread id): lock-free to read in
 * the ftrace callbacks.
 */
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/xarray.h>
#include <linux/xattr.h>

typedef long (*tether_sys_fn)(const struct pt_regs *regs);

int tether_hook_start(const char *const *routed, const char *const *all_tasks);
void tether_hook_stop(void);
bool tether_is_tethered(pid_t pid);
int tether_tether(pid_t pid, gfp_t gfp);
void tether_untether(pid_t pid);
unsigned int tether_nr_tethered(void);
int tether_tethered_pids(pid_t *out, unsigned int max);
bool tether_exe_marked(void);
long tether_route(const struct pt_regs *regs, tether_sys_fn orig); /* route.rs */
void tether_process_event(pid_t parent, pid_t tgid, bool exit); /* rpc.rs */

static DEFINE_XARRAY(tether_tasks);
static atomic_t tether_nr = ATOMIC_INIT(0);

bool tether_is_tethered(pid_t pid)
{
	return atomic_read(&tether_nr) && xa_load(&tether_tasks, pid);
}

/* The module stays loaded while tethered tasks exist: they may be inside it at any time. */
int tether_tether(pid_t pid, gfp_t gfp)
{
	int err = xa_insert(&tether_tasks, pid, xa_mk_value(1), gfp);

	if (err == -EBUSY)
		return 0;
	if (!err && atomic_inc_return(&tether_nr) == 1)
		__module_get(THIS_MODULE);
	return err;
}

void tether_untether(pid_t pid)
{
	if (xa_erase(&tether_tasks, pid) && atomic_dec_return(&tether_nr) == 0)
		module_put(THIS_MODULE);
}

unsigned int tether_nr_tethered(void)
{
	return atomic_read(&tether_nr);
}

int tether_tethered_pids(pid_t *out, unsigned int max)
{
	unsigned long pid;
	unsigned int n = 0;
	void *entry;

	xa_for_each(&tether_tasks, pid, entry) {
		if (n == max)
			break;
		out[n++] = pid;
	}
	return n;
}

/* Whether current's executable carries trusted.tether.loader = "1". */
bool tether_exe_marked(void)
{
	struct file *exe;
	char v[2];
	ssize_t n;

	/* Right after a successful exec current is the mm's only user: exe_file is stable. */
	exe = current->mm ? READ_ONCE(current->mm->exe_file) : NULL;
	if (!exe)
		return false;
	n = __vfs_getxattr(file_dentry(exe), file_inode(exe), "trusted.tether.loader", v, sizeof(v));
	return n == 1 && v[0] == '1';
}

/* Where hooked syscalls land: the original's address arrives as second argument. */
static noinline long tether_sys(const struct pt_regs *regs, tether_sys_fn orig)
{
	long ret = tether_route(regs, orig);

	module_put(THIS_MODULE);
	return ret;
}

static void notrace tether_redirect(unsigned long ip, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = arch_ftrace_get_regs(fregs);

	if (!regs || !try_module_get(THIS_MODULE))
		return;
	regs->si = ip;
	ftrace_regs_set_instruction_pointer(fregs, (unsigned long)tether_sys);
}

static void notrace tether_routed_cb(unsigned long ip, unsigned long parent_ip,
				     struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (!within_module(parent_ip, THIS_MODULE) && tether_is_tethered(current->pid))
		tether_redirect(ip, fregs);
}

static void notrace tether_all_cb(unsigned long ip, unsigned long parent_ip,
				  struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (!within_module(parent_ip, THIS_MODULE))
		tether_redirect(ip, fregs);
}

static void notrace tether_fork_cb(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct task_struct *child = (struct task_struct *)ftrace_regs_get_argument(fregs, 0);

	/* wake_up_new_task() runs in the parent, before the child first runs. */
	if (child == current || !tether_is_tethered(current->pid))
		return;
	if (tether_tether(child->pid, GFP_ATOMIC))
		pr_notice("tether_client: cannot tether new task %d: out of memory\n", child->pid);
	else if (child->tgid != current->tgid)
		tether_process_event(current->tgid, child->tgid, false);
}

static void notrace tether_exit_cb(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (!tether_is_tethered(current->pid))
		return;
	if (current->pid == current->tgid)
		tether_process_event(0, current->tgid, true);
	tether_untether(current->pid);
}

#define TETHER_IPMODIFY (FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_RECURSION)
static struct ftrace_ops tether_ops[] = {
	{ .func = tether_routed_cb, .flags = TETHER_IPMODIFY },
	{ .func = tether_all_cb, .flags = TETHER_IPMODIFY },
	{ .func = tether_fork_cb, .flags = FTRACE_OPS_FL_RECURSION },
	{ .func = tether_exit_cb, .flags = FTRACE_OPS_FL_RECURSION },
};
static unsigned int tether_nr_ops;

static int tether_filter(struct ftrace_ops *ops, const char *const *names)
{
	int err;

	for (; *names; names++) {
		err = ftrace_set_filter(ops, (unsigned char *)*names, strlen(*names), 0);
		if (err) {
			pr_err("tether_client: cannot hook %s: %d\n", *names, err);
			return err;
		}
	}
	return 0;
}

/* Hooks the NULL-terminated lists of functions: `routed` for tethered tasks only,
 * `all_tasks` for every task. */
int tether_hook_start(const char *const *routed, const char *const *all_tasks)
{
	static const char *const fork[] = { "wake_up_new_task", NULL };
	static const char *const exit[] = { "do_exit", NULL };
	const char *const *names[] = { routed, all_tasks, fork, exit };
	int err = 0;

	for (tether_nr_ops = 0; tether_nr_ops < ARRAY_SIZE(tether_ops); tether_nr_ops++) {
		struct ftrace_ops *ops = &tether_ops[tether_nr_ops];

		err = tether_filter(ops, names[tether_nr_ops]);
		if (!err)
			err = register_ftrace_function(ops);
		if (err) {
			ftrace_free_filter(ops);
			tether_hook_stop();
			return err;
		}
	}
	return 0;
}

void tether_hook_stop(void)
{
	while (tether_nr_ops) {
		struct ftrace_ops *ops = &tether_ops[--tether_nr_ops];

		unregister_ftrace_function(ops);
		ftrace_free_filter(ops);
	}
	/* No task may still be on its way out of tether_sys() (preempted after module_put). */
	synchronize_rcu_tasks();
	xa_destroy(&tether_tasks);
}
