//! TLS on a connected bufferevent, the Lua object re-pointed to the TLS bufferevent. Two shapes
//! ([`Shape`]), one set of callbacks and events:
//! - TLS from the connection's start (a listener with `options.tls`, server side, at once;
//!   `bufferevent.connect` with `options.tls`, client side, once the TCP connection is up, so
//!   that the address fallback works on a plain socket bufferevent, and `options.timeout` still
//!   runs): libevent_openssl's bufferevent on the socket itself (`bufferevent_openssl_socket_new`),
//!   OpenSSL reading and writing the socket, as a C program on libevent_openssl does. The socket
//!   bufferevent the object had is freed and its socket taken over.
//! - `bev:starttls`, in place: libevent's OpenSSL filter over the socket bufferevent, which
//!   already exists with bytes in its buffers that must not be lost. The price is one copy
//!   between the two bufferevents' buffers (plus the read-ahead and write watching beneath it,
//!   below), which cost a libevent_openssl echo server 55-100% more CPU than the socket shape.
//!
//! The handshake's outcome reaches Lua as the event callback: `EVBUFFER_CONNECTED`, or
//! `EVBUFFER_ERROR` with OpenSSL's reason ("certificate verify failed: self-signed
//! certificate"); a peer that closes during the handshake is an error too ("the connection
//! closed during the TLS handshake"), while afterwards a close without a close notice is the
//! end of file it is in practice (libevent/libevent#1288).

use crate::c_callback;
use std::ffi::{c_short, c_void};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bufferevent::{self, BuffereventUserdata, Next};
use crate::ffi::{
    self, EVBUFFER_CONNECTED, EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_READ, EVBUFFER_TIMEOUT,
    EVBUFFER_WRITE, EV_READ, EV_WRITE,
};
use crate::libevent::{self, BuffereventRef, TlsLayerFailure, TlsSide};
use crate::lua::{Failure, Kind, Outcome, Returns, Stack};
use crate::openssl::{self, Role, Ssl, SslError};
use crate::os::Errno;
use crate::read_path::{self, Reader};
use crate::shared::clone_from_cell;
use crate::tls;

/// How a TLS layer sits on the connection (see the module's notes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// TLS from the connection's start (a listener's or connect's `options.tls`): OpenSSL reads
    /// and writes the socket itself. What the output already holds is for the TLS peer, sent
    /// once the handshake is done.
    Socket,
    /// libevent's filter over the socket bufferevent (STARTTLS): bytes already in its buffers
    /// stay there, the output's going out in plain first.
    Filter,
}

