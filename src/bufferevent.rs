//! `core.bufferevent`: buffered sockets, on the base they were given.
//!
//! A bufferevent made from the user's descriptor (`bufferevent.new`) leaves it open when freed,
//! as the C module does; one whose socket the module made (accepted by a listener, or
//! connected by `bufferevent.connect`, see connect.rs) owns it and closes it with itself.
//!
//! The object's slots (`LuaType::SLOTS`) hold what Lua must keep alive for it: the three
//! callbacks, the socket object, the two buffer objects it lends out and the host it connected
//! to. Keeping them there
//! rather than in the registry lets a bufferevent whose callbacks refer to it still be
//! collected. libevent's callbacks find the object again through a weak table keyed by its
//! address, and pass it to the Lua function, which is how it stays alive during the call.

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void};
use std::ptr::NonNull;

use crate::base::{base_argument, push_latest_base, BaseShared, BaseUserdata, SocketBeyondFdSet};
use crate::buffer::{self, BufferUserdata};
use crate::c_callback::c_callback;
use crate::connect::Connecting;
use crate::ffi::{self, EVBUFFER_ERROR, EVBUFFER_READ, EVBUFFER_WRITE, EV_READ, EV_WRITE};
use crate::libevent::{self, BuffereventRef, Socket};
use crate::lua::{
    lua_function, lua_type, Address, Called, Cause, Failure, Held, Kind, Method, Outcome, Returns,
    Stack, TypeSpec, WeakTable,
};
use crate::openssl::{SessionFacts, Verification};
use crate::os::{self, Errno};
use crate::read_path::{self, ReadPath, Reader};
use crate::shared::{clone_from_cell, Shared};
use crate::time;

/// The Lua object; its address is libevent's callback argument.
pub struct BuffereventUserdata {
    /// `None` once freed.
    raw: Cell<Option<NonNull<ffi::bufferevent>>>,
    /// Keeps libevent's base alive as long as the bufferevent; `None` once collected.
    base: Cell<Option<Shared<BaseShared>>>,
    read_path: ReadPath,
    /// The error reading ahead or writing through met, for the event callback that reports it
    /// a round later (errno is long gone by then).
    io_error: Cell<Option<Errno>>,
    /// Lua has a write callback (its slot is not nil). Without one, libevent's "output
    /// written" notices need not reach Lua: looking the callback up costs more than the write.
    write_callback: Cell<bool>,
    /// The socket is known to be non-blocking (made by the module, or found so when lent):
    /// output may be written through (see read_path.rs).
    nonblocking: Cell<bool>,
    /// Set while a connection started by `bufferevent.connect` is under way.
    pub(crate) connecting: Cell<Option<Shared<Connecting>>>,
    /// What the layer above (connect.rs, tls_layer.rs, which set it) makes of an event first.
    pub(crate) above: Cell<Option<EventFilter>>,
    /// An accepted socket the backend could not watch, closed at once: the event callback
    /// reports it (see listener.rs).
    pub(crate) refused: Cell<Option<SocketBeyondFdSet>>,
    /// `raw` is a TLS layer over the socket bufferevent (see tls_layer.rs).
    pub(crate) tls: Cell<bool>,
    /// The TLS handshake is under way.
    pub(crate) handshaking: Cell<bool>,
    /// A TLS layer is being put in place: libevent may call back from inside that (enabling the
    /// layer reads), where no Lua code may run (it could free the layer under us). What it
    /// reports meanwhile is held here and scheduled again for the next loop round.
    pub(crate) starting: Cell<bool>,
    pub(crate) held: Cell<c_short>,
    /// The write callback waits for the ciphertext beneath the TLS layer to be sent (see
    /// `tls_layer::write_waits_beneath`).
    pub(crate) write_held: Cell<bool>,
    /// Set by the layer above (tls_layer.rs): whether a write callback due now waits instead
    /// (and is then scheduled again by that layer).
    pub(crate) write_gate: Cell<Option<WriteGate>>,
    /// Whether the TLS layer's end of file was put off, or reported (see
    /// `tls_layer::end_of_file`).
    pub(crate) end_of_file: Cell<EndOfFile>,
    /// The buffer objects lent out (SLOT_INPUT, SLOT_OUTPUT), to lend them the TLS layer's
    /// buffers instead when one is put in place outside any Lua call, and to close them when
    /// the bufferevent goes. The object's slots hold them, so they live at least as long as
    /// this object's bufferevent.
    pub(crate) lent: [Cell<Option<NonNull<BufferUserdata>>>; 2],
}

