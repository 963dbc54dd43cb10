// SPDX-License-Identifier: GPL-2.0
/*
 * The copies behind mappings and execs of remote files (mapcopy.rs, mmap.rs, exec.rs): a
 * file of the client's shmem that holds the bytes read from the server, mapped or run in
 * place of the remote file; and the bits of the calling task an exec of one changes.
 * Thin wrappers of shmem_file_setup(), kernel_write(), vm_mmap() and the fd table, which
 * Rust has no bindings for.
 */
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/cred.h>
#include <linux/sched.h>
#include <linux/shmem_fs.h>

struct file *tether_mapcopy_new(const char *name);
int tether_mapcopy_write(struct file *f, const void *buf, size_t len, loff_t pos);
int tether_mapcopy_map(struct file *f, unsigned long *addr, unsigned long len,
		       unsigned long prot, unsigned long flags, unsigned long pgoff, bool writable);
int tether_mapcopy_read(struct file *f, void *buf, size_t len, loff_t pos);
int tether_mapcopy_install(struct file *f);
void tether_mapcopy_put(struct file *f);
long tether_user_alloc(unsigned long len);
void tether_user_free(unsigned long addr, unsigned long len);
void tether_close_fd(int fd);
void tether_set_comm(const char *name);

/* An empty copy whose file (dentry) is called NAME (NULL: no memory). */
struct file *tether_mapcopy_new(const char *name)
{
	struct file *f = shmem_file_setup(name, 0, mk_vma_flags(VMA_NORESERVE_BIT));

	return IS_ERR(f) ? NULL : f;
}

/* Writes LEN bytes at BUF into the copy F at POS: 0 or a negative errno. */
int tether_mapcopy_write(struct file *f, const void *buf, size_t len, loff_t pos)
{
	ssize_t n = kernel_write(f, buf, len, &pos);

	if (n < 0)
		return n;
	return n == len ? 0 : -EIO;
}

/*
 * Maps the copy F into the current process as mmap(*ADDR, LEN, PROT, FLAGS, F, PGOFF pages)
 * would; the address goes to *ADDR. Unless WRITABLE, the mapping is of a read-only file of
 * the copy, so a shared one can never become writable (mprotect: EACCES, as for a file open
 * read-only); a private one writes its own pages. Returns 0 or a negative errno.
 */
int tether_mapcopy_map(struct file *f, unsigned long *addr, unsigned long len,
		       unsigned long prot, unsigned long flags, unsigned long pgoff, bool writable)
{
	struct file *of = dentry_open(&f->f_path, writable ? O_RDWR : O_RDONLY, current_cred());
	unsigned long r;

	if (IS_ERR(of))
		return PTR_ERR(of);
	if (pgoff > (ULONG_MAX >> PAGE_SHIFT))
		r = -EOVERFLOW;
	else
		r = vm_mmap(of, *addr, len, prot, flags, pgoff << PAGE_SHIFT);
	fput(of);
	if (IS_ERR_VALUE(r))
		return (int)r;
	*addr = r;
	return 0;
}

/* Reads up to LEN bytes of the copy F at POS into BUF: the bytes read or a negative errno. */
int tether_mapcopy_read(struct file *f, void *buf, size_t len, loff_t pos)
{
	ssize_t n = kernel_read(f, buf, len, &pos);

	return n < 0 ? (int)n : (int)min_t(ssize_t, n, INT_MAX);
}

/* Installs the copy F in the calling task's fd table, close-on-exec: the fd or -errno. */
int tether_mapcopy_install(struct file *f)
{
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd >= 0)
		fd_install(fd, get_file(f));
	return fd;
}

/* Drops the reference tether_mapcopy_new() gave (a mapping holds its own). */
void tether_mapcopy_put(struct file *f)
{
	fput(f);
}

/* LEN bytes of fresh memory in the calling task (read-write, private): the address or
 * -errno. An exec that succeeds takes it away with the old address space. */
long tether_user_alloc(unsigned long len)
{
	return (long)vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
}

/* Gives back what tether_user_alloc() gave, after an exec that failed. */
void tether_user_free(unsigned long addr, unsigned long len)
{
	vm_munmap(addr, len);
}

/* Closes the calling task's fd FD (an installed copy, after an exec that failed). */
void tether_close_fd(int fd)
{
	close_fd(fd);
}

/* After an exec of a copy (exec.rs), which the kernel names after the path it ran
 * (/dev/fd/N): the task's name is the program's, as if it had been run from its file. */
void tether_set_comm(const char *name)
{
	task_lock(current);
	strscpy_pad(current->comm, name, sizeof(current->comm));
	task_unlock(current);
}
