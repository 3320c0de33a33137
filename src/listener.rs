//! `core.listener`: a listening TCP socket (libevent's evconnlistener) that hands each
//! accepted connection to Lua as a new bufferevent owning its socket.
//!
//! Running out of descriptors must not spin the CPU (libevent/libevent#71): a listening socket
//! with a connection waiting stays readable, and accept() keeps failing with EMFILE or ENFILE
//! until a descriptor is free. So when accept() fails with anything worth more than a retry
//! at once, the listener pauses: it stops watching the socket and tries again after a delay
//! (doubling from 0.1 s up to 1 s while the failures go on); established connections are
//! served meanwhile, since they are separate events. The timer is made with the listener, so
//! pausing never needs memory.
//!
//! The object's slots hold `on_accept` and the TLS context (`options.tls`),
//! with which `accepted` makes each accepted bufferevent a TLS server one (tls_layer.rs).

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void};
use std::net::{IpAddr, SocketAddr};

use crate::base::{base_argument, BaseShared, SocketBeyondFdSet};
use crate::bufferevent;
use crate::c_callback::{self, c_callback};
use crate::ffi;
use crate::libevent::TlsSide;
use crate::libevent::{Listener, Socket, Timer};
use crate::lua::{
    lua_function, lua_type, Address, Failure, Kind, Outcome, Returns, Stack, TypeSpec, WeakTable,
};
use crate::net;
use crate::openssl::Role;
use crate::os::{self, Errno};
use crate::shared::{clone_from_cell, Shared};
use crate::time::Micros;
use crate::tls::{self, TlsContext};
use crate::tls_layer;

/// The first pause after a failed accept, and the longest.
const FIRST_PAUSE: Micros = 100_000;
const LONGEST_PAUSE: Micros = 1_000_000;

/// The Lua object; its address is libevent's callback argument.
pub struct ListenerUserdata {
    /// `None` once closed.
    listener: Cell<Option<Listener>>,
    /// Resumes accepting after a pause; `None` once closed.
    retry: Cell<Option<Timer>>,
    /// Keeps libevent's base alive as long as the listener; `None` once collected.
    base: Cell<Option<Shared<BaseShared>>>,
    /// The next pause's length.
    pause: Cell<Micros>,
    /// Paused after a failed accept (see the module's notes).
    paused: Cell<bool>,
    /// What Lua asked for with enable/disable.
    wanted: Cell<bool>,
    /// The peer address whose text SLOT_LAST_HOST holds, once it holds one (`None` there: the
    /// empty string of a connection without an address).
    last_peer: Cell<Option<IpAddr>>,
}

lua_type!(
    ListenerUserdata,
    c"luaevent.core.listener",
    "listener",
    slots 3
);

/// Where each object is found from its address: weak, so that it does not keep it alive.
pub static LISTENERS: WeakTable = WeakTable::weak_values();

/// The object's slots (see `LuaType::SLOTS`): `on_accept`, the TLS context (`options.tls`),
/// and the host string of the latest connection (for the next one from the same address).
const SLOT_ACCEPT: c_int = 1;
const SLOT_TLS: c_int = 2;
const SLOT_LAST_HOST: c_int = 3;

impl ListenerUserdata {
    /// Runs `call` on the listener, if it is open (libevent calls only: no Lua code runs).
    fn with<R>(&self, call: impl FnOnce(&Listener) -> R) -> Option<R> {
        let listener = self.listener.take()?;
        let result = call(&listener);
        self.listener.set(Some(listener));
        Some(result)
    }

    fn with_retry(&self, call: impl FnOnce(&Timer)) {
        if let Some(timer) = self.retry.take() {
            call(&timer);
            self.retry.set(Some(timer));
        }
    }

    fn is_open(&self) -> bool {
        self.with(|_| ()).is_some()
    }
}

/// The open listener behind the argument at `index`.
fn open_listener(stack: &Stack, index: c_int) -> Result<&ListenerUserdata, Failure> {
    let object = stack.userdata::<ListenerUserdata>(index)?;
    if !object.is_open() {
        return Err(Failure::argument(
            index,
            format_args!("attempt to use a closed listener"),
        ));
    }
    Ok(object)
}

/// Option checks name the options argument: `bad argument #2 to 'new' (options.port ...)`.
const OPTIONS: c_int = 2;

