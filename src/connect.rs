//! `core.bufferevent.connect(base, host, port, readcb, writecb, eventcb [, options])`: a
//! bufferevent returned at once, whose connection is set up in the loop.
//!
//! A host name first goes through the resolver (`options.dns`, or the base's default one):
//! its addresses become the list, IPv6 and IPv4 interleaved (see [`interleave`]). A lookup
//! still running when the bufferevent is closed, collected or timed out is abandoned with the
//! connection state (libevent/libevent#333: nothing calls back into a freed bufferevent).
//!
//! The core is a list of addresses tried in turn: each attempt is a non-blocking connect() on
//! a socket the module makes (and the bufferevent owns); a refused or unreachable address
//! falls back to the next one; the event callback hears `EVBUFFER_CONNECTED` once one is up,
//! or `EVBUFFER_ERROR` with the last failure once none is left. A single timer serves the
//! deadline (`options.timeout`: `EVBUFFER_TIMEOUT`) and a failure met before the loop runs
//! (reported from the loop, never from inside `connect`). Closing or collecting the
//! bufferevent drops the whole state, timer included, so nothing fires afterwards.

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void};
use std::net::{IpAddr, SocketAddr};

use crate::base::{base_argument, SocketBeyondFdSet};
use crate::bufferevent::{self, BuffereventUserdata, Next, SLOT_HOST};
use crate::c_callback::{self, c_callback};
use crate::dns::{self, Family, LookupResult, ResolverUserdata};
use crate::ffi::{EVBUFFER_CONNECTED, EVBUFFER_ERROR, EVBUFFER_TIMEOUT, EV_READ};
use crate::libevent::TlsSide;
use crate::libevent::{BuffereventRef, Socket, Timer};
use crate::lua::{Failure, Outcome, Returns, Stack};
use crate::net;
use crate::openssl::Role;
use crate::os::{self, Errno};
use crate::read_path::Reader;
use crate::shared::{clone_from_cell, Shared};
use crate::tls;
use crate::tls_layer;

mod state;

pub use state::Connecting;
use state::{AttemptFailure, MAX_ADDRESSES, MAX_NAME};

impl Connecting {
    fn take_next(&self) -> Option<SocketAddr> {
        let next = self.next.get();
        let address = *self.addresses.get().get(next)?;
        self.next.set(next + 1);
        address
    }

    fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// "could not connect to 127.0.0.1 port 1: Connection refused", "could not connect to
    /// localhost port 1 (127.0.0.1): Connection refused", "could not resolve nosuch.test: no
    /// such name"
    fn failure_message(&self) -> Failure {
        let name = self.name();
        match (self.unresolved.get(), self.failure.get()) {
            (Some(error), _) => {
                Failure::message(format_args!("could not resolve {name}: {}", error.reason()))
            }
            (None, Some((address, errno))) if name.is_empty() => Failure::message(format_args!(
                "could not connect to {} port {}: {errno}",
                address.ip(),
                address.port()
            )),
            (None, Some((address, errno))) => Failure::message(format_args!(
                "could not connect to {name} port {} ({}): {errno}",
                address.port(),
                address.ip()
            )),
            (None, None) => Failure::message(format_args!(
                "could not connect to {name} port {}: no address to try",
                self.port
            )),
        }
    }

    /// Starts the next attempt that gets under way; false when every address is used up.
    fn try_next(&self, bev: BuffereventRef<'_>) -> bool {
        while let Some(address) = self.take_next() {
            let started = net::start_connect(address)
                .map_err(AttemptFailure::Errno)
                .and_then(|fd| {
                    if self.fd_set_only && !os::fits_fd_set(fd) {
                        // select would abort the process on it (glibc's fd_set bounds check).
                        os::close(fd);
                        return Err(AttemptFailure::BeyondFdSet(SocketBeyondFdSet(fd)));
                    }
                    bev.connect_socket(fd).map_err(|errno| {
                        os::close(fd);
                        AttemptFailure::Errno(errno.unwrap_or(Errno(libc::ENOMEM)))
                    })
                });
            match started {
                Ok(()) => {
                    self.current.set(Some(address));
                    return true;
                }
                Err(errno) => self.failure.set(Some((address, errno))),
            }
        }
        self.current.set(None);
        false
    }
}

