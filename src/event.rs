//! `base:addevent(fd, events, callback [, timeout])` and the event objects it returns, with the
//! C module's rules for what a callback returns (and its mask-switch bug fixed).

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void};

use crate::base::{base_argument, BaseShared};
use crate::c_callback::c_callback;
use crate::ffi::{EV_CLOSED, EV_ET, EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE};
use crate::libevent::{self, Event};
use crate::lua::{
    lua_function, lua_type, number_to_integer, Address, Called, Cause, Failure, Kind, Outcome, Ref,
    Results, Returns, Source, Stack, TypeSpec,
};
use crate::os;
use crate::shared::{clone_from_cell, Shared};
use crate::time::{self, seconds_to_micros, Micros};

/// The callback result that removes the event (`core.LEAVE`).
pub const LEAVE: i64 = -1;

/// Every bit a user may ask for; anything else (EV_FINALIZE, stray bits) is refused.
const ALLOWED_EVENTS: c_short =
    EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL | EV_PERSIST | EV_ET | EV_CLOSED;

/// An event object: libevent's `struct event` itself (no allocation of its own), whose address
/// is libevent's callback argument, plus what the callback rules need.
pub struct EventUserdata {
    event: Event,
    /// Keeps libevent's base alive as long as the event; `None` once collected.
    base: Cell<Option<Shared<BaseShared>>>,
    /// The timeout as last registered.
    timeout: Cell<Timeout>,
    /// The Lua callback; `None` once the event is closed.
    callback: Cell<Option<Ref>>,
}

lua_type!(EventUserdata, c"luaevent.core.event", "event");

/// A registered timeout, or none at all (which is not the same as a zero timeout). One word
/// rather than an `Option<Micros>` keeps the event object at its size.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Timeout(Micros);

impl Timeout {
    const NONE: Timeout = Timeout(-1);

    fn of(timeout: Option<Micros>) -> Timeout {
        timeout.map_or(Timeout::NONE, Timeout)
    }

    fn get(self) -> Option<Micros> {
        (self != Timeout::NONE).then_some(self.0)
    }
}

impl EventUserdata {
    fn base(&self) -> Option<Shared<BaseShared>> {
        clone_from_cell(&self.base)
    }

    fn is_open(&self) -> bool {
        self.callback.get().is_some()
    }

    /// Removes the event from libevent and gives back its callback, for the caller to release.
    /// Idempotent: a closed event gives nothing.
    fn shut(&self) -> Option<Ref> {
        if let Some(base) = self.base() {
            self.event.delete(&base.event_base);
        }
        self.callback.take()
    }

    /// Assigns the event and registers it with libevent.
    fn register(
        &self,
        base: &BaseShared,
        fd: c_int,
        events: c_short,
        timeout: Option<Micros>,
    ) -> Result<(), Registration> {
        self.event.delete(&base.event_base);
        // SAFETY: the event is not pending (just deleted). Its memory is this userdata, which
        // Lua never moves, and the argument is the same address: both stay valid until the
        // event is deleted, which `shut` does (from close, __gc or LEAVE) before Lua can free
        // the userdata.
        let assigned = unsafe {
            self.event.assign(
                &base.event_base,
                fd,
                events,
                on_event,
                self as *const Self as *const c_void,
            )
        };
        if !assigned {
            return Err(Registration::MaskRefused);
        }
        self.timeout.set(Timeout::of(timeout));
        self.event
            .add(&base.event_base, timeout)
            .map_err(Registration::AddFailed)
    }
}

enum Registration {
    MaskRefused,
    AddFailed(Option<crate::os::Errno>),
}

/// An event mask argument or result: only known bits, `EV_PERSIST` dropped (always added).
fn event_mask(value: i64) -> Option<c_short> {
    let mask = c_short::try_from(value)
        .ok()
        .filter(|mask| *mask >= 0 && mask & !ALLOWED_EVENTS == 0)?;
    Some(mask & !EV_PERSIST)
}

