//! `core.dns`: resolvers on libevent's evdns (`core.dns.new`, `resolver:resolve`,
//! `resolver:close`; the Lua objects are in dns/resolver.rs and dns/request.rs, which stack
//! on the lookups here), and each base's default resolver, which connecting by name uses.
//!
//! # For Rust callers
//! - [`resolver_for_connect`]`(stack, base_index, dns_index, options_argument)`: the resolver
//!   object at `dns_index` (when given and not nil; errors name `options_argument`, the options
//!   table it came from), or the base's default resolver, made on first use
//!   from the system's configuration. Gives a [`ResolverHandle`], which keeps the resolver's
//!   state (and the base) alive while held. Closing the resolver from Lua makes it refuse new
//!   lookups (they end as cancelled) and cancel pending ones; nothing is freed under a holder.
//! - [`lookup`]`(&handle, name, family, on_done, arg)` starts a lookup; `on_done(arg, result)`
//!   runs exactly once, from the loop (never inside `lookup`), with the addresses
//!   ([`Addresses`]: libevent's list, freed on drop, iterated as `SocketAddr`s with port 0,
//!   IPv6 first then IPv4) or a [`LookupError`] (`reason()` says why; cancelled included).
//! - The [`PendingLookup`] it returns: `cancel()` makes `on_done` run with
//!   `LookupError::Cancelled` (unless it ran already); dropping it abandons the lookup, after
//!   which `on_done` never runs (drop it when `arg` is about to go).
//!
//! # How lookups stay safe
//! libevent's evdns crashes when a resolver is freed with lookups pending or from inside one of
//! its callbacks (libevent#962, #1278), when a cancelled lookup's callback is already queued
//! (#1506), or when a lookup is cancelled from inside its own callback chain (#333). So:
//! - libevent's callback only records the result and schedules this module's own timer event
//!   (the "service" event of the resolver); Lua and Rust callers are called from that event,
//!   never from inside evdns, and never from inside `resolve` (answers libevent gives at once,
//!   literal addresses and hosts-file names, wait for it too).
//! - A lookup is cancelled in libevent only while libevent still owns it (its callback has not
//!   run), and the caller's "cancelled" is delivered by this module: whatever libevent then
//!   reports for it is dropped.
//! - A resolver's evdns base is freed only once libevent has given back every lookup, and one
//!   loop round later (libevent may still run a deferred callback that touches it), by the
//!   service event; or, when the event base itself goes, after cancelling what is left and
//!   running one non-blocking round of the loop (see [`BaseDns::shut_down`]).
//! - Ownership has no cycle through the base: the base's [`BaseDns`] owns the resolvers'
//!   states ([`Core`]), which only point back at it; Lua objects and handles hold the base.
//! - A Lua callback waiting for its lookup is kept in a table that is the base object's user
//!   value: reachable while the base can still be looped, collected with it (a callback that
//!   refers to its base or resolver does not keep either alive for ever).

mod request;
mod resolver;

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void, CStr};
use std::fmt::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::base::{Attached, BaseShared};
use crate::c_callback::c_callback;
use crate::ffi;
use crate::libevent::{self, AddressList, DnsBase, Event, EventBase, LookupRequest};
use crate::lua::{Address, Arguments, Called, Cause, Failure, Kind, Raised, Stack, WeakTable};
use crate::os;
use crate::shared::{clone_from_cell, Shared};
use crate::time::Micros;

pub use request::TYPE as REQUEST_TYPE;
pub use resolver::{new, resolver_for_connect, ResolverUserdata, TYPE};

/// libevent's default time per try, when the options do not say.
const DEFAULT_TRY_TIMEOUT: Micros = 5_000_000;

/// The most name servers `options.nameservers` may list.
const MAX_NAMESERVERS: usize = 32;

// ------------------------------------------------------------------------ results ----

/// Which addresses a lookup wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
    Any,
}

impl Family {
    fn af(self) -> c_int {
        match self {
            Family::Inet => libc::AF_INET,
            Family::Inet6 => libc::AF_INET6,
            Family::Any => libc::AF_UNSPEC,
        }
    }
}