/// The addresses a name has, in the order they are tried: the families interleaved, starting
/// with the family of the first address (the resolver's preferred one), each family keeping the
/// resolver's order, duplicates dropped, at most [`MAX_ADDRESSES`]. Interleaving is what RFC
/// 8305 (Happy Eyeballs v2, section 4) asks for: when one family is broken (no IPv6 route, say),
/// the second attempt already uses the other one instead of going through every address of the
/// broken family first. Attempts are made one after the other, not raced.
pub fn interleave(ips: &[IpAddr], port: u16) -> [Option<SocketAddr>; MAX_ADDRESSES] {
    let mut order = [None; MAX_ADDRESSES];
    let Some(first) = ips.first() else {
        return order;
    };
    let first_is_v6 = first.is_ipv6();
    let next_of = |v6: bool, from: &mut usize| -> Option<IpAddr> {
        while *from < ips.len() {
            let ip = ips[*from];
            *from += 1;
            if ip.is_ipv6() == v6 {
                return Some(ip);
            }
        }
        None
    };
    let (mut preferred, mut other) = (0, 0);
    let mut count = 0;
    let mut turn_preferred = true;
    while count < MAX_ADDRESSES {
        let ip = if turn_preferred {
            next_of(first_is_v6, &mut preferred).or_else(|| next_of(!first_is_v6, &mut other))
        } else {
            next_of(!first_is_v6, &mut other).or_else(|| next_of(first_is_v6, &mut preferred))
        };
        let Some(ip) = ip else { break };
        turn_preferred = !turn_preferred;
        let address = SocketAddr::new(ip, port);
        if order[..count].contains(&Some(address)) {
            continue;
        }
        order[count] = Some(address);
        count += 1;
    }
    order
}

/// The bufferevent's filter for events (see `BuffereventUserdata::above`): the connection's
/// while it is set up, then the TLS layer's, if one is put on.
fn events(
    object: &BuffereventUserdata,
    bev: BuffereventRef<'_>,
    what: c_short,
    errno: Errno,
) -> Next {
    match event(object, bev, what, errno) {
        Next::Pass if object.tls.get() => tls_layer::event(object, bev, what),
        next => next,
    }
}

/// The bufferevent's event `what` (errno: the socket's error) while `object` connects.
fn event(
    object: &BuffereventUserdata,
    bev: BuffereventRef<'_>,
    what: c_short,
    errno: Errno,
) -> Next {
    let Some(state) = clone_from_cell(&object.connecting) else {
        return Next::Pass;
    };
    if state.handshaking.get() {
        // The TLS layer's event: its outcome is the connection's (tls_layer.rs words it).
        object.connecting.set(None);
        if what & EVBUFFER_CONNECTED != 0 {
            object.handshaking.set(false);
            bev.enable(EV_READ);
            return Next::Report(EVBUFFER_CONNECTED, None);
        }
        return Next::Pass;
    }
    if what & EVBUFFER_CONNECTED != 0 {
        if let Some(ssl) = state.tls.take() {
            state.current.set(None);
            bev.enable(EV_READ);
            // What Lua wrote before the connection was up is for the TLS peer: it goes
            // through the layer, after the handshake.
            return match tls_layer::start(
                object,
                ssl,
                TlsSide::Client,
                tls_layer::Shape::Socket,
                "core.bufferevent.connect",
            ) {
                Ok(()) => {
                    state.handshaking.set(true);
                    Next::Handled
                }
                Err(failure) => {
                    object.connecting.set(None);
                    Next::Report(EVBUFFER_ERROR, Some(failure))
                }
            };
        }
        object.connecting.set(None);
        bev.enable(EV_READ);
        return Next::Report(EVBUFFER_CONNECTED, None);
    }
    if what & EVBUFFER_ERROR == 0 {
        return Next::Pass;
    }
    if let Some(address) = state.current.take() {
        let errno = Some(errno)
            .filter(|errno| errno.0 != 0)
            .or_else(|| os::socket_error(bev.fd()))
            .unwrap_or(Errno(libc::EIO));
        state
            .failure
            .set(Some((address, AttemptFailure::Errno(errno))));
        // The next socket is made before the failed one is closed, so that it gets another
        // number: libevent's pending changes for the old one cannot apply to the new one.
        let failed = bev.release_socket();
        let started = state.try_next(bev);
        if failed >= 0 {
            os::close(failed);
        }
        if started {
            return Next::Handled;
        }
    }
    object.connecting.set(None);
    Next::Report(EVBUFFER_ERROR, Some(state.failure_message()))
}

/// The resolver's answer for a connection by name (from the loop; never after the connection
/// state is gone, which abandons the lookup).
fn on_resolved(arg: *const c_void, result: LookupResult) {
    c_callback::guard((), || resolved(arg as *const BuffereventUserdata, result));
}

