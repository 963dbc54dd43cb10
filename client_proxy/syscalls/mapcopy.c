// SPDX-License-Identifier: GPL-2.0
/*
 * The copies behind mappings of remote files (mmap.rs): a file of the client's shmem that
 * holds the bytes read from the server, mapped in place of the remote file. Thin wrappers
 * of shmem_file_setup(), kernel_write() and vm_mmap(), which Rust has no bindings for.
 */
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/shmem_fs.h>

struct file *tether_mapcopy_new(void);
int tether_mapcopy_write(struct file *f, const void *buf, size_t len, loff_t pos);
int tether_mapcopy_map(struct file *f, unsigned long *addr, unsigned long len,
		       unsigned long prot, unsigned long flags);
void tether_mapcopy_put(struct file *f);

/* An empty copy (NULL: no memory). */
struct file *tether_mapcopy_new(void)
{
	struct file *f = shmem_file_setup("tether-map", 0, mk_vma_flags(VMA_NORESERVE_BIT));

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
 * Maps the copy F into the current process as mmap(*ADDR, LEN, PROT, FLAGS, F, 0) would;
 * the address goes to *ADDR. The copy is read-only from here on, so a shared mapping of it
 * can never become writable (mprotect: EACCES, as for a file open read-only); a private
 * one writes its own pages. Returns 0 or a negative errno.
 */
int tether_mapcopy_map(struct file *f, unsigned long *addr, unsigned long len,
		       unsigned long prot, unsigned long flags)
{
	unsigned long r;

	f->f_mode &= ~FMODE_WRITE;
	r = vm_mmap(f, *addr, len, prot, flags, 0);
	if (IS_ERR_VALUE(r))
		return (int)r;
	*addr = r;
	return 0;
}

/* Drops the reference tether_mapcopy_new() gave (a mapping holds its own). */
void tether_mapcopy_put(struct file *f)
{
	fput(f);
}