/// Why a lookup found no address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN).
    NoSuchName,
    /// The name exists but has no address of the family asked for.
    NoAddress,
    /// No name server answered in time.
    TimedOut,
    /// The name servers answered with an error, or with no address of the family asked for
    /// (libevent reports both alike).
    ServerFailure,
    /// Cancelled, or the resolver was closed.
    Cancelled,
    OutOfMemory,
}

impl LookupError {
    pub fn reason(self) -> &'static str {
        match self {
            LookupError::NoSuchName => "no such name",
            LookupError::NoAddress => "no address",
            LookupError::TimedOut => "timed out",
            LookupError::ServerFailure => "no usable answer from the name servers",
            LookupError::Cancelled => "cancelled",
            LookupError::OutOfMemory => "not enough memory",
        }
    }
}

/// The addresses a lookup found (at least one).
pub struct Addresses(AddressList);

impl Addresses {
    /// Every address, with port 0: IPv6 ones first, then IPv4 (the order RFC 6724 prefers;
    /// within a family, the name server's order).
    pub fn iter(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let v6 = self.0.addresses().filter(SocketAddr::is_ipv6);
        let v4 = self.0.addresses().filter(SocketAddr::is_ipv4);
        v6.chain(v4)
    }
}

pub type LookupResult = Result<Addresses, LookupError>;

/// Who waits for a lookup's result.
#[derive(Clone, Copy)]
enum Client {
    /// Nobody any more: delivered, or abandoned.
    Gone,
    /// A Lua callback, kept in the base's anchor table under the lookup's address.
    Lua,
    /// A Rust caller.
    #[allow(dead_code)] // made by `lookup`, for bufferevent.connect
    Rust {
        on_done: fn(*const c_void, LookupResult),
        arg: *const c_void,
    },
}

// ---------------------------------------------------------------------- the state ----

/// What a base holds of its resolvers. Kept in [`BaseShared::dns`] (see [`base_dns`]).
#[derive(Default)]
pub struct BaseDns {
    /// Every resolver state made on the base and not freed yet, linked through `Core::next`.
    cores: Cell<Option<Shared<Core>>>,
    /// The default resolver, made when first needed (also in `cores`).
    default: Cell<Option<Shared<Core>>>,
}

/// One resolver: libevent's evdns base and the lookups it has not delivered yet.
pub struct Core {
    /// The base whose [`BaseDns`] lists this core: valid while listed (the base frees its
    /// cores before its event base, and a core is unlisted only when nothing will use it).
    base: *const BaseShared,
    /// None once freed.
    evdns: Cell<Option<DnsBase>>,
    /// A timer that delivers results and frees the evdns base of a closed resolver.
    service: Event,
    /// Lookups not delivered yet, oldest first, linked through `Lookup::next`.
    lookups: Cell<Option<Shared<Lookup>>>,
    /// Lookups libevent has not given back yet.
    outstanding: Cell<usize>,
    closed: Cell<bool>,
    /// Set while the base goes: nothing is scheduled any more.
    shutting_down: Cell<bool>,
    /// The service event saw the closed core idle once: the next time, it frees the evdns base.
    reap_ready: Cell<bool>,
    /// Seconds per try, to tell a timeout from a failure (libevent reports both as one code).
    try_timeout: Micros,
    next: Cell<Option<Shared<Core>>>,
}

/// One lookup, from `resolve` until its result is delivered.
struct Lookup {
    core: Shared<Core>,
    next: Cell<Option<Shared<Lookup>>>,
    /// libevent's request while libevent owns it and it can still be cancelled.
    request: Cell<Option<LookupRequest>>,
    /// Set when the result is known (or the lookup was cancelled); delivered by the service.
    outcome: Cell<Option<LookupResult>>,
    client: Cell<Client>,
    family: Family,
    started: Instant,
    /// The name, for messages (cut at 255 bytes, the longest DNS name).
    name: [u8; 255],
    name_len: u8,
}

impl Lookup {
    fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }

    fn is_waited_for(&self) -> bool {
        !matches!(self.client.get(), Client::Gone)
    }
}

impl Core {
    fn base(&self) -> &BaseShared {
        // SAFETY: a core is reached only while listed by its base (see the field), or through
        // a lookup or handle whose holder also keeps the base alive.
        unsafe { &*self.base }
    }