lua_type!(
    BuffereventUserdata,
    c"luaevent.core.bufferevent",
    "bufferevent",
    slots 7
);

/// Where each object is found from its address: weak, so that it does not keep it alive.
pub static BUFFEREVENTS: WeakTable = WeakTable::weak_values();

/// The object's slots (see `LuaType::SLOTS`).
pub(crate) const SLOT_READ: c_int = 1;
pub(crate) const SLOT_WRITE: c_int = 2;
pub(crate) const SLOT_ERROR: c_int = 3;
const SLOT_SOCKET: c_int = 4;
const SLOT_INPUT: c_int = 5;
const SLOT_OUTPUT: c_int = 6;
/// The host `core.bufferevent.connect` was given: the name a client `starttls` checks when not
/// told another.
pub(crate) const SLOT_HOST: c_int = 7;

impl Reader for BuffereventUserdata {
    fn bufferevent(&self) -> Option<BuffereventRef<'_>> {
        // SAFETY: `raw` is set while the bufferevent is alive: `shut` clears it as it frees it.
        self.raw
            .get()
            .map(|raw| unsafe { BuffereventRef::new(raw) })
    }

    fn read_path(&self) -> &ReadPath {
        &self.read_path
    }
}

impl BuffereventUserdata {
    pub(crate) fn base(&self) -> Option<Shared<BaseShared>> {
        clone_from_cell(&self.base)
    }

    /// The bufferevent that holds the socket: the one beneath a TLS filter, else the one itself
    /// (a plain one, or TLS on the socket itself: see tls_layer.rs).
    pub(crate) fn socket_bufferevent(&self) -> Option<BuffereventRef<'_>> {
        let bev = self.bufferevent()?;
        if self.tls.get() {
            if let Some(beneath) = bev.underlying() {
                return Some(beneath);
            }
        }
        Some(bev)
    }

    /// Replaces the bufferevent by `layer` (a TLS layer over it, which now owns it) and lends
    /// the new buffers to the buffer objects lent out.
    pub(crate) fn adopt_tls_layer(&self, layer: NonNull<ffi::bufferevent>) {
        self.raw.set(Some(layer));
        self.tls.set(true);
        self.handshaking.set(true);
        // SAFETY: just made, and live until `shut` frees it.
        let bev = unsafe { BuffereventRef::new(layer) };
        for (cell, buffer) in self.lent.iter().zip([bev.input(), bev.output()]) {
            if let Some(object) = cell.get() {
                // SAFETY: the buffer objects are held by this object's slots, so they are valid
                // memory while the bufferevent is (see `lent`).
                buffer::relend(unsafe { object.as_ref() }, buffer);
            }
        }
    }

    /// The bufferevent was freed by libevent beneath us (a failed TLS layer): the object is
    /// closed from now on; the buffer objects are detached by `shut` later (their state is
    /// checked against the bufferevent there), here marked closed at once.
    pub(crate) fn lost_bufferevent(&self) {
        self.raw.set(None);
        for cell in &self.lent {
            if let Some(object) = cell.get() {
                // SAFETY: as in `adopt_tls_layer`.
                buffer::close_lent(unsafe { object.as_ref() });
            }
        }
    }
}

/// The open bufferevent behind the argument at `index`.
fn open_bufferevent(stack: &Stack, index: c_int) -> Result<BuffereventRef<'_>, Failure> {
    open_object(stack, index).map(|(_, bev)| bev)
}

/// The object at `index` and its open bufferevent, for methods that need both.
pub(crate) fn open_object(
    stack: &Stack,
    index: c_int,
) -> Result<(&BuffereventUserdata, BuffereventRef<'_>), Failure> {
    let object = stack.userdata::<BuffereventUserdata>(index)?;
    Ok((object, open_bufferevent_of(object, index)?))
}

/// The open bufferevent of `object` (argument `index`), or the standard "closed" failure.
fn open_bufferevent_of(
    object: &BuffereventUserdata,
    index: c_int,
) -> Result<BuffereventRef<'_>, Failure> {
    object.bufferevent().ok_or_else(|| {
        Failure::argument(index, format_args!("attempt to use a closed bufferevent"))
    })
}

