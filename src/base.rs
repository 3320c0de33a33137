//! The event base: `core.new()`, `base:loop()`, `base:loopexit()`, `base:method()`, and the
//! protocol by which events and bufferevents call their Lua callbacks while the loop runs.

use std::cell::Cell;
use std::ffi::{c_int, c_void};

use crate::libevent::EventBase;
use crate::lua::{
    lua_function, lua_type, Address, Arguments, Called, Cause, Failure, LoopEnd, LoopSlot, Method,
    Outcome, Results, Returns, Stack, TypeSpec, WeakTable, LOOP_SLOTS,
};
use crate::os::{self, FdKind};
use crate::shared::{clone_from_cell, Shared};
use crate::time;

/// What a base and everything registered on it share. Events and bufferevents each hold a
/// handle, so libevent's base is freed only after the last of them, whatever order Lua
/// collects them in.
pub struct BaseShared {
    /// The state of the resolvers made on this base, kept here by dns.rs (which only it sets),
    /// and finished before the event base is freed.
    pub dns: Cell<Option<Attached>>,
    pub event_base: EventBase,
    /// Set while `loop` runs: the state and stack slots callbacks use.
    looping: LoopSlot,
    /// The first thing that went wrong in a callback during the current loop.
    fault: Cell<Option<Fault>>,
    /// The object whose callback is running, if any (see [`BaseShared::call_back`]).
    running: Cell<Running>,
    /// The backend, for the descriptors it cannot watch (see [`BaseShared::unwatchable`]).
    backend: Backend,
}

/// State a module above this one keeps with the base, which it outlives without the base
/// knowing its type: an owning pointer, and the function that finishes and frees it when the
/// base goes (before the event base is freed).
#[derive(Clone, Copy)]
pub struct Attached {
    pub state: *const c_void,
    pub finish: fn(*const c_void, &EventBase),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Refuses regular files and directories (poll, select and kqueue take them).
    Epoll,
    /// Handles descriptors below FD_SETSIZE only; libc aborts the process beyond.
    Select,
    Other,
}

impl Backend {
    fn of(method: &str) -> Backend {
        match method.split(" (").next() {
            Some("epoll") => Backend::Epoll,
            Some("select") => Backend::Select,
            _ => Backend::Other,
        }
    }
}

// Holds a Failure inline, on purpose (see clippy.toml): boxing it would allocate.
#[allow(clippy::large_enum_variant)]
enum Fault {
    /// A callback raised an error; it waits in the loop's error slot.
    Raised,
    /// The module refused what a callback did (an event callback's return values).
    Refused(Failure),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Running {
    Idle,
    /// The object at this address is in its callback.
    Calling(Address),
    /// The object in its callback was finalized meanwhile: its memory may be gone.
    Finalized,
}

impl BaseShared {
    /// Calls a Lua callback of the object at `owner` on the looping state, under the loop's
    /// message handler: `arguments` pushes the function and its arguments (returning their
    /// count, or `None` when there is nothing to call), `read` sees the `results` values it
    /// returned. An error stops the loop and is recorded for `loop` to raise.
    ///
    /// The callback may let its own object be collected. Its `__gc` then reports that through
    /// [`BaseShared::finalizing`], and `read` is not called: the object's memory may be gone.
    pub fn call_back<R>(
        &self,
        owner: Address,
        arguments: impl FnOnce(&mut Arguments) -> Option<c_int>,
        results: c_int,
        read: impl FnOnce(&Results) -> R,
    ) -> Called<R> {
        self.track(owner, |looping, alive| {
            looping.call(arguments, results, |returned| {
                alive().then(|| read(returned))
            })
        })
    }

    /// As [`BaseShared::call_back`], for callbacks whose arguments need Lua memory: `arguments`
    /// pushes them on a [`Stack`] (see [`LoopSlot::call_with`]).
    pub fn call_back_with<R>(
        &self,
        owner: Address,
        arguments: impl FnOnce(&mut Stack) -> Result<Option<c_int>, Failure>,
        results: c_int,
        read: impl FnOnce(&Results) -> R,
    ) -> Called<R> {
        self.track(owner, |looping, alive| {
            looping.call_with(arguments, results, |returned| {
                alive().then(|| read(returned))
            })
        })
    }