/// An integer option within `range`, or `default` when absent.
fn integer_option(
    stack: &Stack,
    index: c_int,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, Failure> {
    if stack.is_none_or_nil(index) {
        return Ok(default);
    }
    let Some(value) = stack
        .to_integer(index)
        .filter(|_| stack.kind(index) == Kind::Number)
    else {
        return Err(Failure::argument(
            OPTIONS,
            format_args!(
                "options.{name}: integer expected, got {}",
                stack.type_name(index)
            ),
        ));
    };
    if !range.contains(&value) {
        let (low, high) = (range.start(), range.end());
        return Err(Failure::argument(
            OPTIONS,
            format_args!("options.{name} must be {low}-{high}, got {value}"),
        ));
    }
    Ok(value)
}

/// `core.listener.new(base, options, on_accept)`
pub fn new(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    stack.callable(3, "function")?;
    let [host, port, backlog, reuseaddr, tls] =
        stack.options(OPTIONS, &["host", "port", "backlog", "reuseaddr", "tls"])?;
    let ip = if stack.is_none_or_nil(host) {
        std::net::IpAddr::from([0, 0, 0, 0])
    } else {
        let Some(text) = stack.string_bytes(host) else {
            return Err(Failure::argument(
                OPTIONS,
                format_args!(
                    "options.host: string expected, got {}",
                    stack.type_name(host)
                ),
            ));
        };
        net::parse_ip(text).ok_or_else(|| {
            let text = std::str::from_utf8(text).unwrap_or("?");
            Failure::argument(
                OPTIONS,
                format_args!("options.host must be an IPv4 or IPv6 address, got '{text}'"),
            )
        })?
    };
    let port = integer_option(stack, port, "port", 0..=65535, 0)? as u16;
    let backlog =
        integer_option(stack, backlog, "backlog", 1..=i64::from(c_int::MAX), 128)? as c_int;
    let reuse_address = if stack.is_none_or_nil(reuseaddr) {
        true
    } else {
        stack.strict_boolean(reuseaddr).map_err(|_| {
            Failure::argument(
                OPTIONS,
                format_args!(
                    "options.reuseaddr: boolean expected, got {}",
                    stack.type_name(reuseaddr)
                ),
            )
        })?
    };
    let tls = if stack.is_none_or_nil(tls) {
        None
    } else {
        tls::context_option(stack, tls, OPTIONS, Role::Server)?;
        Some(tls)
    };
    // The context rides along in the object's slot, for each accepted connection.
    match tls {
        Some(index) => stack.push_value(index),
        None => stack.push_integer(0),
    }
    let context = stack.top();

    let object = stack.new_userdata(ListenerUserdata {
        listener: Cell::new(None),
        retry: Cell::new(None),
        base: Cell::new(Some(base.clone())),
        pause: Cell::new(FIRST_PAUSE),
        paused: Cell::new(false),
        wanted: Cell::new(true),
        last_peer: Cell::new(None),
    })?;
    stack.set_slot::<ListenerUserdata>(object, SLOT_ACCEPT, 3);
    if tls.is_some() {
        stack.set_slot::<ListenerUserdata>(object, SLOT_TLS, context);
    }
    let address = Address::of(stack.userdata::<ListenerUserdata>(object)?);
    stack.set_weak_entry(&LISTENERS, address, object)?;

    let userdata = stack.userdata::<ListenerUserdata>(object)?;
    let owner = userdata as *const ListenerUserdata as *const c_void;
    // SAFETY: the timer and the listener live in the object, which drops both in `shut`
    // (close, __gc) before its memory can go, and before the base (it holds the base).
    let retry = unsafe { Timer::new(&base.event_base, on_retry, owner) }
        .ok_or_else(Failure::out_of_memory)?;
    userdata.retry.set(Some(retry));
    let fd = net::listen(SocketAddr::new(ip, port), backlog, reuse_address).map_err(|errno| {
        Failure::message(format_args!(
            "core.listener.new: could not listen on {ip} port {port}: {errno}"
        ))
    })?;
    // SAFETY: as for the timer.
    let listener =
        unsafe { Listener::new(&base.event_base, fd, on_accept, on_accept_error, owner) }.map_err(
            |errno| {
                Failure::message(format_args!(
                    "core.listener.new: could not listen on {ip} port {port}: {}",
                    errno.unwrap_or(Errno(libc::ENOMEM))
                ))
            },
        )?;
    userdata.listener.set(Some(listener));
    Ok(Returns::Values(1))
}

c_callback! {
    fn on_accept(_listener: *mut ffi::evconnlistener, fd: c_int, peer: *mut libc::sockaddr, len: c_int, arg: *mut c_void) {
        // SAFETY: libevent passes the peer's address of `len` bytes.
        let peer = unsafe { net::from_sockaddr(peer, len.max(0) as usize) };
        let taken = Cell::new(false);
        // Guarded on its own too, so that the socket is closed even if `accepted` panicked.
        c_callback::guard((), || accepted(arg as *const ListenerUserdata, fd, peer, &taken));
        if !taken.get() {
            os::close(fd);
        }
    }
}

/// Hands the accepted socket `fd` to Lua as `on_accept(bev, host, port)`; sets `taken` once a
/// bufferevent owns it.
fn accepted(
    owner: *const ListenerUserdata,
    fd: c_int,
    peer: Option<SocketAddr>,
    taken: &Cell<bool>,
) {
    let base = {
        // SAFETY: libevent calls back only while the listener exists, and the object frees
        // it before its memory can go. The borrow ends before Lua code runs.
        let object = unsafe { &*owner };
        object.pause.set(FIRST_PAUSE);
        let Some(base) = clone_from_cell(&object.base) else {
            return;
        };
        base
    };
    // A socket select cannot watch (glibc aborts the process on it) is closed at once; Lua
    // still gets the connection, without a socket, and its event callback hears why.
    let refused = (base.fd_set_only() && !os::fits_fd_set(fd)).then(|| {
        os::close(fd);
        taken.set(true);
        SocketBeyondFdSet(fd)
    });
    let fd = if refused.is_some() { -1 } else { fd };
    let address = Address::at(owner);
    base.call_back_with(
        address,
        |stack| {
            if stack.push_weak_entry(&LISTENERS, address) != Kind::Userdata {
                return Ok(None);
            }
            if stack.push_slot(-1, SLOT_ACCEPT) == Kind::Nil {
                return Ok(None);
            }
            // From here the bufferevent owns the socket, or `make` has closed it.
            taken.set(true);
            let made = bufferevent::make(stack, &base, fd, Socket::Owned, "listener (accepting)")?;
            let object = made.index;
            if refused.is_some() {
                let userdata = stack.held(&made)?;
                userdata.refused.set(refused);
                // Reported from the next loop round, once on_accept has set the callbacks.
                if let Some(bev) = userdata.socket_bufferevent() {
                    bev.trigger_event_later(ffi::EVBUFFER_ERROR);
                }
            } else if stack.push_slot(object - 2, SLOT_TLS) == Kind::Userdata {
                // A TLS listener: the handshake starts at once. A connection that cannot have
                // one is closed and not handed to Lua.
                let started = match stack
                    .test_userdata::<TlsContext>(-1)
                    .and_then(TlsContext::view)
                {
                    Some(context) => {
                        tls::server_ssl("listener (accepting)", context).and_then(|ssl| {
                            let userdata = stack.held(&made)?;
                            tls_layer::start(
                                userdata,
                                ssl,
                                TlsSide::Server,
                                tls_layer::Shape::Socket,
                                "listener (accepting)",
                            )
                        })
                    }
                    None => Err(Failure::message(format_args!(
                        "listener (accepting): the TLS context was finalized"
                    ))),
                };
                if started.is_err() {
                    bufferevent::close_at(stack, object);
                    return Ok(None);
                }
                stack.pop(1);
            } else {
                stack.pop(1);
            }
            // Connections often come from one address (local clients, a proxy): its string,
            // kept from the previous connection, spares formatting and making a new one.
            let listener = object - 2;
            // SAFETY: the listener object is at `listener` on the stack (pushed above), so its
            // memory is valid for this borrow; no Lua code runs while it lasts.
            let last_peer = unsafe { &(*owner).last_peer };
            let ip = peer.map(|peer| peer.ip());
            if stack.push_slot(listener, SLOT_LAST_HOST) != Kind::String || last_peer.get() != ip {
                stack.pop(1);
                let mut text = [0u8; 64];
                stack.push_string(ip.map_or(&b""[..], |ip| net::format_ip(&ip, &mut text)))?;
                stack.set_slot::<ListenerUserdata>(listener, SLOT_LAST_HOST, -1);
                last_peer.set(ip);
            }
            stack.push_integer(peer.map_or(0, |peer| peer.port()) as i64);
            Ok(Some(3))
        },
        0,
        |_| (),
    );
}

c_callback! {
    fn on_accept_error(_listener: *mut ffi::evconnlistener, arg: *mut c_void) {
        pause(arg as *const ListenerUserdata)
    }
}

/// accept() failed (out of descriptors, memory or buffers): stop accepting for a while.
fn pause(owner: *const ListenerUserdata) {
    // SAFETY: as in `accepted`; no Lua code runs here.
    let object = unsafe { &*owner };
    object.with(|listener| listener.disable());
    object.paused.set(true);
    let pause = object.pause.get();
    object.pause.set((pause * 2).min(LONGEST_PAUSE));
    object.with_retry(|timer| {
        timer.start(pause);
    });
}

c_callback! {
    fn on_retry(_fd: c_int, _what: c_short, arg: *mut c_void) {
        resume(arg as *const ListenerUserdata)
    }
}

fn resume(owner: *const ListenerUserdata) {
    // SAFETY: the timer belongs to the object, which drops it before its memory can go.
    let object = unsafe { &*owner };
    object.paused.set(false);
    if object.wanted.get() {
        object.with(|listener| listener.enable());
    }
}

/// `listener:address()` → host, port
fn address(stack: &mut Stack) -> Outcome {
    let fd = open_listener(stack, 1)?
        .with(|listener| listener.fd())
        .unwrap_or(-1);
    let bound = net::local_address(fd).map_err(|errno| {
        Failure::message(format_args!(
            "listener:address: could not read the address: {errno}"
        ))
    })?;
    let mut text = [0u8; 64];
    stack.push_string(net::format_ip(&bound.ip(), &mut text))?;
    stack.push_integer(bound.port() as i64);
    Ok(Returns::Values(2))
}

/// `listener:getfd()`
fn getfd(stack: &mut Stack) -> Outcome {
    let fd = open_listener(stack, 1)?
        .with(|listener| listener.fd())
        .unwrap_or(-1);
    stack.push_integer(fd as i64);
    Ok(Returns::Values(1))
}

/// `listener:enable()`: accept again (after a pause for descriptors, once it is over).
fn enable(stack: &mut Stack) -> Outcome {
    let object = open_listener(stack, 1)?;
    object.wanted.set(true);
    let result = if object.paused.get() {
        0
    } else {
        object.with(|listener| listener.enable()).unwrap_or(-1)
    };
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// `listener:disable()`: stop accepting; connections wait in the backlog.
fn disable(stack: &mut Stack) -> Outcome {
    let object = open_listener(stack, 1)?;
    object.wanted.set(false);
    let result = object.with(|listener| listener.disable()).unwrap_or(-1);
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// Closes the listening socket and drops the retry timer. Idempotent; safe inside on_accept
/// (libevent frees its listener once that callback has returned).
fn shut(stack: &Stack, index: c_int) {
    if let Some(object) = stack.test_userdata::<ListenerUserdata>(index) {
        drop(object.listener.take());
        drop(object.retry.take());
    }
}

/// `listener:close()`
fn close(stack: &mut Stack) -> Outcome {
    stack.userdata::<ListenerUserdata>(1)?;
    shut(stack, 1);
    Ok(Returns::Values(0))
}

/// `__gc`: as close, and lets go of the base.
fn collect(stack: &mut Stack) -> Outcome {
    shut(stack, 1);
    if let Some(object) = stack.test_userdata::<ListenerUserdata>(1) {
        if let Some(base) = object.base.take() {
            base.finalizing(Address::of(object));
        }
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<ListenerUserdata>(
    &[&[
        (c"address", lua_function!(address)),
        (c"getfd", lua_function!(getfd)),
        (c"enable", lua_function!(enable)),
        (c"disable", lua_function!(disable)),
        (c"close", lua_function!(close)),
    ]],
    &[(c"__gc", lua_function!(collect))],
);