/// `base:addevent(fd, events, callback [, timeout])`
pub fn addevent(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    let timeout = time::optional_timeout(stack, 5)?;
    let no_fd = stack.kind(2) == Kind::Nil;
    let fd = if no_fd {
        -1
    } else {
        crate::fd::argument(stack, 2)?
    };
    let requested = stack.integer(3)?;
    let events = event_mask(requested)
        .ok_or_else(|| Failure::argument(3, format_args!("invalid event mask ({requested})")))?;
    stack.callable(4, "function")?;
    let signal = events & EV_SIGNAL != 0;
    if signal {
        let highest = os::highest_signal();
        if no_fd {
            return Err(Failure::argument(
                2,
                format_args!("signal number expected with EV_SIGNAL, got nil"),
            ));
        }
        if !(1..=highest).contains(&fd) {
            return Err(Failure::argument(
                2,
                format_args!(
                    "signal number expected with EV_SIGNAL, from 1 to {highest}, got {fd}"
                ),
            ));
        }
        if let Some(why) = base.signals_unwatchable() {
            return Err(Failure::message(format_args!(
                "base:addevent: libevent could not register the event on signal {fd}: {why}"
            )));
        }
    } else if events & (EV_READ | EV_WRITE | EV_CLOSED) != 0 {
        if no_fd {
            return Err(Failure::argument(
                2,
                format_args!("fd expected with EV_READ or EV_WRITE, got nil (nil is for timers)"),
            ));
        }
        if let Some(why) = base.unwatchable(fd) {
            return Err(Failure::argument(
                2,
                format_args!("bad file descriptor ({fd} {why})"),
            ));
        }
    }
    if no_fd && timeout.is_none() {
        return Err(Failure::argument(
            5,
            format_args!("timeout expected when fd is nil"),
        ));
    }

    let object = stack.new_userdata(EventUserdata {
        event: Event::unassigned(),
        base: Cell::new(Some(base.clone())),
        timeout: Cell::new(Timeout::NONE),
        callback: Cell::new(None),
    })?;
    let callback = stack.reference(4)?;
    let event = stack.userdata::<EventUserdata>(object)?;
    event.callback.set(Some(callback));
    libevent::forget_log_lines();
    let failure = match event.register(&base, fd, events, timeout) {
        Ok(()) => return Ok(Returns::Values(1)),
        Err(Registration::MaskRefused) => Failure::argument(
            3,
            format_args!("libevent refused this event mask ({events})"),
        ),
        Err(Registration::AddFailed(errno)) => {
            let what = if signal { "signal" } else { "fd" };
            // libevent's own log line says why, where it wrote one (a signal that cannot be
            // caught: "sigaction: Invalid argument"); otherwise errno does.
            match libevent::take_log_line() {
                Some(line) => Failure::message(format_args!(
                    "base:addevent: libevent could not register the event on {what} {fd}: {}",
                    line.as_str()
                )),
                None => Failure::message(format_args!(
                    "base:addevent: libevent could not register the event on {what} {fd}{}",
                    Cause(errno)
                )),
            }
        }
    };
    if let Some(callback) = event.shut() {
        // Not releasing it would only keep the callback alive; the failure above says more.
        let _ = stack.unreference(callback);
    }
    Err(failure)
}

c_callback! {
    /// libevent's entry point for every event made by addevent.
    fn on_event(_fd: c_int, what: c_short, arg: *mut c_void) {
        dispatch(arg as *const EventUserdata, what)
    }
}

/// Calls the Lua callback and applies what it returns. The callback may close or collect its
/// own event, so the event is reached through its address and borrowed only around the call.
fn dispatch(event: *const EventUserdata, what: c_short) {
    let (base, callback) = {
        // SAFETY: `event` is the userdata registered with this libevent event, and an event is
        // deleted from libevent before Lua can free its userdata: a callback means it is alive.
        // The borrow ends before any Lua code runs.
        let event = unsafe { &*event };
        let (Some(base), Some(callback)) = (event.base(), event.callback.get()) else {
            return;
        };
        (base, callback)
    };
    let outcome = base.call_back(
        Address::at(event),
        |arguments| {
            arguments.push_ref(callback);
            arguments.push_integer(what as i64);
            Some(1)
        },
        2,
        |results| {
            // SAFETY: not collected during its callback (call_back checks that before calling
            // `read`), so the userdata is alive: Lua frees one only after its __gc has run.
            let event = unsafe { &*event };
            apply_result(&base, event, what, results)
                .map_err(|refusal| refusal.explain(results, callback))
        },
    );
    if let Called::Returned(Err(failure)) = outcome {
        base.refuse(failure);
    }
}

/// What the return-value rules refuse, made into a message by [`Refusal::explain`].
enum Refusal {
    /// The first result is not an integer.
    MaskNotInteger,
    /// The first result has unknown bits, or is negative other than LEAVE.
    InvalidMask(i64),
    /// libevent refuses the new mask's combination of bits.
    MaskRefused(c_short),
    /// The second result is beyond the longest timeout.
    TimeoutTooLarge(f64),
    /// The new mask watches an fd the backend would abort on.
    BeyondBackend(c_int, &'static str),
    /// libevent failed to register the event again.
    AddFailed(c_int, Option<crate::os::Errno>),
}

impl Refusal {
    /// The message, naming the callback by where it was defined (the program may have many).
    fn explain(self, results: &Results, callback: Ref) -> Failure {
        let by = DefinedAt(results.source_of(callback));
        match self {
            Refusal::MaskNotInteger => Failure::message(format_args!(
                "base:loop: event callback{by} returned {} as its new event mask (integer expected)",
                Described(results, 1)
            )),
            Refusal::InvalidMask(mask) => {
                Failure::message(format_args!("base:loop: event callback{by} returned an invalid event mask ({mask})"))
            }
            Refusal::MaskRefused(mask) => {
                Failure::message(format_args!("base:loop: event callback{by} returned an event mask libevent refuses ({mask})"))
            }
            Refusal::TimeoutTooLarge(seconds) => Failure::message(format_args!(
                "base:loop: event callback{by} returned {seconds} as its new timeout (2^31 seconds at most)"
            )),
            Refusal::BeyondBackend(fd, why) => {
                Failure::message(format_args!("base:loop: event callback{by} asked to watch fd {fd}, but it {why}"))
            }
            Refusal::AddFailed(fd, errno) => {
                Failure::message(format_args!("base:loop: libevent could not re-register the event on fd {fd}{}", Cause(errno)))
            }
        }
    }
}

/// " defined at file.lua:12" for a callback with a Lua source, nothing otherwise.
struct DefinedAt(Option<Source>);

impl std::fmt::Display for DefinedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(source) => write!(f, " defined at {source}"),
            None => Ok(()),
        }
    }
}

