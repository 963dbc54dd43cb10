// SPDX-License-Identifier: GPL-2.0

//! Interception: the syscall-user-dispatch hook (`hook.c`, `hook.rs`) sends every syscall
//! of a tethered task to the route table (`route.rs`).
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
#![deny(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub(crate) mod hook;
pub(crate) mod route;