/// Frees the object's bufferevent now, and detaches the buffer objects it lent (they report
/// "closed" from then on). Idempotent.
fn shut(object: &BuffereventUserdata) {
    let raw = {
        let Some(raw) = object.raw.take() else { return };
        // A connection under way stops here: its deadline and its lookup go first.
        drop(object.connecting.take());
        // SAFETY: the bufferevent is live until freed below (`raw` was set).
        let bev = unsafe { BuffereventRef::new(raw) };
        object.read_path.forget(bev);
        if object.tls.get() {
            bev.send_close_notice();
        }
        for cell in &object.lent {
            if let Some(lent) = cell.take() {
                // SAFETY: the object's slots hold the buffer objects it lent, so they are valid
                // memory while it is (see `lent`), finalized or not.
                buffer::close_lent(unsafe { lent.as_ref() });
            }
        }
        raw
    };
    // SAFETY: made by new_bufferevent, freed once (`raw` is cleared above). libevent holds its
    // own reference while one of its callbacks runs, so this is safe inside them too.
    unsafe { libevent::free_bufferevent(raw) };
}

/// Closes the bufferevent object at `index` (as `bev:close()`).
pub(crate) fn close_at(stack: &mut Stack, index: c_int) {
    if let Some(object) = stack.test_userdata::<BuffereventUserdata>(index) {
        shut(object);
    }
}

/// `core.bufferevent.new([base,] fd, readcb, writecb, errorcb)`
pub fn new(stack: &mut Stack) -> Outcome {
    let (base_index, first) = if stack.test_userdata::<BaseUserdata>(1).is_some() {
        (1, 2)
    } else if push_latest_base(stack) {
        (stack.top(), 1)
    } else {
        return Err(Failure::message(format_args!(
            "core.bufferevent.new: no base given and no event base made by core.new() is alive"
        )));
    };
    let base = base_argument(stack, base_index)?;
    let fd = crate::fd::argument(stack, first)?;
    if let Some(why) = base.unwatchable(fd) {
        return Err(Failure::argument(
            first,
            format_args!("bad file descriptor ({fd} {why})"),
        ));
    }
    for index in [first + 1, first + 2] {
        if !stack.is_none_or_nil(index) {
            stack.callable(index, "function or nil")?;
        }
    }
    stack.callable(first + 3, "function")?;

    let made = make(stack, &base, fd, Socket::Lent, "core.bufferevent.new")?;
    store_callbacks(stack, &made, [first + 1, first + 2, first + 3])?;
    let object = made.index;
    if let Kind::Userdata | Kind::Table = stack.kind(first) {
        stack.set_slot::<BuffereventUserdata>(object, SLOT_SOCKET, first);
    }
    stack.set_top(object);
    Ok(Returns::Values(1))
}

/// Pushes a new bufferevent object on `base` for `fd` (-1: none yet), without callbacks;
/// returns its index. An owned socket is closed should anything fail. `function` names the
/// caller in the error message.
pub(crate) fn make(
    stack: &mut Stack,
    base: &Shared<BaseShared>,
    fd: c_int,
    socket: Socket,
    function: &str,
) -> Result<Held<BuffereventUserdata>, Failure> {
    // Closes an owned socket unless the bufferevent took it.
    struct Owned(c_int);
    impl Drop for Owned {
        fn drop(&mut self) {
            if self.0 >= 0 {
                os::close(self.0);
            }
        }
    }
    let mut owned = Owned(if socket == Socket::Owned { fd } else { -1 });
    let made = stack.new_object_in(
        BuffereventUserdata {
            raw: Cell::new(None),
            base: Cell::new(Some(base.clone())),
            read_path: ReadPath::default(),
            io_error: Cell::new(None),
            write_callback: Cell::new(false),
            nonblocking: Cell::new(socket == Socket::Owned || os::is_nonblocking(fd)),
            connecting: Cell::new(None),
            above: Cell::new(None),
            refused: Cell::new(None),
            tls: Cell::new(false),
            handshaking: Cell::new(false),
            starting: Cell::new(false),
            held: Cell::new(0),
            write_held: Cell::new(false),
            end_of_file: Cell::new(EndOfFile::Unseen),
            write_gate: Cell::new(None),
            lent: [Cell::new(None), Cell::new(None)],
        },
        &BUFFEREVENTS,
    )?;
    // SLOT_INPUT and SLOT_OUTPUT are filled on first use (see push_buffer): an idle
    // connection whose buffers Lua never asks for costs no buffer objects.
    let userdata = stack.held(&made)?;
    // SAFETY: the argument is the userdata's address: Lua never moves a userdata, and `shut`
    // (close, __gc) frees the bufferevent before Lua can free the memory. The base outlives
    // the bufferevent: the object holds it until after `shut`.
    let raw = unsafe {
        libevent::new_bufferevent(
            &base.event_base,
            fd,
            socket,
            on_read,
            on_write,
            on_error,
            userdata as *const BuffereventUserdata as *const c_void,
        )
    }
    .map_err(|errno| match fd {
        -1 => Failure::message(format_args!(
            "{function}: libevent could not create a bufferevent{}",
            Cause(errno)
        )),
        _ => Failure::message(format_args!(
            "{function}: libevent could not create a bufferevent on fd {fd}{}",
            Cause(errno)
        )),
    })?;
    owned.0 = -1;
    userdata.raw.set(Some(raw));
    Ok(made)
}

