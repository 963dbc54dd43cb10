// SPDX-License-Identifier: GPL-2.0

//! A module-global `Arc`, for code that cannot be handed one: C callbacks, hooks, `open` of
//! a misc device. Shared by both modules.

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::sync::{Arc, ArcBorrow};

/// Holds one reference to a `T` between `publish(Some(..))` and `publish(None)`.
///
/// The owner keeps a reference of its own until after `publish(None)`, so that a
/// [`Global::get`] racing with it still finds the value alive.
///
/// # Invariants
///
/// `ptr` is null, or comes from `Arc::into_raw` and its reference is owned by `self`.
pub(crate) struct Global<T> {
    ptr: AtomicPtr<T>,
}

impl<T> Global<T> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        // INVARIANT: null.
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Publishes `value` (`None`: withdraws what was published).
    pub(crate) fn publish(&self, value: Option<Arc<T>>) {
        let new = value.map_or(core::ptr::null_mut(), |v| Arc::into_raw(v).cast_mut());
        // INVARIANT: `new` is null or owns a reference, which `self` now holds.
        let old = self.ptr.swap(new, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: By the invariant `old` came from `Arc::into_raw` and `self` owned its
            // reference, which it gave up just now.
            drop(unsafe { Arc::from_raw(old) });
        }
    }

    /// A new reference to the published value, if any.
    pub(crate) fn get(&self) -> Option<Arc<T>> {
        let ptr = self.ptr.load(Ordering::Acquire);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` came from `Arc::into_raw`; the value is alive: `self` holds a
        // reference, or, if `publish(None)` just dropped it, the owner still holds its own
        // (see the type's documentation).
        Some(unsafe { ArcBorrow::from_raw(ptr) }.into())
    }
}
