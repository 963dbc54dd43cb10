//! tether wire protocol: frame header, message bodies, codec.
//!
//! Pure functions over byte slices: no allocation, and no input makes them panic.

pub mod auth;
pub mod calls;
pub mod codec;
pub mod device;
pub mod error;
pub mod export;
pub mod frame;
pub mod kind;
pub mod msg;
pub mod peer;
pub mod process;
pub mod syscall;
pub mod sysno;
