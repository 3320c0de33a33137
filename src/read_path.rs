//! The bufferevent read path: three workarounds for libevent 2.1's socket bufferevents.
//!
//! - **Read-ahead.** libevent reads at most 4 KiB per wakeup (EVBUFFER_MAX_READ, settable only
//!   from 2.2), so a busy stream costs a loop iteration and a Lua callback per 4 KiB. Before
//!   each read callback, what the socket already holds is read in one `readv`, up to a budget
//!   and never past the read high watermark.
//! - **Parking at the high watermark.** libevent runs the read callback again after every run
//!   that leaves the input at the read high watermark, without polling (libevent issue #891):
//!   a callback waiting for something else to drain the input would spin the loop at full CPU.
//!   Such a bufferevent is parked: reading is disabled until something drains the input.
//! - **Writing through.** A read callback that answers (an echo, a request's reply) queues
//!   output, and libevent then adds the write event, waits for the socket to be reported
//!   writable and removes the event once the output is written: two epoll_ctl calls and a loop
//!   round per reply. A socket that had nothing queued is almost always writable, so the
//!   output is written as soon as the read callback returns, as libevent's own write would:
//!   the event is removed before the base applies its changes, so the kernel never hears of
//!   it (libuv writes at once likewise). The write callback then runs as libevent would run it.
//!   Only on sockets known to be non-blocking, plain (no TLS layer) and connected.

use crate::c_callback;
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;

use crate::ffi::{evbuffer, evbuffer_cb_entry, evbuffer_cb_info, EV_READ};
use crate::libevent::BuffereventRef;
use crate::os::Errno;

/// How much a read callback takes from the socket beyond libevent's own 4 KiB read.
const READ_AHEAD: usize = 60 * 1024;

/// The most libevent 2.1 reads from a socket per wakeup (EVBUFFER_MAX_READ in buffer.c).
const LIBEVENT_MAX_READ: usize = 4096;

/// What an object that owns a bufferevent gives the read path.
pub trait Reader {
    /// The bufferevent, while it is open.
    fn bufferevent(&self) -> Option<BuffereventRef<'_>>;
    fn read_path(&self) -> &ReadPath;
}

/// The parking state of one bufferevent, kept in the object that owns it.
#[derive(Default)]
pub struct ReadPath {
    /// Reading was disabled by the read path, not by Lua.
    parked: Cell<bool>,
    /// The input buffer's change callback that ends the parking; made on first parking.
    watch: Cell<Option<NonNull<evbuffer_cb_entry>>>,
}