/// Puts a TLS layer over `object`'s bufferevent (see the module's notes); `function` names the
/// caller in errors. The object keeps its callbacks, enabled directions and watermarks, and on
/// the socket shape its timeouts (a filter's socket keeps its own, beneath); the buffer objects
/// it lent now show the layer's (plain text) buffers.
pub fn start(
    object: &BuffereventUserdata,
    ssl: Ssl,
    side: TlsSide,
    shape: Shape,
    function: &str,
) -> Result<(), Failure> {
    let (Some(bev), Some(base)) = (object.bufferevent(), object.base()) else {
        return Err(Failure::message(format_args!(
            "{function}: the bufferevent is closed"
        )));
    };
    let mut enabled = bev.enabled();
    if object.read_path().is_parked() {
        enabled |= EV_READ;
    }
    let (low, high) = bev.read_watermarks();
    let (write_low, write_high) = bev.write_watermarks();
    // Set while connecting (connect's TLS starts once the socket is connected): the new
    // bufferevent on the same socket takes them over.
    let timeouts = (shape == Shape::Socket).then(|| bev.timeouts());
    object.read_path().forget(bev);
    let owner = object as *const BuffereventUserdata as *const c_void;
    // SAFETY: the callbacks' argument is the object, as for every bufferevent it owns: `shut`
    // (close, __gc) frees the layer before the object's memory goes, and the object holds the
    // base. The bufferevent beneath is the object's, and from now on only the layer frees it
    // (a filter), or it is freed by `new_tls_socket` itself, which then holds the socket.
    object.starting.set(true);
    object.held.set(0);
    let made = unsafe {
        let callbacks = (
            bufferevent::on_read as _,
            bufferevent::on_write as _,
            bufferevent::on_error as _,
        );
        match shape {
            Shape::Socket => {
                libevent::new_tls_socket(&base.event_base, bev, ssl, side, callbacks, owner)
            }
            Shape::Filter => {
                libevent::new_tls_layer(&base.event_base, bev, ssl, side, callbacks, owner)
            }
        }
    };
    match made {
        Ok(layer) => {
            object.adopt_tls_layer(layer);
            if object.above.get().is_none() {
                object.above.set(Some(filter)); // (connect.rs's filter passes to `event` itself)
            }
            if shape == Shape::Filter {
                object.write_gate.set(Some(write_waits_beneath));
            }
            if let Some(layer) = object.bufferevent() {
                if high > 0 || low > 0 {
                    layer.set_watermark(EV_READ, low, high);
                }
                if write_high > 0 || write_low > 0 {
                    layer.set_watermark(EV_WRITE, write_low, write_high);
                }
                if let Some((read, write)) = timeouts.filter(|&t| t != (None, None)) {
                    layer.set_timeouts(read, write);
                }
                layer.enable(enabled);
                if layer.start_handshake() {
                    object
                        .held
                        .set(object.held.get() | EVBUFFER_READ | EVBUFFER_ERROR);
                }
                replay_held(object, layer);
            }
            object.starting.set(false);
            Ok(())
        }
        Err(TlsLayerFailure::Kept) => {
            object.starting.set(false);
            Err(Failure::message(format_args!(
                "{function}: could not start TLS: not enough memory"
            )))
        }
        Err(TlsLayerFailure::Gone) => {
            object.starting.set(false);
            object.lost_bufferevent();
            Err(Failure::message(format_args!(
                "{function}: could not start TLS: not enough memory (the connection is closed)"
            )))
        }
    }
}

/// Schedules again, for the next loop round, what the layer reported while it was being put in
/// place (libevent holds a reference on it for each, so a close meanwhile is safe).
fn replay_held(object: &BuffereventUserdata, layer: BuffereventRef<'_>) {
    let held = object.held.take();
    let events = held & (EVBUFFER_EOF | EVBUFFER_ERROR | EVBUFFER_CONNECTED | EVBUFFER_TIMEOUT);
    if events != 0 {
        layer.trigger_event_later(held);
        return;
    }
    if held & EVBUFFER_READ != 0 {
        layer.trigger_read_later();
    }
    if held & EVBUFFER_WRITE != 0 {
        layer.trigger_write_later();
    }
}

/// libevent's read callback for the bufferevent beneath a TLS filter (one function, the same for
/// every layer), saved when the first layer's handshake is done; 0 until then.
static FILTER_READ: AtomicUsize = AtomicUsize::new(0);

/// Puts [`read_beneath`] in front of the layer's read callback on the socket bufferevent beneath
/// it, so that a busy stream is read in one readv of up to 64 KiB per wakeup instead of libevent
/// 2.1's 4 KiB (read_path.rs): fewer system calls and wakeups per decrypted byte. Left as it is
/// if the callback is not the one saved first (never expected: libevent has one).
fn read_ahead_beneath(beneath: BuffereventRef<'_>) {
    let Some(previous) = beneath.replace_read_callback(read_beneath) else {
        return;
    };
    let previous = previous as usize;
    if previous == read_beneath as libevent::BuffereventDataCallback as usize {
        return;
    }
    let saved =
        match FILTER_READ.compare_exchange(0, previous, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => previous,
            Err(saved) => saved,
        };
    if saved != previous {
        // SAFETY: `previous` was this bufferevent's read callback a moment ago, with the
        // argument that is still set.
        beneath.replace_read_callback(unsafe {
            std::mem::transmute::<usize, libevent::BuffereventDataCallback>(previous)
        });
    }
}