    /// Runs `f` with the evdns base, if it is not freed.
    fn with_evdns<R>(&self, f: impl FnOnce(&DnsBase) -> R) -> Option<R> {
        let evdns = self.evdns.take()?;
        let result = f(&evdns);
        self.evdns.set(Some(evdns));
        Some(result)
    }

    /// Asks the service event to run at the next loop round.
    fn schedule(&self) {
        if !self.shutting_down.get() {
            // A failure (out of memory) leaves the results waiting for the next schedule.
            let _ = self.service.add(&self.base().event_base, Some(0));
        }
    }

    fn append(&self, lookup: Shared<Lookup>) {
        let Some(first) = self.lookups.take() else {
            self.lookups.set(Some(lookup));
            return;
        };
        let mut last = first.clone();
        while let Some(next) = clone_from_cell(&last.next) {
            last = next;
        }
        last.next.set(Some(lookup));
        self.lookups.set(Some(first));
    }

    /// Unlinks and returns the oldest lookup whose outcome is known.
    fn take_finished(&self) -> Option<Shared<Lookup>> {
        let mut previous: Option<Shared<Lookup>> = None;
        let mut current = clone_from_cell(&self.lookups);
        while let Some(lookup) = current {
            let done = {
                let outcome = lookup.outcome.take();
                let done = outcome.is_some();
                lookup.outcome.set(outcome);
                done
            };
            let next = lookup.next.take();
            if done {
                match &previous {
                    None => self.lookups.set(next),
                    Some(previous) => previous.next.set(next),
                }
                return Some(lookup);
            }
            lookup.next.set(next.clone());
            previous = Some(lookup);
            current = next;
        }
        None
    }

    /// Cancels every lookup not delivered yet; new ones are refused from now on.
    fn close(&self) {
        self.closed.set(true);
        let mut current = clone_from_cell(&self.lookups);
        while let Some(lookup) = current {
            cancel(&lookup, false);
            current = clone_from_cell(&lookup.next);
        }
        self.schedule();
    }
}

/// Ends a lookup as cancelled: libevent's request is cancelled while libevent still owns it,
/// and the caller's "cancelled" is delivered from the loop (unless `abandon`: then nobody is
/// told). Nothing happens to a lookup already delivered or abandoned.
fn cancel(lookup: &Lookup, abandon: bool) {
    if !lookup.is_waited_for() {
        return;
    }
    if abandon {
        lookup.client.set(Client::Gone);
    }
    // Drop any answer that came in meanwhile (a cancel wins over an undelivered answer).
    drop(lookup.outcome.replace(Some(Err(LookupError::Cancelled))));
    if let Some(request) = lookup.request.take() {
        // SAFETY: `request` is set only from the start of the lookup until libevent calls it
        // back (which clears it), and taken here: libevent still owns it, and it is cancelled
        // once.
        unsafe { libevent::cancel_lookup(request) };
    }
    lookup.core.schedule();
}

impl BaseDns {
    /// The base is going (its last holder let go): every lookup is cancelled without telling
    /// anyone (no loop can run any more), libevent is given one round to give them back, and
    /// every evdns base is freed, before the event base is.
    pub fn shut_down(&self, event_base: &EventBase) {
        drop(self.default.take());
        let cores = self.cores.take();
        let mut outstanding = 0;
        let mut current = cores.clone();
        while let Some(core) = current {
            core.shutting_down.set(true);
            core.closed.set(true);
            core.service.delete(event_base);
            let mut lookup = clone_from_cell(&core.lookups);
            while let Some(this) = lookup {
                cancel(&this, true);
                lookup = clone_from_cell(&this.next);
            }
            outstanding += core.outstanding.get();
            current = clone_from_cell(&core.next);
        }
        if outstanding > 0 {
            // The cancellations' callbacks, then what those may have scheduled in turn.
            event_base.run_ready();
            event_base.run_ready();
        }
        let mut current = cores;
        while let Some(core) = current {
            drop(core.lookups.take()); // (each lookup drops the next in turn)
            if let Some(evdns) = core.evdns.take() {
                // SAFETY: libevent gave back every lookup it still had a callback for, and ran
                // what it had scheduled (the rounds above); the event base is still alive. A
                // lookup still outstanding here is one libevent lost (its deferred callback
                // could not be allocated): nothing of it will ever run, and only the event
                // base's own teardown follows.
                unsafe { evdns.free() };
            }
            current = core.next.take();
        }
    }