    /// Runs `call` with the object at `owner` marked as in its callback; `call` gets the loop
    /// and a test telling whether the object is still alive once its function has returned.
    fn track<R>(
        &self,
        owner: Address,
        call: impl FnOnce(&LoopSlot, &dyn Fn() -> bool) -> Called<Option<R>>,
    ) -> Called<R> {
        if !self.looping.is_running() {
            return Called::NotLooping;
        }
        let previous = self.running.replace(Running::Calling(owner));
        let called = call(&self.looping, &|| self.running.get() != Running::Finalized);
        let finalized = self.running.replace(previous) == Running::Finalized;
        match called {
            Called::Raised => {
                self.fail(Fault::Raised);
                if finalized {
                    Called::Finalized
                } else {
                    Called::Raised
                }
            }
            Called::Returned(Some(result)) => Called::Returned(result),
            Called::Returned(None) | Called::Finalized => Called::Finalized,
            Called::NotLooping => Called::NotLooping,
            Called::Skipped => Called::Skipped,
        }
    }

    /// Told by an object's `__gc`: if its callback is running, the protocol must not touch it
    /// once the callback returns.
    pub fn finalizing(&self, owner: Address) {
        if self.running.get() == Running::Calling(owner) {
            self.running.set(Running::Finalized);
        }
    }

    /// Records that the module refused what a callback did, and stops the loop.
    pub fn refuse(&self, failure: Failure) {
        self.fail(Fault::Refused(failure));
    }

    /// Releases a registry reference from inside a callback (an event that returned LEAVE).
    pub fn release(&self, reference: crate::lua::Ref) {
        if self.looping.unreference(reference) == Called::Raised {
            self.fail(Fault::Raised);
        }
    }

    /// Keeps the first fault of the loop, and asks libevent to stop after this callback.
    fn fail(&self, fault: Fault) {
        match self.fault.take() {
            None => self.fault.set(Some(fault)),
            earlier => self.fault.set(earlier),
        }
        self.event_base.break_loop();
    }

    /// Why this base cannot watch `fd` for readiness, if it cannot. libevent would report the
    /// first two only at the next dispatch, as a warning, leaving an event that never fires;
    /// the last one would abort the process (glibc's fd_set bounds check).
    pub fn unwatchable(&self, fd: c_int) -> Option<&'static str> {
        match (os::fd_kind(fd), self.backend) {
            (FdKind::NotOpen, _) => Some("is not open"),
            (FdKind::RegularFile, Backend::Epoll) => {
                Some("is a regular file, which epoll cannot watch")
            }
            (FdKind::Directory, Backend::Epoll) => Some("is a directory, which epoll cannot watch"),
            _ => self.beyond_backend(fd),
        }
    }

    /// Why watching `fd` would make the backend abort the process, if it would: select's
    /// fd_set holds descriptors below FD_SETSIZE only, and glibc checks.
    pub fn beyond_backend(&self, fd: c_int) -> Option<&'static str> {
        (self.backend == Backend::Select && !os::fits_fd_set(fd))
            .then_some("is beyond FD_SETSIZE, which select cannot watch")
    }

    /// Whether the backend watches descriptors below FD_SETSIZE only (select): a socket the
    /// module makes on such a base is refused beyond, see [`SocketBeyondFdSet`].
    pub fn fd_set_only(&self) -> bool {
        self.backend == Backend::Select
    }

    /// Why signal events cannot be watched on this base, if they cannot: on select, libevent's
    /// signal socketpair (made with the base) beyond FD_SETSIZE would abort the process.
    pub fn signals_unwatchable(&self) -> Option<&'static str> {
        (self.fd_set_only() && !self.event_base.signal_descriptors_below(os::FD_SET_SIZE))
            .then_some("libevent's signal descriptors on this base are beyond FD_SETSIZE, which select cannot watch")
    }
}

/// A socket the module made (accepted, connected) whose number the select backend cannot
/// watch: it is closed, and this says why, naming the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketBeyondFdSet(pub c_int);

impl std::fmt::Display for SocketBeyondFdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (fd, limit) = (self.0, os::FD_SET_SIZE);
        write!(f, "its socket, descriptor {fd}, is beyond FD_SETSIZE ({limit}), which the select backend cannot watch")
    }
}

impl Drop for BaseShared {
    fn drop(&mut self) {
        if let Some(dns) = self.dns.take() {
            (dns.finish)(dns.state, &self.event_base);
        }
    }
}