c_callback! {
    pub(crate) fn on_read(raw: *mut ffi::bufferevent, arg: *mut c_void) {
        read_ready(raw, arg as *const BuffereventUserdata)
    }
}

c_callback! {
    pub(crate) fn on_write(_raw: *mut ffi::bufferevent, arg: *mut c_void) {
        let owner = arg as *const BuffereventUserdata;
        // SAFETY: as in `held_back`.
        if held_back(owner, EVBUFFER_WRITE) {
            return;
        }
        // SAFETY: as in `held_back`; only Cells are read, none once Lua runs.
        let object = unsafe { &*owner };
        if object.tls.get() {
            if let Some(layer) = object.bufferevent() {
                layer.stop_idle_write_timeout();
            }
        }
        if object.write_callback.get() && !object.write_gate.get().is_some_and(|waits| waits(object)) {
            dispatch(owner, SLOT_WRITE, EVBUFFER_WRITE);
        }
    }
}

/// While a TLS layer is being put in place, holds back what libevent reports (see `starting`);
/// true when it did.
fn held_back(owner: *const BuffereventUserdata, what: c_short) -> bool {
    // SAFETY: libevent calls back only while the bufferevent exists, and it is freed before the
    // object's memory can be. No Lua code runs here.
    let object = unsafe { &*owner };
    if !object.starting.get() {
        return false;
    }
    object.held.set(object.held.get() | what);
    true
}

c_callback! {
    /// libevent's event callback: end of file, an error, a timeout, or a connection made.
    pub(crate) fn on_error(_raw: *mut ffi::bufferevent, what: c_short, arg: *mut c_void) {
        // First of all: errno holds the socket's error when libevent reports one.
        let errno = Errno::last();
        happened(arg as *const BuffereventUserdata, what, errno)
    }
}

/// What a layer above makes of an event (see `above`).
// Holds a Failure inline, on purpose (see clippy.toml): boxing it would allocate.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next {
    /// Dealt with there (connect tries another address): no Lua callback.
    Handled,
    /// Report this to Lua instead, with this message.
    Report(c_short, Option<Failure>),
    /// Report it as it is.
    Pass,
}

/// Where a TLS layer is with its end of file (see `tls_layer::end_of_file`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EndOfFile {
    Unseen,
    /// Put off to the next loop round.
    Deferred,
    /// Reported: any later one is dropped.
    Reported,
}

/// A layer's say on a write callback due now: true when it waits (see `write_gate`).
pub(crate) type WriteGate = fn(&BuffereventUserdata) -> bool;