    fn link(&self, core: &Shared<Core>) {
        core.next.set(self.cores.take());
        self.cores.set(Some(core.clone()));
    }

    fn unlink(&self, core: &Core) {
        let mut previous: Option<Shared<Core>> = None;
        let mut current = clone_from_cell(&self.cores);
        while let Some(this) = current {
            let next = clone_from_cell(&this.next);
            if std::ptr::eq(&*this, core) {
                match &previous {
                    None => self.cores.set(this.next.take()),
                    Some(previous) => previous.next.set(this.next.take()),
                }
                return;
            }
            previous = Some(this);
            current = next;
        }
    }
}

/// The resolvers' state of `base`, made and kept in the base on first use.
fn base_dns(base: &BaseShared) -> Result<&BaseDns, Failure> {
    if base.dns.get().is_none() {
        let state = Shared::try_new(BaseDns::default()).map_err(|_| Failure::out_of_memory())?;
        base.dns.set(Some(Attached {
            state: Shared::into_raw(state).cast(),
            finish: finish_base_dns,
        }));
    }
    existing_base_dns(base).ok_or_else(Failure::out_of_memory)
}

/// The resolvers' state of `base`, if made.
fn existing_base_dns(base: &BaseShared) -> Option<&BaseDns> {
    let attached = base.dns.get()?;
    // SAFETY: only `base_dns` sets the base's slot, with a count of a `Shared<BaseDns>` given
    // up by `into_raw`, which the base holds until it goes (after every borrow of it).
    Some(unsafe { &*attached.state.cast::<BaseDns>() })
}

/// Finishes the resolvers of a base that goes, and lets go of their state.
fn finish_base_dns(state: *const c_void, event_base: &EventBase) {
    // SAFETY: `state` is what `base_dns` stored: a count given up by `into_raw`, which the
    // base hands back once, from its drop.
    let dns = unsafe { Shared::from_raw(state.cast::<BaseDns>()) };
    dns.shut_down(event_base);
}

/// How a resolver is configured.
struct Config {
    /// The stack slot holding `options.nameservers`, when given.
    nameservers: Option<c_int>,
    hosts: Hosts,
    timeout: Option<Micros>,
    attempts: Option<i64>,
}

enum Hosts {
    System,
    None,
    /// The stack slot holding the path.
    File(c_int),
}

/// Makes a resolver's state on `base` and lists it there. `what` names the caller in errors.
fn new_core(
    stack: &mut Stack,
    base: &Shared<BaseShared>,
    config: &Config,
    what: &str,
) -> Result<Shared<Core>, Failure> {
    let failed = |errno| {
        Failure::message(format_args!(
            "{what}: could not create a resolver{}",
            Cause(errno)
        ))
    };
    let dns = base_dns(base)?;
    // On select, each name server's socket must fit in an fd_set (glibc aborts the process
    // otherwise, once a question is sent). libevent makes them as it adds the name servers,
    // each taking the lowest free descriptor: they fit while there are enough free ones.
    let free_in_fd_set = base.fd_set_only().then(os::free_fds_in_fd_set);
    let evdns =
        DnsBase::new(&base.event_base, config.nameservers.is_none()).ok_or_else(|| failed(None))?;
    let core = Shared::try_new(Core {
        base: &**base as *const BaseShared,
        evdns: Cell::new(Some(evdns)),
        service: Event::unassigned(),
        lookups: Cell::new(None),
        outstanding: Cell::new(0),
        closed: Cell::new(false),
        shutting_down: Cell::new(false),
        reap_ready: Cell::new(false),
        try_timeout: config.timeout.unwrap_or(DEFAULT_TRY_TIMEOUT),
        next: Cell::new(None),
    });
    let core = match core {
        Ok(core) => core,
        Err(core) => {
            discard(&core);
            return Err(Failure::out_of_memory());
        }
    };
    if let Err(failure) = configure(stack, &core, config, what) {
        discard(&core);
        return Err(failure);
    }
    let sockets = core.with_evdns(DnsBase::nameserver_count).unwrap_or(0);
    if free_in_fd_set.is_some_and(|free| sockets > free) {
        discard(&core);
        let limit = os::FD_SET_SIZE;
        return Err(Failure::message(format_args!(
            "{what}: could not create a resolver: the sockets of its {sockets} name server(s) would be beyond \
             FD_SETSIZE ({limit}), which the select backend cannot watch"
        )));
    }
    // SAFETY: the core lives in its Shared allocation, which does not move, and the event is
    // deleted before the core can go (reaping deletes it first, and so does the base's
    // shut_down); the event base outlives the core's listing.
    let assigned = unsafe {
        core.service.assign(
            &base.event_base,
            -1,
            0,
            on_service,
            &*core as *const Core as *const c_void,
        )
    };
    if !assigned {
        discard(&core);
        return Err(failed(None));
    }
    dns.link(&core);
    Ok(core)
}

