//! x86-64 system call numbers (`arch/x86/entry/syscalls/syscall_64.tbl`, the stable ABI),
//! named as in `<asm/unistd_64.h>` without the `__NR_` prefix: the calls tether routes,
//! denies or has a shadow make. A host test checks them against the host's header.

#![allow(missing_docs)] // Each constant is the call of the same name.
pub const READ: u32 = 0;
pub const WRITE: u32 = 1;
pub const OPEN: u32 = 2;
pub const CLOSE: u32 = 3;
pub const STAT: u32 = 4;
pub const FSTAT: u32 = 5;
pub const LSTAT: u32 = 6;
pub const LSEEK: u32 = 8;
pub const MMAP: u32 = 9;
pub const MUNMAP: u32 = 11;
pub const PREAD64: u32 = 17;
pub const PWRITE64: u32 = 18;
pub const READV: u32 = 19;
pub const WRITEV: u32 = 20;
pub const ACCESS: u32 = 21;
pub const MSYNC: u32 = 26;
pub const DUP: u32 = 32;
pub const DUP2: u32 = 33;
pub const SENDFILE: u32 = 40;
pub const EXECVE: u32 = 59;
pub const FCNTL: u32 = 72;
pub const FLOCK: u32 = 73;
pub const FSYNC: u32 = 74;
pub const FDATASYNC: u32 = 75;
pub const TRUNCATE: u32 = 76;
pub const FTRUNCATE: u32 = 77;
pub const GETCWD: u32 = 79;
pub const CHDIR: u32 = 80;
pub const FCHDIR: u32 = 81;
pub const RENAME: u32 = 82;
pub const MKDIR: u32 = 83;
pub const RMDIR: u32 = 84;
pub const CREAT: u32 = 85;
pub const LINK: u32 = 86;
pub const UNLINK: u32 = 87;
pub const SYMLINK: u32 = 88;
pub const READLINK: u32 = 89;
pub const CHMOD: u32 = 90;
pub const FCHMOD: u32 = 91;
pub const CHOWN: u32 = 92;
pub const FCHOWN: u32 = 93;
pub const LCHOWN: u32 = 94;
pub const UMASK: u32 = 95;
pub const MKNOD: u32 = 133;
pub const STATFS: u32 = 137;
pub const FSTATFS: u32 = 138;
pub const PRCTL: u32 = 157;
pub const SETXATTR: u32 = 188;
pub const LSETXATTR: u32 = 189;
pub const FSETXATTR: u32 = 190;
pub const GETXATTR: u32 = 191;
pub const LGETXATTR: u32 = 192;
pub const FGETXATTR: u32 = 193;
pub const LISTXATTR: u32 = 194;
pub const LLISTXATTR: u32 = 195;
pub const FLISTXATTR: u32 = 196;
pub const REMOVEXATTR: u32 = 197;
pub const LREMOVEXATTR: u32 = 198;
pub const FREMOVEXATTR: u32 = 199;
pub const GETDENTS64: u32 = 217;
pub const EXIT_GROUP: u32 = 231;
pub const OPENAT: u32 = 257;
pub const MKDIRAT: u32 = 258;
pub const MKNODAT: u32 = 259;
pub const FCHOWNAT: u32 = 260;
pub const NEWFSTATAT: u32 = 262;
pub const UNLINKAT: u32 = 263;
pub const RENAMEAT: u32 = 264;
pub const LINKAT: u32 = 265;
pub const SYMLINKAT: u32 = 266;
pub const READLINKAT: u32 = 267;
pub const FCHMODAT: u32 = 268;
pub const FACCESSAT: u32 = 269;
pub const SYNC_FILE_RANGE: u32 = 277;
pub const UTIMENSAT: u32 = 280;
pub const FALLOCATE: u32 = 285;
pub const DUP3: u32 = 292;
pub const PREADV: u32 = 295;
pub const PWRITEV: u32 = 296;
pub const SYNCFS: u32 = 306;
pub const RENAMEAT2: u32 = 316;
pub const EXECVEAT: u32 = 322;
pub const COPY_FILE_RANGE: u32 = 326;
pub const PREADV2: u32 = 327;
pub const PWRITEV2: u32 = 328;
pub const STATX: u32 = 332;
pub const IO_URING_SETUP: u32 = 425;
pub const IO_URING_ENTER: u32 = 426;
pub const IO_URING_REGISTER: u32 = 427;
pub const OPENAT2: u32 = 437;
pub const FACCESSAT2: u32 = 439;
/// `fchmodat2(2)` (Linux 6.6).
pub const FCHMODAT2: u32 = 452;

/// Above every x86-64 system call number of Linux 7.3: the size of per-number tables.
pub const NR_SYSCALLS: usize = 512;

#[cfg(test)]
mod tests {
    extern crate std;

    /// Every constant above equals the host's `__NR_*` (when the host has the header).
    #[test]
    fn matches_host_header() {
        let Ok(h) = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") else {
            return;
        };
        let src = include_str!("sysno.rs");
        let mut checked = 0;
        for line in src
            .lines()
            .filter(|l| l.starts_with("pub const ") && l.contains(": u32 = "))
        {
            let name = line["pub const ".len()..].split(':').next().unwrap();
            let val: u32 = line
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches(';')
                .parse()
                .unwrap();
            let want = std::format!("#define __NR_{} ", name.to_lowercase());
            if let Some(l) = h.lines().find(|l| l.starts_with(&want)) {
                let host: u32 = l[want.len()..].trim().parse().unwrap();
                assert_eq!(host, val, "{name}");
                checked += 1;
            }
        }
        assert!(checked > 80, "{checked}");
    }
}