/// A layer's look at the event `what` (errno: the socket's error) before Lua sees it.
pub(crate) type EventFilter = fn(&BuffereventUserdata, BuffereventRef<'_>, c_short, Errno) -> Next;

fn happened(owner: *const BuffereventUserdata, what: c_short, errno: Errno) {
    if held_back(owner, what) {
        return;
    }
    let errno = {
        // SAFETY: libevent calls back only while the bufferevent exists, and it is freed
        // before the object's memory can be. The borrow ends before Lua code runs.
        let object = unsafe { &*owner };
        let Some(raw) = object.raw.get() else { return };
        // SAFETY: live (`raw` is set), and libevent holds a reference during the callback.
        let bev = unsafe { BuffereventRef::new(raw) };
        if let Some(refused) = object.refused.take() {
            let message = Failure::message(format_args!(
                "listener (accepting): {refused}; the connection was closed"
            ));
            report(owner, what, Some(message.text()));
            return;
        }
        if let Some(above) = object.above.get() {
            match above(object, bev, what, errno) {
                Next::Handled => return,
                Next::Report(what, message) => {
                    report(owner, what, message.as_ref().map(Failure::text));
                    return;
                }
                Next::Pass => {}
            }
        }
        if what & EVBUFFER_ERROR == 0 {
            dispatch(owner, SLOT_ERROR, what);
            return;
        }
        object
            .io_error
            .take()
            .or(Some(errno).filter(|errno| errno.0 != 0))
            .or_else(|| os::socket_error(bev.fd()))
    };
    match errno {
        Some(errno) => report(
            owner,
            what,
            Some(Failure::message(format_args!("{errno}")).text()),
        ),
        None => report(owner, what, Some("unknown socket error")),
    }
}

/// Calls the event callback as `eventcb(bev, what, message)`.
pub(crate) fn report(owner: *const BuffereventUserdata, what: c_short, message: Option<&str>) {
    let Some(message) = message else {
        dispatch(owner, SLOT_ERROR, what);
        return;
    };
    let base = {
        // SAFETY: as in `dispatch`.
        let object = unsafe { &*owner };
        if object.raw.get().is_none() {
            return;
        }
        let Some(base) = object.base() else { return };
        base
    };
    let address = Address::at(owner);
    base.call_back_with(
        address,
        |stack| {
            if stack.push_weak_entry(&BUFFEREVENTS, address) != Kind::Userdata {
                return Ok(None);
            }
            if stack.push_slot(-1, SLOT_ERROR) == Kind::Nil {
                return Ok(None);
            }
            stack.push_weak_entry(&BUFFEREVENTS, address);
            stack.push_integer(what as i64);
            stack.push_string(message.as_bytes())?;
            Ok(Some(3))
        },
        0,
        |_| (),
    );
}

fn read_ready(raw: *mut ffi::bufferevent, owner: *const BuffereventUserdata) {
    let Some(raw) = NonNull::new(raw) else { return };
    if held_back(owner, EVBUFFER_READ) {
        return;
    }
    // SAFETY: libevent passes a live bufferevent to its callbacks, and holds a reference on it
    // until this callback returns, even if Lua frees it meanwhile.
    let bev = unsafe { BuffereventRef::new(raw) };
    // A deferred read callback can outlive a disable; Lua asked for no more.
    if !bev.is_reading() {
        return;
    }
    // SAFETY: as for `dispatch`: the object outlives its bufferevent's callbacks.
    let is_tls = unsafe { &*owner }.tls.get();
    // libevent 2.1's TLS filter reads beneath itself recursively while the layer has a read high
    // watermark: each record it commits to the input runs the watermark check, which re-enables
    // reading and so reads the next record one level deeper. The innermost level calls back with
    // everything, then every level on the way out calls back again with what Lua left, mostly
    // nothing: one Lua call per record (tens of thousands for small records). Those are dropped.
    if is_tls && bev.input().len() == 0 {
        return;
    }
    // Reading ahead reads the socket: beneath a TLS layer, those bytes are not the plain text.
    if let Err(errno) = if is_tls {
        Ok(())
    } else {
        read_path::read_ahead(bev)
    } {
        // SAFETY: as for `dispatch`: the object outlives its bufferevent's callbacks.
        unsafe { &*owner }.io_error.set(Some(errno));
        // As libevent does on a read error: no more reading, and the error callback (deferred,
        // so the read callback still sees the data that came before the error).
        bev.disable(EV_READ);
        bev.trigger_event_later(EVBUFFER_READ | EVBUFFER_ERROR);
    }
    let held_before = bev.input().len();
    let output_was_empty = bev.output().len() == 0;
    let called = dispatch(owner, SLOT_READ, EVBUFFER_READ);
    match called {
        Called::NotLooping | Called::Finalized => {}
        Called::Skipped | Called::Raised | Called::Returned(()) => {
            // SAFETY: not collected during the callback (the protocol says so), so the object
            // is alive. If Lua closed it, `raw` no longer matches.
            let object = unsafe { &*owner };
            if object.raw.get() != Some(raw) {
                return;
            }
            ReadPath::park_if_stuck(object, bev, held_before);
            // Not once the loop is told to stop: libevent would run no more callbacks.
            if matches!(called, Called::Returned(())) && object.writes_through() {
                write_through(object, bev, output_was_empty);
            }
        }
    }
}

impl BuffereventUserdata {
    /// Whether output queued by a read callback may be written at once (see read_path.rs):
    /// a plain socket known to be non-blocking, connected.
    fn writes_through(&self) -> bool {
        self.nonblocking.get()
            && !self.tls.get()
            && clone_from_cell(&self.connecting).is_none()
            && self
                .base()
                .is_some_and(|base| !base.event_base.is_breaking())
    }
}

/// Writes what the read callback queued (see read_path.rs), then runs the write callback or
/// reports the error as libevent would after its own write.
fn write_through(object: &BuffereventUserdata, bev: BuffereventRef<'_>, output_was_empty: bool) {
    match read_path::write_through(bev, output_was_empty) {
        Ok(false) => {}
        // SAFETY: the write callback may close the object: nothing is used afterwards.
        Ok(true) if object.write_callback.get() => unsafe { bev.trigger_write_now() },
        Ok(true) => {}
        Err(errno) => {
            object.io_error.set(Some(errno));
            // As libevent does on a write error: no more writing, and the error callback
            // (deferred, as for a read-ahead error).
            bev.disable(EV_WRITE);
            bev.trigger_event_later(EVBUFFER_WRITE | EVBUFFER_ERROR);
        }
    }
}

/// Calls the Lua callback in `slot` as `callback(bev, what)`.
pub(crate) fn dispatch(
    owner: *const BuffereventUserdata,
    slot: c_int,
    what: c_short,
) -> Called<()> {
    let base = {
        // SAFETY: libevent calls back only while the bufferevent exists, and it is freed
        // before the object's memory can be. The borrow ends before Lua code runs.
        let object = unsafe { &*owner };
        if object.raw.get().is_none() {
            return Called::Skipped;
        }
        let Some(base) = object.base() else {
            return Called::Skipped;
        };
        base
    };
    let address = Address::at(owner);
    base.call_back(
        address,
        |arguments| {
            // Being finalized: its weak entry is gone, and so is the callback's purpose.
            if arguments.push_weak_entry(&BUFFEREVENTS, address) != Kind::Userdata {
                return None;
            }
            if arguments.push_slot(slot) == Kind::Nil {
                return None;
            }
            arguments.swap_top();
            arguments.push_integer(what as i64);
            Some(2)
        },
        0,
        |_| (),
    )
}

/// Pushes the buffer object for `slot` (SLOT_INPUT or SLOT_OUTPUT), making it on first use so
/// every later call returns the same object.
fn push_buffer(stack: &mut Stack, slot: c_int) -> Outcome {
    let owner = stack.hold::<BuffereventUserdata>(1)?;
    open_bufferevent_of(stack.held(&owner)?, 1)?;
    if stack.push_slot(1, slot) != Kind::Nil {
        return Ok(Returns::Values(1));
    }
    stack.pop(1);
    // A program that asks for one of the buffers nearly always asks for the other (an echo, a
    // reply): when neither exists yet both are made, in one protected call instead of two.
    let other = if slot == SLOT_INPUT {
        SLOT_OUTPUT
    } else {
        SLOT_INPUT
    };
    let other_made = stack.push_slot(1, other) != Kind::Nil;
    stack.pop(1);
    let (wanted, also) = if other_made {
        (buffer::push_unlent(stack)?, None)
    } else {
        let [wanted, also] = buffer::push_unlent_pair(stack)?;
        (wanted, Some(also))
    };
    let made = [(slot, Some(&wanted)), (other, also.as_ref())];
    for (slot, object) in made {
        if let Some(object) = object {
            stack.set_slot::<BuffereventUserdata>(1, slot, object.index);
        }
    }
    // Making the objects may have run Lua code (a finalizer that closes the bufferevent, say):
    // look at it again.
    let owner = stack.held(&owner)?;
    let bev = open_bufferevent_of(owner, 1)?;
    for (slot, object) in made {
        if let Some(object) = object {
            let (lent, which) = if slot == SLOT_INPUT {
                (bev.input(), 0)
            } else {
                (bev.output(), 1)
            };
            let buffer_object = stack.held(object)?;
            buffer::lend(buffer_object, lent);
            owner.lent[which].set(Some(NonNull::from(buffer_object)));
        }
    }
    stack.set_top(wanted.index);
    Ok(Returns::Values(1))
}

/// `bev:get_read()`
fn get_read(stack: &mut Stack) -> Outcome {
    push_buffer(stack, SLOT_INPUT)
}

/// `bev:get_write()`
fn get_write(stack: &mut Stack) -> Outcome {
    push_buffer(stack, SLOT_OUTPUT)
}

/// A byte count argument for watermarks: an integer >= 0 (nil counts as 0).
fn byte_count(stack: &Stack, index: c_int) -> Result<usize, Failure> {
    if stack.is_none_or_nil(index) {
        return Ok(0);
    }
    let value = stack.integer(index)?;
    usize::try_from(value)
        .map_err(|_| Failure::argument(index, format_args!("byte count must be >= 0, got {value}")))
}

fn set_watermarks(stack: &mut Stack, direction: c_short) -> Outcome {
    let (object, bev) = open_object(stack, 1)?;
    let low = byte_count(stack, 2)?;
    let high = byte_count(stack, 3)?;
    // A read high watermark below the low one stops reading before the read callback may run:
    // the bufferevent would stall for ever.
    if high != 0 && low > high {
        let none = "0 means no high watermark";
        return Err(Failure::argument(
            3,
            format_args!("high watermark {high} is below the low watermark {low} ({none})"),
        ));
    }
    bev.set_watermark(direction, low, high)
        .ok_or_else(Failure::out_of_memory)?;
    // Parked at the old high watermark, but the new one no longer holds the input back.
    let read_path = &object.read_path;
    if direction == EV_READ && read_path.is_parked() && (high == 0 || bev.input().len() < high) {
        read_path.unpark(bev, false);
    }
    Ok(Returns::Values(0))
}

/// `bev:set_read_watermarks(low, high)`
fn set_read_watermarks(stack: &mut Stack) -> Outcome {
    set_watermarks(stack, EV_READ)
}

/// `bev:set_write_watermarks(low, high)`
fn set_write_watermarks(stack: &mut Stack) -> Outcome {
    set_watermarks(stack, EV_WRITE)
}

/// A bufferevent timeout: nil or 0 means none.
fn optional_timeout(stack: &Stack, index: c_int) -> Result<Option<i64>, Failure> {
    Ok(time::optional_timeout(stack, index)?.filter(|&micros| micros > 0))
}

/// Gives the bufferevent beneath a TLS layer the layer's write timeout: the layer's own runs
/// only while its plain-text output holds bytes, which it empties as it encrypts them, so a
/// peer that takes none of the ciphertext would never time out. libevent's filter reports the
/// timeout beneath as the layer's (`EVBUFFER_TIMEOUT` plus `EVBUFFER_WRITE`).
fn set_write_timeout_beneath(layer: BuffereventRef<'_>, write: Option<crate::time::Micros>) {
    if let Some(beneath) = layer.underlying() {
        beneath.set_timeouts(None, write);
    }
}

/// `bev:set_timeouts(read, write)`
fn set_timeouts(stack: &mut Stack) -> Outcome {
    let (object, bev) = open_object(stack, 1)?;
    let read = optional_timeout(stack, 2)?;
    let write = optional_timeout(stack, 3)?;
    bev.set_timeouts(read, write);
    if object.tls.get() {
        set_write_timeout_beneath(bev, write);
    }
    Ok(Returns::Values(0))
}

/// The mask argument of enable/disable: EV_READ, EV_WRITE or both.
fn direction(stack: &Stack, index: c_int) -> Result<c_short, Failure> {
    let mask = stack.integer(index)?;
    if mask <= 0 || mask & !((EV_READ | EV_WRITE) as i64) != 0 {
        return Err(Failure::argument(
            index,
            format_args!("EV_READ, EV_WRITE or both expected, got {mask}"),
        ));
    }
    Ok(mask as c_short)
}

/// `bev:enable(mask)`
fn enable(stack: &mut Stack) -> Outcome {
    let (object, bev) = open_object(stack, 1)?;
    let mask = direction(stack, 2)?;
    let read_path = &object.read_path;
    if mask & EV_READ != 0 && read_path.is_parked() {
        read_path.unpark(bev, false); // Lua's own enable takes over from the parking
    }
    let result = bev.enable(mask);
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// `bev:disable(mask)`
fn disable(stack: &mut Stack) -> Outcome {
    let (object, bev) = open_object(stack, 1)?;
    let mask = direction(stack, 2)?;
    let read_path = &object.read_path;
    if mask & EV_READ != 0 && read_path.is_parked() {
        read_path.end_parking(bev);
    }
    let result = bev.disable(mask);
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// `bev:set_callbacks(readcb, writecb, eventcb)`: nil clears one.
fn set_callbacks(stack: &mut Stack) -> Outcome {
    let object = stack.hold::<BuffereventUserdata>(1)?;
    open_bufferevent_of(stack.held(&object)?, 1)?;
    for index in 2..=4 {
        if !stack.is_none_or_nil(index) {
            stack.callable(index, "function or nil")?;
        }
    }
    stack.set_top(4);
    store_callbacks(stack, &object, [2, 3, 4])?;
    Ok(Returns::Values(0))
}

/// Stores the read, write and event callbacks at the stack indices `callbacks` (each a
/// function or nil, and on the stack) in the slots of the bufferevent `object`.
pub(crate) fn store_callbacks(
    stack: &mut Stack,
    object: &Held<BuffereventUserdata>,
    callbacks: [c_int; 3],
) -> Result<(), Failure> {
    let has_write_callback = !stack.is_none_or_nil(callbacks[1]);
    // Told "yes" before the slot is set, "no" after: a notice looked up for nothing is
    // harmless, a missed one is not.
    if has_write_callback {
        stack.held(object)?.write_callback.set(true);
    }
    for (slot, index) in [SLOT_READ, SLOT_WRITE, SLOT_ERROR]
        .into_iter()
        .zip(callbacks)
    {
        stack.set_slot::<BuffereventUserdata>(object.index, slot, index);
    }
    if !has_write_callback {
        stack.held(object)?.write_callback.set(false);
    }
    Ok(())
}

/// `bev:getfd()`: the socket's descriptor (-1 while a connection has none yet).
fn getfd(stack: &mut Stack) -> Outcome {
    let fd = open_bufferevent(stack, 1)?.fd();
    stack.push_integer(fd as i64);
    Ok(Returns::Values(1))
}

/// `bev:tls()`: nil for a plain connection, else what the handshake agreed (see API.md).
fn tls_facts(stack: &mut Stack) -> Outcome {
    let (object, bev) = open_object(stack, 1)?;
    let ssl = if object.tls.get() { bev.ssl() } else { None };
    let Some(ssl) = ssl else {
        stack.push_nil();
        return Ok(Returns::Values(1));
    };
    // SAFETY: the layer is live (open_object), and so is its SSL.
    let facts = unsafe { SessionFacts::read(ssl) };
    let table = stack.new_table(0, 7)?;
    stack.push_string(facts.protocol.to_bytes())?;
    stack.set_named(table, "protocol", -1)?;
    stack.pop(1);
    for (name, value) in [
        ("cipher", facts.cipher.map(|c| c.to_bytes())),
        ("alpn", facts.alpn.as_ref().map(|a| a.as_bytes())),
        (
            "servername",
            facts.server_name.as_ref().map(|n| n.as_bytes()),
        ),
    ] {
        if let Some(bytes) = value {
            stack.push_string(bytes)?;
            stack.set_named(table, name, -1)?;
            stack.pop(1);
        }
    }
    stack.push_boolean(facts.verification == Verification::Verified);
    stack.set_named(table, "verified", -1)?;
    stack.pop(1);
    if let Some(reason) = facts.verification.reason() {
        stack.push_string(reason.to_bytes())?;
        stack.set_named(table, "verify_error", -1)?;
        stack.pop(1);
    }
    if let Some(peer) = &facts.peer {
        let peer_table = stack.new_table(0, 4)?;
        for (name, text) in [
            ("subject", peer.subject()),
            ("issuer", peer.issuer()),
            ("not_after", peer.not_after()),
            ("pem", peer.pem()),
        ] {
            let text = text.map_err(|_| Failure::out_of_memory())?;
            stack.push_string(text.as_bytes())?;
            stack.set_named(peer_table, name, -1)?;
            stack.pop(1);
        }
        stack.set_named(table, "peer", peer_table)?;
        stack.pop(1);
    }
    Ok(Returns::Values(1))
}

/// `bev:close()`
fn close(stack: &mut Stack) -> Outcome {
    shut(stack.userdata::<BuffereventUserdata>(1)?);
    Ok(Returns::Values(0))
}

/// `__gc`: as close, and lets go of the base. The lent buffer objects are still valid memory
/// here: Lua frees objects reachable from one being finalized only in a later cycle.
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(object) = stack.test_userdata::<BuffereventUserdata>(1) {
        shut(object);
        if let Some(base) = object.base.take() {
            base.finalizing(Address::of(object));
        }
    }
    Ok(Returns::Values(0))
}

/// The bufferevent's own methods; `starttls` is tls_layer.rs's (see lib.rs).
pub const METHODS: &[Method] = &[
    (c"get_read", lua_function!(get_read)),
    (c"get_write", lua_function!(get_write)),
    (c"set_read_watermarks", lua_function!(set_read_watermarks)),
    (c"set_write_watermarks", lua_function!(set_write_watermarks)),
    (c"set_timeouts", lua_function!(set_timeouts)),
    (c"enable", lua_function!(enable)),
    (c"disable", lua_function!(disable)),
    (c"close", lua_function!(close)),
    (c"set_callbacks", lua_function!(set_callbacks)),
    (c"getfd", lua_function!(getfd)),
    (c"tls", lua_function!(tls_facts)),
];

/// The bufferevent's metatable, with `methods` (its own [`METHODS`] and those other modules add).
pub const fn type_spec(methods: &'static [&'static [Method]]) -> TypeSpec {
    TypeSpec::of::<BuffereventUserdata>(methods, &[(c"__gc", lua_function!(collect))])
}