/// Frees the evdns base of a core that never started a lookup.
fn discard(core: &Core) {
    if let Some(evdns) = core.evdns.take() {
        // SAFETY: no lookup was started on it, so libevent owns nothing of it; the event base
        // is alive (the caller holds it).
        unsafe { evdns.free() };
    }
}

/// Applies the options to a new core. Raw reads of values already checked: no Lua code runs.
fn configure(stack: &mut Stack, core: &Core, config: &Config, what: &str) -> Result<(), Failure> {
    core.with_evdns(|evdns| {
        if let Some(list) = config.nameservers {
            for n in 1..=MAX_NAMESERVERS as i64 {
                if stack.push_field(list, n) != Kind::String {
                    stack.pop(1);
                    break;
                }
                let text = stack
                    .string_bytes(-1)
                    .and_then(|bytes| std::str::from_utf8(bytes).ok())
                    .unwrap_or_default();
                let added = parse_nameserver(text).map(|address| evdns.add_nameserver(address));
                if added == Some(false) {
                    return Err(Failure::message(format_args!(
                        "{what}: could not add the name server '{text}'"
                    )));
                }
                stack.pop(1);
            }
        }
        match config.hosts {
            Hosts::System if config.nameservers.is_some() => {
                // Without resolv.conf nothing read /etc/hosts yet; a missing one is no error.
                evdns.clear_hosts();
                let _ = evdns.load_hosts(Some(c"/etc/hosts"));
            }
            Hosts::System => {}
            Hosts::None => evdns.clear_hosts(),
            Hosts::File(slot) => {
                let path = stack.c_string(slot).unwrap_or(c"/etc/hosts");
                evdns.clear_hosts();
                evdns.load_hosts(Some(path)).map_err(|errno| {
                    Failure::message(format_args!(
                        "{what}: could not read the hosts file '{}'{}",
                        path.to_string_lossy_bounded(),
                        Cause(errno)
                    ))
                })?;
            }
        }
        if let Some(timeout) = config.timeout {
            let mut text = Line::default();
            let _ = write!(text, "{}\0", timeout as f64 / 1e6);
            let value = text.c_str();
            if !evdns.set_option(c"timeout:", value)
                || !evdns.set_option(c"getaddrinfo-allow-skew:", value)
            {
                return Err(Failure::out_of_memory());
            }
        }
        if let Some(attempts) = config.attempts {
            let mut text = Line::default();
            let _ = write!(text, "{attempts}\0");
            if !evdns.set_option(c"attempts:", text.c_str()) {
                return Err(Failure::out_of_memory());
            }
        }
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// "ip", "ip:port", "[ipv6]:port" or a bare IPv6 address; the port defaults to 53.
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address);
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

// -------------------------------------------------------------------- lookups ----

/// Makes a lookup of `name` on `core` for `client`, not started yet.
fn new_lookup(
    core: &Shared<Core>,
    name: &CStr,
    family: Family,
    client: Client,
) -> Result<Shared<Lookup>, Failure> {
    let bytes = name.to_bytes();
    let len = bytes.len().min(255);
    let mut copy = [0u8; 255];
    copy[..len].copy_from_slice(&bytes[..len]);
    Shared::try_new(Lookup {
        core: core.clone(),
        next: Cell::new(None),
        request: Cell::new(None),
        outcome: Cell::new(None),
        client: Cell::new(client),
        family,
        started: Instant::now(),
        name: copy,
        name_len: len as u8,
    })
    .map_err(|_| Failure::out_of_memory())
}

/// Starts a lookup made by [`new_lookup`]. Its result always arrives through the service
/// event: a closed resolver ends it as cancelled, an answer libevent gives at once waits too.
fn start(lookup: &Shared<Lookup>, name: &CStr) {
    let core = &lookup.core;
    core.append(lookup.clone());
    if core.closed.get() || core.shutting_down.get() {
        lookup.outcome.set(Some(Err(LookupError::Cancelled)));
        core.schedule();
        return;
    }
    let given = Shared::into_raw(lookup.clone());
    core.outstanding.set(core.outstanding.get() + 1);
    // SAFETY: `given` owns a count of the lookup until on_lookup takes it back, so it stays
    // valid for the callback; the evdns base is freed only once no lookup is outstanding.
    let request = core.with_evdns(|evdns| unsafe {
        evdns.getaddrinfo(name, lookup.family.af(), on_lookup, given as *const c_void)
    });
    match request {
        Some(request) => lookup.request.set(request),
        None => {
            // Not reachable (an open core has its evdns base); give the count back all the same.
            core.outstanding.set(core.outstanding.get() - 1);
            // SAFETY: from into_raw above; libevent never saw it.
            drop(unsafe { Shared::from_raw(given) });
            lookup.outcome.set(Some(Err(LookupError::Cancelled)));
            core.schedule();
        }
    }
}

c_callback! {
    /// libevent's callback for every lookup; `arg` owns a count of the lookup.
    fn on_lookup(result: c_int, list: *mut ffi::addrinfo, arg: *mut c_void) {
        // SAFETY: libevent hands the list over to its callback, to be freed by it.
        let list = unsafe { AddressList::adopt(list) };
        // SAFETY: `arg` came from Shared::into_raw in `start`, and libevent calls back once.
        let lookup = unsafe { Shared::from_raw(arg as *const Lookup) };
        finished(&lookup, result, list)
    }
}

/// Records what libevent found (unless the lookup was cancelled meanwhile) for the service
/// event to deliver. No Lua code runs here, and libevent is not called: this is inside evdns.
fn finished(lookup: &Lookup, result: c_int, list: Option<AddressList>) {
    let core = &lookup.core;
    core.outstanding.set(core.outstanding.get() - 1);
    core.reap_ready.set(false);
    lookup.request.set(None);
    let outcome = lookup.outcome.take();
    if outcome.is_some() {
        lookup.outcome.set(outcome);
    } else {
        lookup.outcome.set(Some(match (result, list) {
            (0, Some(list)) => Ok(Addresses(list)),
            (0, None) => Err(LookupError::NoAddress),
            (error, _) => Err(classify(error, lookup, core)),
        }));
    }
    core.schedule();
}

/// What a getaddrinfo error code means here.
fn classify(error: c_int, lookup: &Lookup, core: &Core) -> LookupError {
    match error {
        ffi::EVUTIL_EAI_NONAME => LookupError::NoSuchName,
        ffi::EVUTIL_EAI_NODATA => LookupError::NoAddress,
        ffi::EVUTIL_EAI_CANCEL => LookupError::Cancelled,
        ffi::EVUTIL_EAI_MEMORY => LookupError::OutOfMemory,
        ffi::EVUTIL_EAI_AGAIN => LookupError::TimedOut,
        // libevent reports a timeout as any other failure; a timeout takes at least one try
        // (libevent counts it from its cached loop time: a little before `started`).
        _ if lookup.started.elapsed().as_micros() as i64 >= core.try_timeout * 3 / 4 => {
            LookupError::TimedOut
        }
        _ => LookupError::ServerFailure,
    }
}

c_callback! {
    /// libevent's entry for the service event of a core.
    fn on_service(_fd: c_int, _what: c_short, arg: *mut c_void) {
        serve(arg as *const Core)
    }
}

/// Delivers every lookup whose outcome is known, then frees the evdns base of a closed,
/// idle resolver one round after it became idle.
fn serve(core: *const Core) {
    // SAFETY: the event is deleted before its core can go, so the core is alive; it stays so
    // through the deliveries (only this function's reaping and the base's shut_down unlist a
    // core, and the base cannot go while its loop runs).
    let core = unsafe { &*core };
    let base = core.base();
    core.service.delete(&base.event_base);
    while let Some(lookup) = core.take_finished() {
        if deliver(base, &lookup) == Delivered::Raised {
            // The loop stops after this callback: the rest wait for the next loop.
            core.schedule();
            return;
        }
    }
    if !core.closed.get() || core.outstanding.get() > 0 || clone_from_cell(&core.lookups).is_some()
    {
        return;
    }
    if !core.reap_ready.replace(true) {
        // libevent may still run a deferred callback that touches the evdns base (a lookup
        // whose other half timed out): it runs before the next round's timers.
        core.schedule();
        return;
    }
    if let Some(evdns) = core.evdns.take() {
        // SAFETY: libevent gave back every lookup, at least one loop round ago; the event base
        // is alive (its loop is running).
        unsafe { evdns.free() };
    }
    // May drop the core's last count: nothing below touches it (libevent does not touch an
    // event after its callback returns).
    if let Some(dns) = existing_base_dns(base) {
        dns.unlink(core);
    }
}

#[derive(PartialEq, Eq)]
enum Delivered {
    Done,
    /// A Lua callback raised an error: the loop is stopping.
    Raised,
}

/// Hands a lookup's outcome to whoever waits for it.
fn deliver(base: &BaseShared, lookup: &Lookup) -> Delivered {
    let Some(outcome) = lookup.outcome.take() else {
        return Delivered::Done;
    };
    match lookup.client.replace(Client::Gone) {
        Client::Gone => Delivered::Done,
        Client::Rust { on_done, arg } => {
            on_done(arg, outcome);
            Delivered::Done
        }
        Client::Lua => {
            match base.call_back(
                Address::of(lookup),
                |arguments| push_delivery(arguments, base, lookup, &outcome),
                0,
                |_| (),
            ) {
                Called::Raised | Called::Finalized => Delivered::Raised,
                Called::NotLooping | Called::Skipped | Called::Returned(()) => Delivered::Done,
            }
        }
    }
}

/// Pushes the Lua callback of `lookup` and its arguments: `(addresses)` or `(nil, message)`.
fn push_delivery(
    arguments: &mut Arguments,
    base: &BaseShared,
    lookup: &Lookup,
    outcome: &LookupResult,
) -> Option<c_int> {
    let top = arguments.top();
    if arguments.push_weak_entry(&ANCHORS, Address::of(base)) != Kind::Table {
        return None; // the base was collected: nobody can be told
    }
    let anchors = arguments.top();
    arguments.push_copy(anchors);
    if arguments.replace_with_field(Address::of(lookup)) == Kind::Nil {
        arguments.set_top(top);
        return None;
    }
    // Let go of the callback now: it is on the stack for the call. Should that fail, it stays
    // anchored until the base goes, which is harmless.
    if arguments.clear_field(anchors, Address::of(lookup)).is_err() {
        arguments.set_top(anchors + 1);
    }
    arguments.remove(anchors);
    let function = arguments.top();
    match push_results(arguments, lookup, outcome) {
        Ok(count) => Some(count),
        Err(Raised) => {
            // Out of memory: the callback still runs once, with Lua's own message.
            arguments.insert(function + 1);
            arguments.set_top(function + 1);
            arguments.push_nil();
            arguments.insert(function + 1);
            Some(2)
        }
    }
}

fn push_results(
    arguments: &mut Arguments,
    lookup: &Lookup,
    outcome: &LookupResult,
) -> Result<c_int, Raised> {
    match outcome {
        Ok(addresses) => {
            let list = arguments.new_table(4)?;
            let mut n = 0;
            for address in addresses.iter() {
                let mut text = Line::default();
                let _ = write!(text, "{}", address.ip());
                arguments.push_bytes(text.as_bytes())?;
                n += 1;
                arguments.append(list, n)?;
            }
            Ok(1)
        }
        Err(error) => {
            arguments.push_nil();
            let mut text = Line::default();
            let _ = match (error, lookup.family) {
                (LookupError::Cancelled, _) => write!(text, "cancelled"),
                (LookupError::NoAddress, Family::Inet) => {
                    write!(text, "{}: no IPv4 address", lookup.name())
                }
                (LookupError::NoAddress, Family::Inet6) => {
                    write!(text, "{}: no IPv6 address", lookup.name())
                }
                (error, _) => write!(text, "{}: {}", lookup.name(), error.reason()),
            };
            arguments.push_bytes(text.as_bytes())?;
            Ok(2)
        }
    }
}

/// A short text built without allocating (messages, option values, addresses).
struct Line {
    bytes: [u8; 320],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            bytes: [0; 320],
            len: 0,
        }
    }
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The text, which ends with the NUL its writer put there.
    fn c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(self.as_bytes()).unwrap_or(c"")
    }
}

