// SPDX-License-Identifier: GPL-2.0
/*
 * C part of tether_server.ko: the shared vsock shim and the one parameter kernel Rust
 * cannot declare yet (an array).
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/moduleparam.h>
#include <linux/pid_namespace.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uidgid.h>
#include <linux/umh.h>
#include <linux/fs.h>
#include <linux/errseq.h>
#include <linux/reboot.h>
#include "../rust/kernel/vsock_shim.c"
#include "../rust/kernel/auth_shim.c"

static unsigned int allowed_cids[16];
static int nr_allowed_cids;
module_param_array(allowed_cids, uint, &nr_allowed_cids, 0444);
MODULE_PARM_DESC(allowed_cids, "vsock CIDs allowed to connect, comma-separated (empty: none)");

bool tether_cid_allowed(u32 cid);
bool tether_cid_allowed(u32 cid)
{
	int i;

	for (i = 0; i < nr_allowed_cids; i++)
		if (allowed_cids[i] == cid)
			return true;
	return false;
}

static char *shadow_path = "/sbin/tether-shadow";
module_param(shadow_path, charp, 0444);
MODULE_PARM_DESC(shadow_path, "the tether-shadow binary started for every client process");

static char *export_root;
module_param_named(root, export_root, charp, 0444);
MODULE_PARM_DESC(root, "export root of the CIDs in allowed_cids (required): shadows are confined "
		 "to this directory; refused when it is, or has under it, a mount of procfs, sysfs, "
		 "devtmpfs or any other file system");

/* The root= parameter (NULL or empty: not given). */
const char *tether_export_root(void);
const char *tether_export_root(void)
{
	return export_root && *export_root ? export_root : NULL;
}

static char *crash_at;
module_param(crash_at, charp, 0444);
MODULE_PARM_DESC(crash_at, "test knob: a fault point armed at load, POINT,CALL[,N] (as debugfs "
		 "control's crash_at POINT CALL [N]): the machine resets there, as a power cut would");

/* The crash_at= parameter (NULL when not given). */
const char *tether_crash_at_param(void);
const char *tether_crash_at_param(void)
{
	return crash_at;
}

/* A fault point was reached (faults.rs): reset at once, without syncing (a power cut). */
void tether_emergency_restart(void);
void tether_emergency_restart(void)
{
	emergency_restart();
}

static bool squash_root = true;
module_param(squash_root, bool, 0644);
MODULE_PARM_DESC(squash_root, "map client uid/gid 0 to nobody/nogroup (65534) on the server; "
		 "applies to identities set from then on (new processes, identity changes)");

bool tether_squash_root(void);
bool tether_squash_root(void)
{
	return READ_ONCE(squash_root);
}

/*
 * Gives current (a shadow, in its NEXT ioctl) the identity and file-size limit of its client
 * process, already mapped by policy (session.rs): ids[] = uid, euid, fsuid, gid, egid,
 * fsgid; the saved ids follow the effective ones. Capabilities follow the effective uid the
 * way they do for root and non-root processes: all (the bounding set) for euid 0, none
 * otherwise, and without the file-system ones when fsuid is not 0. Per-user accounting
 * (user_struct, ucounts) stays with the user the shadow started as: alloc_uid() and
 * set_cred_ucounts() are not exported.
 */
int tether_shadow_set_attrs(const u32 *ids, const u32 *groups, unsigned int ngroups,
			    u64 fsize_cur, u64 fsize_max);