/// Reads what the socket already holds into the input buffer: up to [`READ_AHEAD`] bytes with
/// one readv, never past the read high watermark. End of file is left for libevent's next read
/// to see, as it would be without this. A hard error (a reset, say) the kernel reports only once,
/// so it is returned: the caller reports it as libevent would have.
pub fn read_ahead(bev: BuffereventRef<'_>) -> Result<(), Errno> {
    if bev.fd() < 0 {
        return Ok(());
    }
    let held = bev.input().len();
    // libevent has just read min(what the socket held, 4 KiB): less than that in the input means
    // the socket held no more, and a readv now would only return EAGAIN (and reserve room first).
    if held < LIBEVENT_MAX_READ {
        return Ok(());
    }
    let (_, high) = bev.read_watermarks();
    let mut room = READ_AHEAD;
    if high > 0 {
        room = room.min(high.saturating_sub(held));
    }
    if room == 0 {
        return Ok(());
    }
    match bev.read_more(room) {
        Ok(_) => Ok(()),
        Err(errno) if retriable(errno) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// A failure that means "not now": libevent's EVUTIL_ERR_RW_RETRIABLE.
#[allow(unreachable_patterns)] // EWOULDBLOCK is EAGAIN on Linux, not everywhere
fn retriable(errno: Errno) -> bool {
    matches!(errno.0, libc::EAGAIN | libc::EWOULDBLOCK | libc::EINTR)
}

/// Writes the output at once after a read callback that queued it, instead of waiting for
/// the socket to be reported writable (see the module's notes). `output_was_empty` says the
/// output held nothing before the callback: libevent was then not waiting to write, and its
/// last write, if any, left room in the socket. Whether it wrote; Err with the socket's error,
/// which the caller reports as libevent would have.
pub fn write_through(bev: BuffereventRef<'_>, output_was_empty: bool) -> Result<bool, Errno> {
    if !output_was_empty || bev.fd() < 0 || bev.output().len() == 0 || !bev.write_pending() {
        return Ok(false);
    }
    match bev.write_now() {
        Ok(written) => Ok(written > 0),
        // Left to libevent, which waits for the socket as before (and handles a 0 as before).
        Err(errno) if retriable(errno) => Ok(false),
        Err(errno) => Err(errno),
    }
}

impl ReadPath {
    pub fn is_parked(&self) -> bool {
        self.parked.get()
    }

    /// After a read callback: parks the bufferevent if the input is at the read high
    /// watermark, reading is enabled, and the callback took nothing from the input (which held
    /// `held_before` bytes before it). A callback that did take data is left to libevent, which
    /// calls it again until it stops taking or the input falls below.
    pub fn park_if_stuck<R: Reader>(owner: &R, bev: BuffereventRef<'_>, held_before: usize) {
        let (_, high) = bev.read_watermarks();
        if high == 0 || !bev.is_reading() {
            return;
        }
        let held = bev.input().len();
        if held >= high && held >= held_before {
            ReadPath::park(owner, bev);
        }
    }

    /// Disables reading until something drains the input (see `on_input_changed`).
    fn park<R: Reader>(owner: &R, bev: BuffereventRef<'_>) {
        let path = owner.read_path();
        match path.watch.get() {
            // SAFETY: the entry belongs to this bufferevent's input and was not removed.
            Some(watch) => unsafe { bev.set_input_callback_enabled(watch, true) },
            None => {
                // SAFETY: the argument is the owner, which outlives the entry: `forget` removes
                // it before the bufferevent is freed.
                let watch = unsafe {
                    bev.add_input_callback(
                        on_input_changed::<R>,
                        owner as *const R as *const c_void,
                    )
                };
                // Out of memory: better libevent's spinning than a reader never woken.
                let Some(watch) = watch else { return };
                path.watch.set(Some(watch));
            }
        }
        bev.disable(EV_READ);
        path.parked.set(true);
    }

    /// Forgets the parking without enabling reading (Lua's own disable takes over).
    pub fn end_parking(&self, bev: BuffereventRef<'_>) {
        self.parked.set(false);
        if let Some(watch) = self.watch.get() {
            // SAFETY: the entry belongs to this bufferevent's input and was not removed.
            unsafe { bev.set_input_callback_enabled(watch, false) };
        }
    }

    /// Ends the parking: reading is enabled again (libevent resumes socket reads once the input
    /// is below the high watermark). With `retrigger`, a read callback is scheduled if the
    /// input is still at the high watermark, so Lua sees the data it has not taken yet.
    pub fn unpark(&self, bev: BuffereventRef<'_>, retrigger: bool) {
        self.end_parking(bev);
        bev.enable(EV_READ);
        let (_, high) = bev.read_watermarks();
        if retrigger && high > 0 && bev.input().len() >= high {
            bev.trigger_read_later();
        }
    }

    /// Removes the change callback; call before the bufferevent is freed.
    pub fn forget(&self, bev: BuffereventRef<'_>) {
        self.parked.set(false);
        if let Some(watch) = self.watch.take() {
            // SAFETY: the entry belongs to this bufferevent's input; it is not used again.
            unsafe { bev.remove_input_callback(watch) };
        }
    }
}

/// The input buffer's change callback, enabled only while reading is parked: any drain ends it.
extern "C" fn on_input_changed<R: Reader>(
    _buffer: *mut evbuffer,
    info: *const evbuffer_cb_info,
    arg: *mut c_void,
) {
    c_callback::guard((), || {
        // SAFETY: `arg` is the owner of the bufferevent whose input this is (see `park`); the
        // entry is removed before the bufferevent is freed, and the owner outlives that. No Lua
        // code runs here. `info` is valid during the call.
        let (owner, drained) = unsafe { (&*(arg as *const R), (*info).n_deleted > 0) };
        let path = owner.read_path();
        if let (true, true, Some(bev)) = (path.is_parked(), drained, owner.bufferevent()) {
            path.unpark(bev, true);
        }
    });
}
