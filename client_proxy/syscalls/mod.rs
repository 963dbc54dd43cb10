// SPDX-License-Identifier: GPL-2.0

//! Remote system calls: the handlers the route table names, and the proxy files (`proxy.c`)
//! that stand for remote fds in the client's fd table.

pub(crate) mod copy;
pub(crate) mod fs;
pub(crate) mod mmap;
