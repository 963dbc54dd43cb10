// SPDX-License-Identifier: GPL-2.0

//! Interception: the syscall-user-dispatch hook (`hook.c`, `hook.rs`) sends every syscall
//! of a tethered task to the route table (`route.rs`).

pub(crate) mod hook;
pub(crate) mod route;
