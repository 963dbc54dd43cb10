// SPDX-License-Identifier: GPL-2.0
/*
 * Proxy files: a remote fd is a real file in the client's fd table (an anonymous inode
 * whose private data names the server-side fd), so that the client kernel does fd
 * allocation, dup, close, CLOEXEC and fork inheritance. Offsets live in f_pos. The calls on
 * proxy fds are intercepted (the syscalls/ family files); release tells the server (tether_proxy_released()).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/slab.h>

struct tether_proxy {
	u32 rpid;
	int sfd;
	/* The opening process (its thread group), to tell at release whether it is gone. */
	struct pid *opener;
};

void tether_proxy_released(u32 rpid, int sfd); /* open.rs */
int tether_proxy_flushed(int sfd); /* open.rs */
int tether_proxy_install(u32 rpid, int sfd, unsigned int flags);
struct file *tether_proxy_get(int fd, u32 *rpid, int *sfd);
void tether_proxy_put(struct file *file);
struct file *tether_proxy_dup(struct file *file);
loff_t *tether_proxy_pos(struct file *file);
unsigned int tether_proxy_flags(struct file *file);
void tether_proxy_setfl(struct file *file, unsigned int arg);

/* The status flags F_SETFL changes (fs/fcntl.c's SETFL_MASK). */
#define TETHER_SETFL_MASK (O_APPEND | O_NONBLOCK | O_NDELAY | O_DIRECT | O_NOATIME)

/*
 * Whether the process that opened P is gone or exiting: its shadow closes everything as
 * it exits (CLIENT_EXIT, queued when its leader exits). A close sent for it after that
 * would start a fresh shadow under its pid that nothing ever ends (a child that inherited
 * the fd and outlived it drops the last reference).
 */
static bool tether_opener_gone(const struct tether_proxy *p)
{
	struct task_struct *t;
	bool gone;

	rcu_read_lock();
	t = pid_task(p->opener, PIDTYPE_TGID);
	gone = !t || (t->flags & PF_EXITING) || t->exit_state;
	rcu_read_unlock();
	return gone;
}

static int tether_proxy_release(struct inode *inode, struct file *file)
{
	struct tether_proxy *p = file->private_data;

	if (!tether_opener_gone(p))
		tether_proxy_released(p->rpid, p->sfd);
	put_pid(p->opener);
	kfree(p);
	return 0;
}

/* Each close(2): a write error the fd has yet to report (open.rs). */
static int tether_proxy_flush(struct file *file, fl_owner_t id)
{
	struct tether_proxy *p = file->private_data;

	return tether_proxy_flushed(p->sfd);
}

/*
 * Reads and writes of a live proxy file never get here: they are sent to the server. They
 * run here only for a file replay could not reopen (proxy.rs treats it as local): EIO.
 */
static ssize_t tether_proxy_lost_read(struct file *file, char __user *buf, size_t len,
				      loff_t *pos)
{
	return -EIO;
}

static ssize_t tether_proxy_lost_write(struct file *file, const char __user *buf, size_t len,
				       loff_t *pos)
{
	return -EIO;
}

static const struct file_operations tether_proxy_fops = {
	.owner = THIS_MODULE,
	.read = tether_proxy_lost_read,
	.write = tether_proxy_lost_write,
	.flush = tether_proxy_flush,
	.release = tether_proxy_release,
};

/* Installs a proxy for server fd `sfd` of process `rpid`; returns the new fd or -errno. */
int tether_proxy_install(u32 rpid, int sfd, unsigned int flags)
{
	struct tether_proxy *p = kmalloc(sizeof(*p), GFP_KERNEL);
	struct file *file;
	int fd;

	if (!p)
		return -ENOMEM;
	p->rpid = rpid;
	p->sfd = sfd;
	fd = get_unused_fd_flags(flags & O_CLOEXEC);
	if (fd < 0) {
		kfree(p);
		return fd;
	}
	p->opener = get_task_pid(current, PIDTYPE_TGID);
	file = anon_inode_getfile("[tether]", &tether_proxy_fops, p,
				  flags & (O_ACCMODE | O_APPEND | O_NONBLOCK));
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		put_pid(p->opener);
		kfree(p);
		return PTR_ERR(file);
	}
	/* anon_inode_getfile() keeps only O_ACCMODE and O_NONBLOCK: add O_APPEND & co. */
	tether_proxy_setfl(file, flags);
	fd_install(fd, file);
	return fd;
}

/* The proxy file behind `fd` (a reference the caller puts back), or NULL. */
struct file *tether_proxy_get(int fd, u32 *rpid, int *sfd)
{
	struct file *file = fget(fd);
	struct tether_proxy *p;

	if (!file)
		return NULL;
	if (file->f_op != &tether_proxy_fops) {
		fput(file);
		return NULL;
	}
	p = file->private_data;
	*rpid = p->rpid;
	*sfd = p->sfd;
	return file;
}

void tether_proxy_put(struct file *file)
{
	fput(file);
}

/* Another reference to proxy FILE (a shared mapping keeps one, shmap.rs). */
struct file *tether_proxy_dup(struct file *file)
{
	return get_file(file);
}

loff_t *tether_proxy_pos(struct file *file)
{
	return &file->f_pos;
}

unsigned int tether_proxy_flags(struct file *file)
{
	return file->f_flags;
}

/* Sets the F_SETFL status flags of a proxy file as fs/fcntl.c's setfl() does, once the
 * server accepted them for its file (fcntl.rs). */
void tether_proxy_setfl(struct file *file, unsigned int arg)
{
	spin_lock(&file->f_lock);
	file->f_flags = (arg & TETHER_SETFL_MASK) | (file->f_flags & ~TETHER_SETFL_MASK);
	spin_unlock(&file->f_lock);
}

/*
 * sendfile from a remote file to a local one (copy.rs): the output side, with
 * do_sendfile()'s checks (EBADF: not open or not writable; EINVAL: O_APPEND or no splice
 * support, unless it is a pipe) and its offset handling.
 */
int tether_sendfile_out_check(int fd);
ssize_t tether_sendfile_out_write(int fd, const void *buf, size_t len);

int tether_sendfile_out_check(int fd)
{
	struct file *file = fget(fd);
	int ret = 0;

	if (!file)
		return -EBADF;
	if (!(file->f_mode & FMODE_WRITE))
		ret = -EBADF;
	else if (!S_ISFIFO(file_inode(file)->i_mode) &&
		 ((file->f_flags & O_APPEND) || !file->f_op->splice_write))
		ret = -EINVAL;
	fput(file);
	return ret;
}

/* Writes `len` bytes of kernel memory to `fd` at its offset; returns the count or -errno. */
ssize_t tether_sendfile_out_write(int fd, const void *buf, size_t len)
{
	struct file *file = fget(fd);
	loff_t pos;
	ssize_t ret;

	if (!file)
		return -EBADF;
	pos = file->f_pos;
	ret = kernel_write(file, buf, len, &pos);
	if (ret > 0)
		file->f_pos = pos;
	fput(file);
	return ret;
}