/// The read callback beneath a TLS layer: reads ahead what the socket holds, then runs the
/// layer's own (saved) callback, which decrypts it.
extern "C" fn read_beneath(raw: *mut ffi::bufferevent, arg: *mut c_void) {
    c_callback::guard((), || {
        let Some(raw) = NonNull::new(raw) else { return };
        // SAFETY: libevent calls back with a live bufferevent, held for the call.
        let beneath = unsafe { BuffereventRef::new(raw) };
        if read_path::read_ahead(beneath).is_err() {
            // As libevent does on a read error: no more reading, and the error callback
            // (deferred, so that the bytes read before it are decrypted first).
            beneath.disable(EV_READ);
            beneath.trigger_event_later(EVBUFFER_READ | EVBUFFER_ERROR);
        }
    });
    let saved = FILTER_READ.load(Ordering::Relaxed);
    if saved != 0 {
        // SAFETY: `saved` is libevent's read callback of a TLS filter, which `read_ahead_beneath`
        // replaced by this one on this bufferevent, keeping its argument `arg`.
        unsafe { std::mem::transmute::<usize, libevent::BuffereventDataCallback>(saved)(raw, arg) };
    }
}

/// libevent's write callback for the bufferevent beneath a TLS filter, saved as `FILTER_READ` is.
static FILTER_WRITE: AtomicUsize = AtomicUsize::new(0);

/// Puts [`write_beneath`] in front of the layer's write callback on the bufferevent beneath it,
/// so that the layer's "output written" waits for the ciphertext too (see
/// [`write_waits_beneath`]). Left as it is unless the callbacks' argument is the layer itself
/// (libevent's filter begins with its bufferevent), which `write_beneath` relies on.
fn watch_writes_beneath(layer: BuffereventRef<'_>, beneath: BuffereventRef<'_>) {
    let (Some(previous), argument) = beneath.write_callback() else {
        return;
    };
    if argument != layer.raw() as *mut c_void {
        return;
    }
    let previous = previous as usize;
    if previous == write_beneath as libevent::BuffereventDataCallback as usize {
        return;
    }
    let saved =
        match FILTER_WRITE.compare_exchange(0, previous, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => previous,
            Err(saved) => saved,
        };
    if saved == previous {
        beneath.replace_write_callback(write_beneath);
    }
}

/// Whether the layer's write callback, due now, waits instead for the bufferevent beneath to
/// send the ciphertext it holds: libevent reports the plain text output drained as soon as it is
/// encrypted, and a user who closes then would lose what is beneath. Then `write_held` is set,
/// and [`write_beneath`] schedules the callback again once the socket has taken it all.
pub fn write_waits_beneath(object: &BuffereventUserdata) -> bool {
    if !object.tls.get() {
        return false;
    }
    let Some(beneath) = object.bufferevent().and_then(|layer| layer.underlying()) else {
        return false;
    };
    if beneath.output().len() == 0 {
        return false;
    }
    // Only while `write_beneath` watches (after the handshake), or nothing would release it.
    if beneath.write_callback().0.map(|callback| callback as usize)
        != Some(write_beneath as libevent::BuffereventDataCallback as usize)
    {
        return false;
    }
    object.write_held.set(true);
    true
}

