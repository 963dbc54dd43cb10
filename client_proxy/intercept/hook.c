// SPDX-License-Identifier: GPL-2.0
/*
 * Syscall interception for tethered tasks: the part kernel Rust cannot express yet.
 *
 * A tethered task carries the syscall-user-dispatch work flag, so that every syscall it
 * makes, native or compat, takes the entry work path and calls syscall_user_dispatch().
 * That one function is hooked (ftrace IPMODIFY) and replaced, for tethered tasks, by
 * tether_dispatch(), which hands the call to Rust's route table (route.rs): the syscall then
 * runs locally as usual, or its result is set in the task's registers and the kernel skips
 * it (the contract of syscall_user_dispatch()). Untethered tasks never take that path:
 * they pay nothing on any syscall but exec.
 *
 * execve/execveat are hooked for every task, so that exec of a file carrying
 * trusted.tether.loader tethers. Tasks inherit tethering at wake_up_new_task() and leave the
 * set at do_exit(). The set of tethered tasks is an XArray indexed by pid (thread id):
 * lock-free to read in the ftrace callbacks.
 */
#include <linux/entry-common.h>
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <linux/xattr.h>

typedef long (*tether_sys_fn)(const struct pt_regs *regs);

int tether_hook_start(void);
void tether_hook_stop(void);
bool tether_is_tethered(pid_t pid);
int tether_tether(pid_t pid, gfp_t gfp);
void tether_untether(pid_t pid);
unsigned int tether_nr_tethered(void);
int tether_tethered_pids(pid_t *out, unsigned int max);
bool tether_exe_marked(void);
bool tether_in_compat_syscall(void);
bool tether_route(struct pt_regs *regs); /* route.rs */
long tether_exec(const struct pt_regs *regs, tether_sys_fn orig); /* hook.rs */
void tether_process_event(pid_t parent, pid_t tgid, bool exit); /* rpc.rs */
void tether_thread_event(pid_t tgid, pid_t tid, bool started); /* rpc.rs */
void tether_flush_events(void); /* rpc.rs */

/* Sends the fork and exit events the hooks queued, soon, from process context: a child's
 * shadow then forks on the server while the child still runs locally (exec, ld.so). */
static void tether_events_fn(struct work_struct *work)
{
	tether_flush_events();
}
static DECLARE_WORK(tether_events_work, tether_events_fn);

static DEFINE_XARRAY(tether_tasks);
static atomic_t tether_nr = ATOMIC_INIT(0);

bool tether_is_tethered(pid_t pid)
{
	return atomic_read(&tether_nr) && xa_load(&tether_tasks, pid);
}

/*
 * Adds @task to the set and sends its syscalls through syscall_user_dispatch() (see the
 * top). The module stays loaded while tethered tasks exist: they may be inside it.
 */
static int tether_add(struct task_struct *task, gfp_t gfp)
{
	int err = xa_insert(&tether_tasks, task->pid, xa_mk_value(1), gfp);

	if (!err && atomic_inc_return(&tether_nr) == 1)
		__module_get(THIS_MODULE);
	if (err && err != -EBUSY)
		return err;
	/* Exec clears the flag: a tethered task that exec'd is marked again. */
	set_task_syscall_work(task, SYSCALL_USER_DISPATCH);
	return 0;
}

