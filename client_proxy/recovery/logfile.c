// SPDX-License-Identifier: GPL-2.0
/*
 * The client-local file the syscall log is persisted to (persist.rs): thin wrappers around
 * the VFS to open, write, fsync, rename and close a file from kernel context. Paths resolve
 * from the root of PID 1 (kernel threads, like the workqueue's, live in an empty nullfs).
 */
#include <linux/dcache.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/mount.h>
#include <linux/namei.h>

int tether_logfile_open(const char *path, bool create, struct file **res);
int tether_logfile_write(struct file *file, const void *buf, size_t len);
int tether_logfile_sync(struct file *file);
int tether_logfile_rename(struct file *file, const char *name);
void tether_logfile_close(struct file *file);

/*
 * Opens @path (absolute, from PID 1's root): with @create for writing (created 0600,
 * truncated), else only to name it (O_PATH). A symlink as the last component is not
 * followed. 0 or -errno.
 */
int tether_logfile_open(const char *path, bool create, struct file **res)
{
	int flags = create ? O_WRONLY | O_CREAT | O_TRUNC : O_PATH;
	struct file *file;

	scoped_with_init_fs()
		file = filp_open(path, flags | O_NOFOLLOW | O_LARGEFILE, 0600);
	if (IS_ERR(file))
		return PTR_ERR(file);
	*res = file;
	return 0;
}

/* Writes all of @buf from offset 0. 0 or -errno. */
int tether_logfile_write(struct file *file, const void *buf, size_t len)
{
	loff_t pos = 0;

	while (len) {
		ssize_t n = kernel_write(file, buf, len, &pos);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Data and metadata of @file on stable storage. 0 or -errno. */
int tether_logfile_sync(struct file *file)
{
	return vfs_fsync(file, 0);
}

/*
 * Renames @file's name to @name in the same directory, replacing what is there (a
 * rename(2) of the file's path: the new name holds either the old or the new file, never
 * a mix). 0 or -errno.
 */
int tether_logfile_rename(struct file *file, const char *name)
{
	struct dentry *dentry = file->f_path.dentry;
	struct qstr last = QSTR(name);
	struct renamedata rd = {};
	int err;

	err = mnt_want_write(file->f_path.mnt);
	if (err)
		return err;
	rd.mnt_idmap = file_mnt_idmap(file);
	rd.new_parent = dget_parent(dentry);
	err = start_renaming_dentry(&rd, 0, dentry, &last);
	if (!err) {
		err = vfs_rename(&rd);
		end_renaming(&rd);
	}
	dput(rd.new_parent);
	mnt_drop_write(file->f_path.mnt);
	return err;
}

void tether_logfile_close(struct file *file)
{
	filp_close(file, NULL);
}