fn resolved(owner: *const BuffereventUserdata, result: LookupResult) {
    let message = {
        // SAFETY: the lookup lives in the object's connection state, dropped (and so
        // abandoned) before the object's memory can go; the borrow ends before Lua code runs.
        let object = unsafe { &*owner };
        let Some(bev) = object.bufferevent() else {
            return;
        };
        let Some(state) = clone_from_cell(&object.connecting) else {
            return;
        };
        drop(state.lookup.take());
        match result {
            Ok(addresses) => {
                let mut ips = [IpAddr::from([0, 0, 0, 0]); 2 * MAX_ADDRESSES];
                let mut count = 0;
                for (slot, address) in ips.iter_mut().zip(addresses.iter()) {
                    *slot = address.ip();
                    count += 1;
                }
                state.addresses.set(interleave(&ips[..count], state.port));
                if state.try_next(bev) {
                    return;
                }
            }
            Err(error) => state.unresolved.set(Some(error)),
        }
        object.connecting.set(None);
        state.failure_message()
    };
    bufferevent::report(owner, EVBUFFER_ERROR, Some(message.text()));
}

c_callback! {
    fn on_timer(_fd: c_int, _what: c_short, arg: *mut c_void) {
        timer_fired(arg as *const BuffereventUserdata)
    }
}

fn timer_fired(owner: *const BuffereventUserdata) {
    let (what, message) = {
        // SAFETY: the timer lives in the object's connection state, dropped before the
        // object's memory can go; the borrow ends before Lua code runs.
        let object = unsafe { &*owner };
        let Some(bev) = object.socket_bufferevent() else {
            return;
        };
        let Some(state) = object.connecting.take() else {
            return;
        };
        object.handshaking.set(false);
        let failed = bev.release_socket();
        if failed >= 0 {
            os::close(failed);
        }
        let report = if state.failed_early.get() {
            (EVBUFFER_ERROR, Some(state.failure_message()))
        } else {
            (EVBUFFER_TIMEOUT, None)
        };
        // Frees the timer inside its own callback, which libevent allows.
        drop(state);
        report
    };
    bufferevent::report(owner, what, message.as_ref().map(Failure::text));
}

/// Option checks name the options argument: `bad argument #7 to 'connect' (options.timeout ...)`.
const OPTIONS: c_int = 7;