/// The Lua object `core.new()` returns: a handle on the shared base, let go by `__gc`.
pub struct BaseUserdata {
    shared: Cell<Option<Shared<BaseShared>>>,
}

// The slot holds the table of what pending DNS lookups keep alive (see dns/resolver.rs), so
// that it goes with the base.
lua_type!(
    BaseUserdata,
    c"luaevent.core.base",
    "event base",
    slots 1
);

/// The base's slot for the anchor table of its DNS lookups.
pub(crate) const SLOT_DNS_ANCHORS: c_int = 1;

impl BaseUserdata {
    fn shared(&self) -> Option<Shared<BaseShared>> {
        clone_from_cell(&self.shared)
    }
}

/// The base behind the argument at `index`.
pub fn base_argument(stack: &Stack, index: c_int) -> Result<Shared<BaseShared>, Failure> {
    stack
        .userdata::<BaseUserdata>(index)?
        .shared()
        .ok_or_else(|| Failure::argument(index, format_args!("attempt to use a freed event base")))
}

/// The bases made by `core.new()`, newest last, held weakly: the base-less
/// `bufferevent.new(fd, ...)` binds to the newest one still alive.
pub static LATEST_BASES: WeakTable = WeakTable::weak_values();

/// Pushes the newest base made by `core.new()` that is still alive; false if there is none.
pub fn push_latest_base(stack: &mut Stack) -> bool {
    stack.push_latest(&LATEST_BASES)
}

/// `core.new()`
pub fn new(stack: &mut Stack) -> Outcome {
    let event_base = EventBase::new().map_err(|errno| {
        Failure::message(format_args!(
            "core.new: could not create an event base{}",
            Cause(errno)
        ))
    })?;
    let backend = Backend::of(event_base.method());
    let shared = Shared::try_new(BaseShared {
        dns: Cell::new(None),
        event_base,
        looping: LoopSlot::default(),
        fault: Cell::new(None),
        running: Cell::new(Running::Idle),
        backend,
    })
    .map_err(|_| Failure::out_of_memory())?;
    let index = stack.new_userdata(BaseUserdata {
        shared: Cell::new(Some(shared)),
    })?;
    stack.remember(&LATEST_BASES, index)?;
    Ok(Returns::Values(1))
}

/// `base:loop()`
fn run_loop(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    if base.looping.is_running() {
        return Err(Failure::message(format_args!(
            "base:loop: the event base is already looping"
        )));
    }
    base.fault.set(None);
    let (result, end) = base.looping.run(stack, || base.event_base.dispatch());
    let fault = base.fault.take();
    drop(base);
    match (fault, end) {
        (None, _) => {
            stack.push_integer(result as i64);
            Ok(Returns::Values(1))
        }
        (Some(Fault::Refused(failure)), _) => Err(failure),
        (Some(Fault::Raised), LoopEnd::Failed) => Err(Failure::error_on_top()),
        (Some(Fault::Raised), LoopEnd::Clean) => Err(Failure::message(format_args!(
            "base:loop: a callback failed and its error was lost"
        ))),
    }
}

/// `base:loopexit([seconds])`
fn loopexit(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    let after = time::optional_timeout(stack, 2)?;
    stack.push_integer(base.event_base.exit_loop(after) as i64);
    Ok(Returns::Values(1))
}

/// `base:method()`
fn method(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    // The batching epoll backend calls itself "epoll (with changelist)"; the backend is epoll
    // all the same, and that is the name programs compare against.
    let name = base
        .event_base
        .method()
        .split(" (")
        .next()
        .unwrap_or_default();
    stack.return_str(name)
}

/// `__gc`: lets go of the shared base (freed once nothing else holds it).
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(base) = stack.test_userdata::<BaseUserdata>(1) {
        drop(base.shared.take());
    }
    Ok(Returns::Values(0))
}

/// The base's own methods; lib.rs adds `addevent` from the event type.
pub const METHODS: &[Method] = &[
    (c"loop", lua_function!(run_loop, LOOP_SLOTS)),
    (c"loopexit", lua_function!(loopexit)),
    (c"method", lua_function!(method)),
];

/// The base's metatable, with `methods` (its own [`METHODS`] and those other types add).
pub const fn type_spec(methods: &'static [&'static [Method]]) -> TypeSpec {
    TypeSpec::of::<BaseUserdata>(methods, &[(c"__gc", lua_function!(collect))])
}