/// The write callback beneath a TLS layer, which libevent runs once the socket has taken all
/// the ciphertext: runs the layer's own (saved) callback, which encrypts more if there is more,
/// then, if the bufferevent beneath is still empty, schedules the layer's write callback that
/// [`write_waits_beneath`] held back (it checks the layer's write low watermark itself).
extern "C" fn write_beneath(raw: *mut ffi::bufferevent, arg: *mut c_void) {
    let saved = FILTER_WRITE.load(Ordering::Relaxed);
    if saved != 0 {
        // SAFETY: `saved` is libevent's write callback of a TLS filter, which
        // `watch_writes_beneath` replaced by this one on this bufferevent, keeping its argument.
        unsafe { std::mem::transmute::<usize, libevent::BuffereventDataCallback>(saved)(raw, arg) };
    }
    c_callback::guard((), || {
        let (Some(raw), Some(layer)) = (
            NonNull::new(raw),
            NonNull::new(arg as *mut ffi::bufferevent),
        ) else {
            return;
        };
        // SAFETY: libevent calls back with a live bufferevent, held for the call.
        let beneath = unsafe { BuffereventRef::new(raw) };
        if beneath.output().len() != 0 {
            return;
        }
        // SAFETY: the argument is the layer (checked by `watch_writes_beneath`); the layer
        // clears these callbacks before its memory goes (libevent's unlink), so it is live.
        let layer = unsafe { BuffereventRef::new(layer) };
        let (write, owner) = layer.write_callback();
        // A layer the object has closed has no callbacks any more.
        if write.map(|callback| callback as usize)
            != Some(bufferevent::on_write as libevent::BuffereventDataCallback as usize)
        {
            return;
        }
        // SAFETY: the layer's argument is its object while its callbacks are set (`start`).
        let object = unsafe { &*(owner as *const BuffereventUserdata) };
        if object.write_held.take() {
            layer.trigger_write_later();
        }
    });
}

/// The bufferevent's filter for events (see `BuffereventUserdata::above`) once a layer is on it.
fn filter(
    object: &BuffereventUserdata,
    bev: BuffereventRef<'_>,
    what: c_short,
    _errno: Errno,
) -> Next {
    if object.tls.get() {
        return event(object, bev, what);
    }
    Next::Pass
}

/// Marks the end of file [`end_of_file`] put off when libevent hands it back a loop round later
/// (a bit no libevent event uses; never shown to Lua).
const PUT_OFF: c_short = 0x100;

/// The TLS layer's event `what` for `object`.
pub fn event(object: &BuffereventUserdata, bev: BuffereventRef<'_>, what: c_short) -> Next {
    let put_off = what & PUT_OFF != 0;
    let what = what & !PUT_OFF;
    match layer_event(object, bev, what, put_off) {
        Next::Pass if put_off => Next::Report(what, None),
        next => next,
    }
}

fn layer_event(
    object: &BuffereventUserdata,
    bev: BuffereventRef<'_>,
    what: c_short,
    put_off: bool,
) -> Next {
    if object.handshaking.get() {
        if what & EVBUFFER_CONNECTED != 0 {
            object.handshaking.set(false);
            // libevent has just set the layer's reading callbacks on the bufferevent beneath.
            if let Some(beneath) = bev.underlying() {
                read_ahead_beneath(beneath);
                watch_writes_beneath(bev, beneath);
            }
            return Next::Pass;
        }
        if what & (EVBUFFER_EOF | EVBUFFER_ERROR) != 0 {
            object.handshaking.set(false);
            // Alone, as a connection that fails to come up is reported.
            return Next::Report(EVBUFFER_ERROR, Some(failure(bev, true)));
        }
        return Next::Pass;
    }
    if what & EVBUFFER_ERROR != 0 {
        return Next::Report(what, Some(failure(bev, false)));
    }
    if what & EVBUFFER_EOF != 0 {
        return end_of_file(object, bev, what, put_off);
    }
    Next::Pass
}

/// The end of file `what`, reported once, a loop round after libevent's first one, and with
/// `EVBUFFER_READ` as a plain bufferevent reports it. libevent reports a close notice from
/// inside the read that decrypted it, before it has put in the input the plain text decrypted
/// just in front of it in that read (the peer's last bytes and its close notice often come in
/// one segment), so the event callback would see those bytes missing, and a connection closed
/// there would lose them; a round later they are in the input. The layer may report the end of
/// file again (the socket's own, after the close notice), before or after: dropped.
fn end_of_file(
    object: &BuffereventUserdata,
    bev: BuffereventRef<'_>,
    what: c_short,
    put_off: bool,
) -> Next {
    use bufferevent::EndOfFile::{Deferred, Reported, Unseen};
    match (object.end_of_file.get(), put_off) {
        (Unseen, false) => {
            object.end_of_file.set(Deferred);
            bev.trigger_event_later(what | PUT_OFF);
            Next::Handled
        }
        (Deferred, true) => {
            object.end_of_file.set(Reported);
            Next::Report(what | EVBUFFER_READ, None)
        }
        // After the close notice, the socket's own end of file (libevent's layer does not stop
        // reading at the first): the connection has ended once already.
        (Deferred, false) | (Reported, _) | (Unseen, true) => Next::Handled,
    }
}

