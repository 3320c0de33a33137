//! The request objects `resolver:resolve` returns: `request:cancel()`.
//!
//! A request object is only a handle: the lookup itself (and its callback) lives on until its
//! result is delivered whether or not Lua keeps the object, so collecting it cancels nothing.

use std::cell::Cell;

use super::{cancel, Lookup};
use crate::lua::{lua_function, lua_type, Outcome, Returns, Stack, TypeSpec};
use crate::shared::{clone_from_cell, Shared};

/// The Lua request object.
#[derive(Default)]
pub struct RequestUserdata {
    lookup: Cell<Option<Shared<Lookup>>>,
}

lua_type!(RequestUserdata, c"luaevent.core.dns.request", "DNS request");

impl RequestUserdata {
    pub(super) fn hold(&self, lookup: Shared<Lookup>) {
        self.lookup.set(Some(lookup));
    }
}

/// `request:cancel()`: the callback runs once with `nil, "cancelled"`, unless it ran already.
fn cancel_request(stack: &mut Stack) -> Outcome {
    if let Some(lookup) = clone_from_cell(&stack.userdata::<RequestUserdata>(1)?.lookup) {
        cancel(&lookup, false);
    }
    Ok(Returns::Values(0))
}

/// `__gc`: lets go of the lookup, which carries on.
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(request) = stack.test_userdata::<RequestUserdata>(1) {
        drop(request.lookup.take());
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<RequestUserdata>(
    &[&[(c"cancel", lua_function!(cancel_request))]],
    &[(c"__gc", lua_function!(collect))],
);