int tether_shadow_set_attrs(const u32 *ids, const u32 *groups, unsigned int ngroups,
			    u64 fsize_cur, u64 fsize_max)
{
	kuid_t uid = make_kuid(&init_user_ns, ids[0]), euid = make_kuid(&init_user_ns, ids[1]);
	kuid_t fsuid = make_kuid(&init_user_ns, ids[2]);
	kgid_t gid = make_kgid(&init_user_ns, ids[3]), egid = make_kgid(&init_user_ns, ids[4]);
	kgid_t fsgid = make_kgid(&init_user_ns, ids[5]);
	struct rlimit *rlim = current->signal->rlim + RLIMIT_FSIZE;
	struct group_info *gi;
	struct cred *new;
	unsigned int i;

	if (!uid_valid(uid) || !uid_valid(euid) || !uid_valid(fsuid) || !gid_valid(gid) ||
	    !gid_valid(egid) || !gid_valid(fsgid) || fsize_cur > fsize_max)
		return -EINVAL;
	gi = groups_alloc(ngroups);
	if (!gi)
		return -ENOMEM;
	for (i = 0; i < ngroups; i++) {
		gi->gid[i] = make_kgid(&init_user_ns, groups[i]);
		if (!gid_valid(gi->gid[i])) {
			put_group_info(gi);
			return -EINVAL;
		}
	}
	groups_sort(gi);
	new = prepare_creds();
	if (!new) {
		put_group_info(gi);
		return -ENOMEM;
	}
	new->uid = uid;
	new->euid = euid;
	new->suid = euid;
	new->fsuid = fsuid;
	new->gid = gid;
	new->egid = egid;
	new->sgid = egid;
	new->fsgid = fsgid;
	set_groups(new, gi);
	put_group_info(gi);
	cap_clear(new->cap_ambient);
	if (uid_eq(euid, GLOBAL_ROOT_UID)) {
		new->cap_permitted = new->cap_bset;
		new->cap_effective = new->cap_bset;
	} else {
		/* Kept permitted only (tether-shadow raises it around the one clone3 that
		 * needs it): a forked shadow gets its client process's pid (set_tid). */
		cap_clear(new->cap_permitted);
		cap_clear(new->cap_effective);
		cap_raise(new->cap_permitted, CAP_CHECKPOINT_RESTORE);
	}
	if (!uid_eq(fsuid, GLOBAL_ROOT_UID))
		new->cap_effective = cap_drop_fs_set(new->cap_effective);
	commit_creds(new);

	task_lock(current->group_leader);
	rlim->rlim_cur = fsize_cur;
	rlim->rlim_max = fsize_max;
	task_unlock(current->group_leader);
	return 0;
}

/*
 * The environment of a shadow or keeper: its token travels here, not on its command line
 * (/proc/<pid>/cmdline is world-readable; the environment of a non-dumpable process is
 * not), as TETHER_TOKEN=<decimal>.
 */
#define TOKEN_ENV_LEN 40
static char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/*
 * Starts the shadow with `token` for client process `pid`: in the pid namespace whose init
 * has (global) pid `keeper`, as pid `pid` there when it is free (keeper 0: in the initial
 * namespace, any pid).
 */
int tether_spawn_shadow(u64 token, pid_t keeper, u32 pid, const char *root);
int tether_spawn_shadow(u64 token, pid_t keeper, u32 pid, const char *root)
{
	char tok[TOKEN_ENV_LEN], ns[16], want[16];
	/* Nobody until the client's CLIENT_ATTRS (queued ahead of its first call) says who. */
	char *argv[] = { shadow_path, "--root", (char *)root, "--uid", "65534",
			 "--pidns", ns, "--pid", want, NULL };
	char *envp[] = { path_env, tok, NULL };

	snprintf(tok, sizeof(tok), "TETHER_TOKEN=%llu", token);
	snprintf(ns, sizeof(ns), "%d", keeper);
	snprintf(want, sizeof(want), "%u", pid);
	return call_usermodehelper(shadow_path, argv, envp, UMH_WAIT_EXEC);
}

/*
 * Starts the keeper of a new pid namespace, which registers itself with `token`, in a new
 * session cgroup (cgroup v2) of at most `pids_max` processes and `memory_mb` MiB (0: no
 * limit).
 */
int tether_spawn_keeper(u64 token, u32 pids_max, u32 memory_mb);
int tether_spawn_keeper(u64 token, u32 pids_max, u32 memory_mb)
{
	char tok[TOKEN_ENV_LEN], pids[16], mem[16];
	char *argv[] = { shadow_path, "--keeper", "--pids-max", pids, "--memory-mb", mem, NULL };
	char *envp[] = { path_env, tok, NULL };

	snprintf(tok, sizeof(tok), "TETHER_TOKEN=%llu", token);
	snprintf(pids, sizeof(pids), "%u", pids_max);
	snprintf(mem, sizeof(mem), "%u", memory_mb);
	return call_usermodehelper(shadow_path, argv, envp, UMH_WAIT_EXEC);
}