/// OpenSSL's reason for the layer's failure: its first queued error, followed by the
/// certificate's verification failure where there was one.
pub fn failure(bev: BuffereventRef<'_>, during_handshake: bool) -> Failure {
    let mut first = None;
    loop {
        let code = bev.next_tls_error();
        if code == 0 {
            break;
        }
        let error = SslError::from_code(code);
        if first.is_none() && error.is_reason() {
            first = Some(error);
        }
    }
    // SAFETY: the layer is live, and so is its SSL.
    let verify = bev
        .ssl()
        .and_then(|ssl| unsafe { openssl::verify_failure(ssl) });
    let verify = verify.and_then(|reason| reason.to_str().ok());
    Failure::message(format_args!(
        "{}",
        Reason {
            first,
            verify,
            during_handshake
        }
    ))
}

struct Reason<'a> {
    first: Option<SslError>,
    verify: Option<&'a str>,
    during_handshake: bool,
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first, self.verify) {
            (Some(error), Some(verify)) => write!(f, "{error}: {verify}"),
            (Some(error), None) => write!(f, "{error}"),
            (None, Some(verify)) => write!(f, "certificate verify failed: {verify}"),
            (None, None) if self.during_handshake => {
                f.write_str("the connection closed during the TLS handshake")
            }
            (None, None) => f.write_str("TLS connection failed"),
        }
    }
}

/// `bev:starttls(context [, options])`: TLS in place over the connection (see the notes above).
/// A client checks the server's name: `options.servername`, else the host the bufferevent was
/// connected to by `core.bufferevent.connect`. With neither, a context that verifies is refused
/// rather than checking the chain alone (any certificate the CAs signed would then pass).
pub fn starttls(stack: &mut Stack) -> Outcome {
    bufferevent::open_object(stack, 1)?;
    let (context, view) = tls::context_argument(stack, 2)?;
    let (role, verifies) = (context.role(), view.verifies_peer());
    let [servername] = stack.options(3, &["servername"])?;
    let name = if stack.kind(servername) == Kind::String {
        Some(servername)
    } else if !stack.is_none_or_nil(servername) {
        let got = stack.type_name(servername);
        return Err(Failure::argument(
            3,
            format_args!("options.servername: string expected, got {got}"),
        ));
    } else if role == Role::Client && stack.push_slot(1, bufferevent::SLOT_HOST) == Kind::String {
        Some(stack.top())
    } else {
        None
    };
    if role == Role::Client && name.is_none() && verifies {
        return Err(Failure::argument(
            3,
            format_args!(
                "options.servername required: the context verifies the server, and no host is known for a bufferevent \
                 not made by core.bufferevent.connect (or use a context with verify = \"none\")"
            ),
        ));
    }
    let (object, _) = bufferevent::open_object(stack, 1)?;
    if object.tls.get() {
        return Err(Failure::message(format_args!(
            "bev:starttls: the connection already uses TLS"
        )));
    }
    if clone_from_cell(&object.connecting).is_some() {
        return Err(Failure::message(format_args!(
            "bev:starttls: the connection is not established yet"
        )));
    }
    let (_, view) = tls::context_argument(stack, 2)?;
    let name = name.and_then(|index| stack.string_bytes(index));
    let (ssl, side) = match role {
        Role::Client => (
            tls::client_ssl("bev:starttls", view, name)?,
            TlsSide::Client,
        ),
        Role::Server => (tls::server_ssl("bev:starttls", view)?, TlsSide::Server),
    };
    start(object, ssl, side, Shape::Filter, "bev:starttls")?;
    Ok(Returns::Values(0))
}