/// `core.bufferevent.connect(base, host, port, readcb, writecb, eventcb [, options])`
pub fn connect(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    let Some(host) = stack.string_bytes(2) else {
        return Err(Failure::expected(stack, 2, "string"));
    };
    let ip = net::parse_ip(host);
    let port = stack.integer(3)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&port| port > 0)
        .ok_or_else(|| Failure::argument(3, format_args!("port must be 1-65535, got {port}")))?;
    for index in 4..=6 {
        if !stack.is_none_or_nil(index) {
            stack.callable(index, "function or nil")?;
        }
    }
    let [timeout, servername, tls, dns] =
        stack.options(OPTIONS, &["timeout", "servername", "tls", "dns"])?;
    let timeout = match stack.to_number(timeout) {
        _ if stack.is_none_or_nil(timeout) => None,
        Some(seconds) => Some(crate::time::seconds_to_micros(seconds).ok_or_else(|| {
            Failure::argument(
                OPTIONS,
                format_args!(
                    "options.timeout must be a finite number of seconds >= 0, got {seconds}"
                ),
            )
        })?),
        None => {
            return Err(Failure::argument(
                OPTIONS,
                format_args!(
                    "options.timeout: number expected, got {}",
                    stack.type_name(timeout)
                ),
            ))
        }
    };
    if !stack.is_none_or_nil(servername) && stack.string_bytes(servername).is_none() {
        return Err(Failure::argument(
            OPTIONS,
            format_args!(
                "options.servername: string expected, got {}",
                stack.type_name(servername)
            ),
        ));
    }
    let tls = if stack.is_none_or_nil(tls) {
        None
    } else {
        let context = tls::context_option(stack, tls, OPTIONS, Role::Client)?;
        // SNI and the certificate's name check: `options.servername`, else the host (an address
        // is checked against the certificate's address entries, and not sent).
        let name = stack.string_bytes(servername).or(stack.string_bytes(2));
        Some(tls::client_ssl("core.bufferevent.connect", context, name)?)
    };
    if !stack.is_none_or_nil(dns) && stack.test_userdata::<ResolverUserdata>(dns).is_none() {
        return Err(Failure::argument(
            OPTIONS,
            format_args!(
                "options.dns: resolver expected, got {}",
                stack.type_name(dns)
            ),
        ));
    }
    let mut name = [0u8; MAX_NAME];
    let mut name_len = 0;
    let resolver = match ip {
        Some(_) => None,
        None => {
            let host = stack.string_bytes(2).unwrap_or_default();
            if host.is_empty() || host.len() > MAX_NAME || host.contains(&0) {
                return Err(Failure::argument(
                    2,
                    format_args!("an address or a host name expected"),
                ));
            }
            name[..host.len()].copy_from_slice(host);
            name_len = host.len();
            Some(dns::resolver_for_connect(
                stack,
                1,
                Some(dns).filter(|&index| !stack.is_none_or_nil(index)),
                OPTIONS,
            )?)
        }
    };
    let addresses = ip.map_or([None; MAX_ADDRESSES], |ip| interleave(&[ip], port));
    stack.set_top(6);

    let made = bufferevent::make(stack, &base, -1, Socket::Owned, "core.bufferevent.connect")?;
    bufferevent::store_callbacks(stack, &made, [4, 5, 6])?;
    let object = made.index;
    // The host too: a later client STARTTLS checks the server's certificate against it.
    stack.set_slot::<BuffereventUserdata>(object, SLOT_HOST, 2);
    stack.set_top(object);
    let userdata = stack.held(&made)?;
    let owner = userdata as *const BuffereventUserdata as *const c_void;
    // SAFETY: the timer lives in the object's connection state, which `shut` (close, __gc)
    // drops before the object's memory can go, and before the base goes (the object holds it).
    let timer = unsafe { Timer::new(&base.event_base, on_timer, owner) }
        .ok_or_else(Failure::out_of_memory)?;
    let state = Shared::try_new(Connecting {
        addresses: Cell::new(addresses),
        name,
        name_len,
        port,
        lookup: Cell::new(None),
        unresolved: Cell::new(None),
        next: Cell::new(0),
        current: Cell::new(None),
        failure: Cell::new(None),
        fd_set_only: base.fd_set_only(),
        failed_early: Cell::new(false),
        timer,
        tls: Cell::new(tls),
        handshaking: Cell::new(false),
    })
    .map_err(|_| Failure::out_of_memory())?;
    if let Some(micros) = timeout {
        if state.timer.start(micros) != 0 {
            return Err(Failure::out_of_memory());
        }
    }
    userdata.connecting.set(Some(state.clone()));
    userdata.above.set(Some(events));
    if let Some(resolver) = resolver {
        let mut text = [0u8; MAX_NAME + 1];
        text[..name_len].copy_from_slice(&name[..name_len]);
        let host =
            std::ffi::CStr::from_bytes_until_nul(&text).map_err(|_| Failure::out_of_memory())?;
        let lookup = dns::lookup(&resolver, host, Family::Any, on_resolved, owner)?;
        state.lookup.set(Some(lookup));
        return Ok(Returns::Values(1));
    }
    let bev = userdata.bufferevent().ok_or_else(Failure::out_of_memory)?;
    if !state.try_next(bev) {
        state.failed_early.set(true);
        state.timer.start(0);
    }
    Ok(Returns::Values(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    fn tried(order: [Option<SocketAddr>; MAX_ADDRESSES]) -> Vec<String> {
        order
            .iter()
            .flatten()
            .map(|address| address.ip().to_string())
            .collect()
    }

    #[test]
    fn families_alternate_from_the_first_one() {
        let order = interleave(&ips(&["::1", "::2", "::3", "10.0.0.1", "10.0.0.2"]), 80);
        assert_eq!(tried(order), ["::1", "10.0.0.1", "::2", "10.0.0.2", "::3"]);
        let order = interleave(&ips(&["10.0.0.1", "10.0.0.2", "::1"]), 80);
        assert_eq!(tried(order), ["10.0.0.1", "::1", "10.0.0.2"]);
        assert_eq!(order[0].unwrap().port(), 80);
    }

    #[test]
    fn duplicates_go_and_the_list_is_capped() {
        assert_eq!(
            tried(interleave(&ips(&["::1", "::1", "127.0.0.1"]), 1)),
            ["::1", "127.0.0.1"]
        );
        let many: Vec<IpAddr> = (0..40).map(|n| IpAddr::from([10, 0, 0, n])).collect();
        assert_eq!(tried(interleave(&many, 1)).len(), MAX_ADDRESSES);
        assert!(tried(interleave(&[], 1)).is_empty());
    }
}