impl Write for Line {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let mut take = piece.len().min(room);
        while !piece.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&piece.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

trait LossyBounded {
    fn to_string_lossy_bounded(&self) -> &str;
}

impl LossyBounded for CStr {
    /// The UTF-8 prefix of a path, for a message.
    fn to_string_lossy_bounded(&self) -> &str {
        match self.to_str() {
            Ok(text) => text,
            Err(error) => {
                std::str::from_utf8(&self.to_bytes()[..error.valid_up_to()]).unwrap_or("")
            }
        }
    }
}

// --------------------------------------------------------------- the Rust API ----

/// A resolver held for lookups from Rust (see the top of this file).
#[allow(dead_code)] // for bufferevent.connect, written alongside
pub struct ResolverHandle {
    base: Shared<BaseShared>,
    core: Shared<Core>,
}

#[allow(dead_code)] // for bufferevent.connect, written alongside
impl ResolverHandle {
    /// The base the resolver works on.
    pub fn base(&self) -> &Shared<BaseShared> {
        &self.base
    }
}

/// A lookup started by [`lookup`]: `cancel` it, or drop it to abandon it.
#[allow(dead_code)] // for bufferevent.connect, written alongside
pub struct PendingLookup(Option<Shared<Lookup>>);

#[allow(dead_code)] // for bufferevent.connect, written alongside
impl PendingLookup {
    /// `on_done` runs with [`LookupError::Cancelled`] from the loop (unless it ran already).
    pub fn cancel(mut self) {
        if let Some(lookup) = self.0.take() {
            cancel(&lookup, false);
        }
    }
}

impl Drop for PendingLookup {
    /// Abandons the lookup: `on_done` does not run from now on.
    fn drop(&mut self) {
        if let Some(lookup) = self.0.take() {
            cancel(&lookup, true);
        }
    }
}

/// Starts a lookup of `name`; `on_done(arg, result)` runs once, from the loop.
#[allow(dead_code)] // for bufferevent.connect, written alongside
pub fn lookup(
    resolver: &ResolverHandle,
    name: &CStr,
    family: Family,
    on_done: fn(*const c_void, LookupResult),
    arg: *const c_void,
) -> Result<PendingLookup, Failure> {
    let lookup = new_lookup(&resolver.core, name, family, Client::Rust { on_done, arg })?;
    start(&lookup, name);
    Ok(PendingLookup(Some(lookup)))
}

/// Where each base's anchor table (in its slot) is found from the base's address.
pub static ANCHORS: WeakTable = WeakTable::weak_values();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_servers_take_every_documented_form() {
        assert_eq!(
            parse_nameserver("127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_nameserver("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_nameserver("localhost"), None);
        assert_eq!(parse_nameserver("1.2.3.4:99999"), None);
    }

    #[test]
    fn lines_are_cut_rather_than_grown() {
        let mut line = Line::default();
        for _ in 0..100 {
            let _ = write!(line, "abcdef");
        }
        assert_eq!(line.as_bytes().len(), 320);
    }
}