/* Kills `task` (a keeper: the init of its pid namespace, so everything in it dies too). */
void tether_kill(struct task_struct *task);
void tether_kill(struct task_struct *task)
{
	send_sig(SIGKILL, task, 1);
}

/* Whether process `pid` exists and has not exited (shadow liveness). */
bool tether_pid_alive(pid_t pid);
bool tether_pid_alive(pid_t pid)
{
	struct task_struct *task;
	bool alive;

	rcu_read_lock();
	task = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	alive = task && !task->exit_state && !(task->flags & PF_EXITING);
	rcu_read_unlock();
	return alive;
}

/*
 * Durability: the export root's file, opened at load (in insmod's context: the root and
 * mounts the administrator sees, which kernel threads may not) and held until unload, so
 * that the superblock's writeback-error sequence is checked against one cursor.
 */
static struct file *sync_file;

#include <linux/magic.h>
#include <linux/namei.h>
#include <linux/path.h>
#include <linux/mount.h>

/* Kernel and pseudo file systems an export root must never be (or contain). */
static const unsigned long tether_special_magic[] = {
	PROC_SUPER_MAGIC, SYSFS_MAGIC, DEBUGFS_MAGIC, TRACEFS_MAGIC, SECURITYFS_MAGIC,
	CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, DEVPTS_SUPER_MAGIC, BPF_FS_MAGIC,
	SELINUX_MAGIC, SMACK_MAGIC, PSTOREFS_MAGIC, EFIVARFS_MAGIC, NSFS_MAGIC,
	BINFMTFS_MAGIC, CONFIGFS_MAGIC, HUGETLBFS_MAGIC,
};

/*
 * Whether `root` may be an export root: 0, or -ENOENT/-ENOTDIR (no such directory),
 * -EPERM (it lies on a kernel or pseudo file system: procfs, sysfs, devtmpfs, ...),
 * -EBUSY (another file system is mounted somewhere under it), -EXDEV (same_fs and it is
 * not on the file system of root=, which the flusher syncs). In the caller's mount
 * namespace (insmod's, or the writer of the exports file).
 */
int tether_export_root_check(const char *root, bool same_fs);
int tether_export_root_check(const char *root, bool same_fs)
{
	struct path p, dev;
	struct super_block *sb;
	int err, i;

	err = kern_path(root, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &p);
	if (err)
		return err;
	sb = p.dentry->d_sb;
	for (i = 0; i < ARRAY_SIZE(tether_special_magic); i++)
		if (sb->s_magic == tether_special_magic[i])
			err = -EPERM;
	/* devtmpfs is a tmpfs: recognise it as the file system mounted on /dev. */
	if (!err && !kern_path("/dev", LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &dev)) {
		if (dev.dentry->d_sb == sb && dev.dentry == dev.mnt->mnt_root)
			err = -EPERM;
		path_put(&dev);
	}
	if (!err && path_has_submounts(&p))
		err = -EBUSY;
	if (!err && same_fs && (!sync_file || file_inode(sync_file)->i_sb != sb))
		err = -EXDEV;
	path_put(&p);
	return err;
}

/* Opens the export root for tether_sync_root(); 0 or -errno. */
int tether_sync_open(void);
int tether_sync_open(void)
{
	struct file *f;

	if (!export_root || !*export_root)
		return -EINVAL;
	f = filp_open(export_root, O_RDONLY | O_DIRECTORY, 0);

	if (IS_ERR(f))
		return PTR_ERR(f);
	sync_file = f;
	return 0;
}

/* Syncs the file system of the export root, like syncfs(2): 0, or -errno when the sync
 * failed or a writeback error happened since the previous call. Flusher only. */
int tether_sync_root(void);
int tether_sync_root(void)
{
	struct super_block *sb;
	int ret, ret2;

	if (!sync_file)
		return -EBADF;
	sb = file_inode(sync_file)->i_sb;
	down_read(&sb->s_umount);
	ret = sync_filesystem(sb);
	up_read(&sb->s_umount);
	ret2 = errseq_check_and_advance(&sb->s_wb_err, &sync_file->f_sb_err);
	return ret ? ret : ret2;
}

/* Closes the export root's file (unload, once the flusher stopped). */
void tether_sync_release(void);
void tether_sync_release(void)
{
	if (sync_file) {
		fput(sync_file);
		sync_file = NULL;
	}
}