/// The return-value rules: `(newEvents, newTimeout)` are results 1 and 2.
fn apply_result(
    base: &BaseShared,
    event: &EventUserdata,
    what: c_short,
    results: &Results,
) -> Result<(), Refusal> {
    if !event.is_open() {
        return Ok(());
    }
    let new_events = match results.kind(1) {
        Kind::Nil => what as i64,
        kind => results
            .number_of_kind(1, kind)
            .and_then(number_to_integer)
            .ok_or(Refusal::MaskNotInteger)?,
    };
    if new_events == LEAVE {
        if let Some(callback) = event.shut() {
            base.release(callback);
        }
        return Ok(());
    }
    // A number >= 0 replaces the timeout; anything else (nothing, negative, NaN) keeps it.
    let mut explicit_timeout = None;
    if let Some(seconds) = results
        .number_of_kind(2, results.kind(2))
        .filter(|&seconds| seconds >= 0.0)
    {
        explicit_timeout =
            Some(seconds_to_micros(seconds).ok_or(Refusal::TimeoutTooLarge(seconds))?);
    }

    // The C module keeps no-timeout and zero-timeout apart only when registering, not when
    // deciding whether anything changed; decide exactly as it does.
    let current = event.timeout.get().get();
    let changed_timeout = explicit_timeout.is_some_and(|t| t != current.unwrap_or(0));
    if new_events == what as i64 && !changed_timeout {
        return Ok(());
    }
    let mask = event_mask(new_events).ok_or(Refusal::InvalidMask(new_events))?;
    let timeout = explicit_timeout.or(current);
    let fd = event.event.fd();
    let outcome = if mask != event.event.events() {
        // A new mask needs the event assigned again.
        if mask & (EV_READ | EV_WRITE | EV_CLOSED) != 0 && mask & EV_SIGNAL == 0 {
            if let Some(why) = base.beyond_backend(fd) {
                return Err(Refusal::BeyondBackend(fd, why));
            }
        }
        event.register(base, fd, mask, timeout)
    } else {
        // Same mask (Prosody's "return 0" timers): adding again reschedules the timeout.
        event.timeout.set(Timeout::of(timeout));
        event
            .event
            .add(&base.event_base, timeout)
            .map_err(Registration::AddFailed)
    };
    outcome.map_err(|registration| match registration {
        Registration::MaskRefused => Refusal::MaskRefused(mask),
        Registration::AddFailed(errno) => Refusal::AddFailed(fd, errno),
    })
}

/// A returned value as error messages show it: the number, `true` or `false`, or "a <type> value".
struct Described<'a>(&'a Results, c_int);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Described(results, n) = *self;
        if let Some(value) = results.boolean(n) {
            return write!(f, "{value}");
        }
        match (results.kind(n), results.number(n)) {
            (Kind::Number, Some(number)) => write!(f, "{number}"),
            _ => write!(f, "a {} value", results.type_name(n)),
        }
    }
}

/// `event:close()`
fn close(stack: &mut Stack) -> Outcome {
    let callback = stack.userdata::<EventUserdata>(1)?.shut();
    if let Some(callback) = callback {
        stack.unreference(callback)?;
    }
    Ok(Returns::Values(0))
}

/// `__gc`: as close, and lets go of the base. During the event's own callback it tells the
/// base, whose callback protocol then leaves the object alone.
fn collect(stack: &mut Stack) -> Outcome {
    let Some(event) = stack.test_userdata::<EventUserdata>(1) else {
        return Ok(Returns::Values(0));
    };
    let callback = event.shut();
    if let Some(base) = event.base.take() {
        base.finalizing(Address::of(event));
    }
    if let Some(callback) = callback {
        stack.unreference(callback)?;
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<EventUserdata>(
    &[&[(c"close", lua_function!(close))]],
    &[(c"__gc", lua_function!(collect))],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_object_is_its_libevent_event_plus_24_bytes() {
        // The memory per idle event (no more than the C module's) rests on this.
        assert_eq!(
            std::mem::size_of::<EventUserdata>(),
            std::mem::size_of::<crate::ffi::event>() + 24
        );
    }

    #[test]
    fn masks_keep_known_bits_and_drop_persist() {
        assert_eq!(event_mask((EV_READ | EV_PERSIST) as i64), Some(EV_READ));
        assert_eq!(event_mask(0), Some(0));
        assert_eq!(event_mask(-1), None);
        assert_eq!(event_mask(0x1000), None);
        assert_eq!(event_mask(1 << 20), None);
    }
}