/* Tethers task @pid (a pid of current's namespace), from process context. */
int tether_tether(pid_t pid, gfp_t gfp)
{
	struct pid *p = find_get_pid(pid);
	struct task_struct *task = get_pid_task(p, PIDTYPE_PID);
	int err = task ? tether_add(task, gfp) : -ESRCH;

	if (task)
		put_task_struct(task);
	put_pid(p);
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

/* Whether current is in a 32-bit (ia32 or x32) syscall, whose numbers are not the table's. */
bool tether_in_compat_syscall(void)
{
	return in_compat_syscall();
}

/*
 * Where syscall_user_dispatch() lands for tethered tasks. True: the call is done, its
 * result is in regs->ax, the kernel skips the syscall.
 */
static noinline bool tether_dispatch(struct pt_regs *regs)
{
	bool done = tether_route(regs);

	module_put(THIS_MODULE);
	return done;
}

/* Where execve/execveat land: the original's address arrives as second argument. */
static noinline long tether_exec_entry(const struct pt_regs *regs, tether_sys_fn orig)
{
	long ret = tether_exec(regs, orig);

	module_put(THIS_MODULE);
	return ret;
}

static void notrace tether_redirect(struct ftrace_regs *fregs, void *to)
{
	if (try_module_get(THIS_MODULE))
		ftrace_regs_set_instruction_pointer(fregs, (unsigned long)to);
}

static void notrace tether_dispatch_cb(unsigned long ip, unsigned long parent_ip,
				       struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (tether_is_tethered(current->pid))
		tether_redirect(fregs, tether_dispatch);
}

static void notrace tether_exec_cb(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = arch_ftrace_get_regs(fregs);

	/* The module's own call of the original runs it. */
	if (!regs || within_module(parent_ip, THIS_MODULE))
		return;
	regs->si = ip;
	tether_redirect(fregs, tether_exec_entry);
}

static void notrace tether_fork_cb(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct task_struct *child = (struct task_struct *)ftrace_regs_get_argument(fregs, 0);

	/* wake_up_new_task() runs in the parent, before the child first runs. */
	if (child == current || !tether_is_tethered(current->pid))
		return;
	if (tether_add(child, GFP_ATOMIC))
		pr_notice("tether_client: cannot tether new task %d: out of memory\n", child->pid);
	else if (child->tgid != current->tgid) {
		tether_process_event(current->tgid, child->tgid, false);
		schedule_work(&tether_events_work);
	} else {
		tether_thread_event(child->tgid, child->pid, true);
		schedule_work(&tether_events_work);
	}
}

/*
 * Whether the exiting task ends its process: it is its last live thread, or the leader of
 * a group exit (exit_group(), a fatal signal). A leader that leaves with pthread_exit()
 * while other threads run does not; nor does the old leader that an exec by another thread
 * reaps (de_thread()). (Two last threads exiting at once may both miss it: their shadow
 * then ends with the session.)
 */
static bool tether_process_ends(void)
{
	return atomic_read(&current->signal->live) == 1 ||
	       (thread_group_leader(current) && (current->signal->flags & SIGNAL_GROUP_EXIT));
}

static void notrace tether_exit_cb(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (!tether_is_tethered(current->pid))
		return;
	if (tether_process_ends())
		tether_process_event(0, current->tgid, true);
	else
		tether_thread_event(current->tgid, current->pid, false);
	schedule_work(&tether_events_work);
	tether_untether(current->pid);
}

#define TETHER_IPMODIFY (FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_RECURSION)
static struct tether_hook {
	struct ftrace_ops ops;
	const char *names[2];
} tether_hooks[] = {
	{ { .func = tether_dispatch_cb, .flags = TETHER_IPMODIFY }, { "syscall_user_dispatch" } },
	{ { .func = tether_exec_cb, .flags = TETHER_IPMODIFY },
	  { "__x64_sys_execve", "__x64_sys_execveat" } },
	{ { .func = tether_fork_cb, .flags = FTRACE_OPS_FL_RECURSION }, { "wake_up_new_task" } },
	{ { .func = tether_exit_cb, .flags = FTRACE_OPS_FL_RECURSION }, { "do_exit" } },
};
static unsigned int tether_nr_hooks;

static int tether_hook_one(struct tether_hook *h)
{
	int i, err = 0;

	for (i = 0; i < ARRAY_SIZE(h->names) && h->names[i] && !err; i++) {
		err = ftrace_set_filter(&h->ops, (unsigned char *)h->names[i], strlen(h->names[i]), 0);
		if (err)
			pr_err("tether_client: cannot hook %s: %d\n", h->names[i], err);
	}
	if (!err)
		err = register_ftrace_function(&h->ops);
	if (err)
		ftrace_free_filter(&h->ops);
	return err;
}

int tether_hook_start(void)
{
	int err;

	for (tether_nr_hooks = 0; tether_nr_hooks < ARRAY_SIZE(tether_hooks); tether_nr_hooks++) {
		err = tether_hook_one(&tether_hooks[tether_nr_hooks]);
		if (err) {
			tether_hook_stop();
			return err;
		}
	}
	return 0;
}

void tether_hook_stop(void)
{
	while (tether_nr_hooks) {
		struct ftrace_ops *ops = &tether_hooks[--tether_nr_hooks].ops;

		unregister_ftrace_function(ops);
		ftrace_free_filter(ops);
	}
	/* No task may still be on its way out of a redirection (preempted after module_put). */
	synchronize_rcu_tasks();
	/* No hook schedules the work any more: drop a pending one, wait for a running one. */
	cancel_work_sync(&tether_events_work);
	xa_destroy(&tether_tasks);
}
