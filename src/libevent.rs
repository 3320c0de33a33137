//! Handles on libevent's objects that make the calls the type files need safe, with what each
//! needs to stay valid stated once, here.
//!
//! - [`EventBase`] owns a base and frees it when dropped.
//! - [`Event`] is libevent's `struct event` itself, kept inside the object that owns it (an
//!   event userdata); registering and removing it take the base as proof that it is alive.
//! - [`BufferRef`] and [`BuffereventRef`] are borrowed views, valid for a lifetime the owner
//!   proves when it makes one (their constructors are the `unsafe` part).

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_char, c_int, c_short, c_void, CStr};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::c_callback::c_callback;
use crate::ffi::{self, evbuffer, event_base, EV_PERSIST, EV_READ, EV_WRITE};
use crate::os::{self, Errno};
use crate::reserve::{self, Serve};
use crate::time::Micros;

fn to_timeval(micros: Micros) -> ffi::timeval {
    ffi::timeval {
        tv_sec: (micros / 1_000_000) as _,
        tv_usec: (micros % 1_000_000) as _,
    }
}

fn timeval_ptr(timeval: &Option<ffi::timeval>) -> *const ffi::timeval {
    timeval.as_ref().map_or(ptr::null(), |t| t as *const _)
}

/// The version string of the libevent in use, e.g. "2.1.12-stable".
pub fn version() -> &'static str {
    // SAFETY: event_get_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::event_get_version()) }
        .to_str()
        .unwrap_or("?")
}

/// Whether the `struct event` these bindings were made with has the size of the one in the
/// libevent loaded at run time (events live inside Lua userdata, sized at build time).
pub fn event_layout_matches() -> bool {
    // SAFETY: no preconditions.
    std::mem::size_of::<ffi::event>() == unsafe { ffi::event_get_struct_event_size() }
}

// --------------------------------------------------------------------------- logging ----

/// The longest libevent log line kept; longer ones are cut (they are warnings, not data).
const LOG_LINE: usize = 200;

/// A libevent log line, kept without allocating.
#[derive(Clone, Copy)]
pub struct LogLine {
    bytes: [u8; LOG_LINE],
    len: usize,
}

impl LogLine {
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..self.len];
        match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
        }
    }
}

thread_local! {
    /// The latest line libevent logged on this thread since [`take_log_line`] last took it.
    /// Per thread: libevent logs on the thread that made the failing call, and Lua states on
    /// other threads have bases of their own.
    static LAST_LOG_LINE: Cell<Option<LogLine>> = const { Cell::new(None) };
}

/// Sends libevent's log lines to [`take_log_line`] instead of stderr, where they would reach a
/// program's users as `[warn] ...`. Process-wide, so done once, when the module is first loaded;
/// the same function serves every Lua state.
pub fn capture_log_lines() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    // SAFETY: the callback is a plain function that lives for the whole process.
    once_per_process(&INSTALLED, || unsafe {
        ffi::event_set_log_callback(Some(on_log_line))
    });
}

/// Runs `install` the first time it is called with `done` (which it then sets), under a lock
/// every load of the module takes: whatever `install` wrote into libevent's globals is seen by
/// every thread that loaded the module since. A pthread mutex rather than std's `Once`, whose
/// atomics thread checkers such as helgrind cannot follow (tests/threads runs under it).
fn once_per_process(done: &AtomicBool, install: impl FnOnce()) {
    struct LoadLock(UnsafeCell<libc::pthread_mutex_t>);
    // SAFETY: a pthread mutex is made to be shared between threads.
    unsafe impl Sync for LoadLock {}
    static LOAD_LOCK: LoadLock = LoadLock(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));
    // SAFETY: a statically initialized mutex, never moved nor destroyed; locked and unlocked
    // on this thread around code that cannot unwind past the unlock (install runs in between,
    // and a panic aborts across the module's extern "C" entry anyway).
    unsafe { libc::pthread_mutex_lock(LOAD_LOCK.0.get()) };
    if !done.load(Ordering::Relaxed) {
        install();
        done.store(true, Ordering::Relaxed);
    }
    // SAFETY: locked above by this thread.
    unsafe { libc::pthread_mutex_unlock(LOAD_LOCK.0.get()) };
}

/// Forgets any line logged so far, before a call whose failure [`take_log_line`] will explain.
pub fn forget_log_lines() {
    let _ = LAST_LOG_LINE.try_with(|line| line.set(None));
}

/// The line libevent logged on this thread since [`forget_log_lines`], if any. A line nobody
/// takes (a warning during dispatch, about something already reported or beyond repair) is
/// dropped by the next [`forget_log_lines`].
pub fn take_log_line() -> Option<LogLine> {
    LAST_LOG_LINE.try_with(|line| line.take()).ok().flatten()
}

c_callback! {
    fn on_log_line(_severity: c_int, message: *const c_char) {
        if message.is_null() {
            return;
        }
        // SAFETY: libevent passes a NUL-terminated string, valid during the call.
        let text = unsafe { CStr::from_ptr(message) }.to_bytes();
        let mut line = LogLine { bytes: [0; LOG_LINE], len: text.len().min(LOG_LINE) };
        line.bytes[..line.len].copy_from_slice(&text[..line.len]);
        // During thread teardown the slot may be gone: the line is dropped then.
        let _ = LAST_LOG_LINE.try_with(|slot| slot.set(Some(line)));
    }
}

// ------------------------------------------------------------------------ event base ----

/// An event base, owned.
pub struct EventBase {
    raw: NonNull<event_base>,
    /// At or above the higher descriptor of libevent's signal socketpair (see
    /// [`EventBase::signal_descriptors_below`]).
    signal_pair_bound: c_int,
}

impl EventBase {
    /// A new base. On epoll it batches changes (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): an event
    /// switching between EV_READ and EV_WRITE from its callback then costs one epoll_ctl(MOD) at
    /// the next dispatch instead of a DEL and an ADD at once, which is most of the cost of a
    /// request/response loop. libevent's documented caveat: fds cloned with dup() and watched
    /// through both numbers can confuse it.
    ///
    /// Fails (with errno where the system set it) when out of descriptors or memory.
    pub fn new() -> Result<EventBase, Option<Errno>> {
        // libevent treats failing to make its signal socketpair as fatal and exits the process,
        // so the descriptors a base needs are tried first.
        let signal_pair_bound = os::probe_base_descriptors().map_err(Some)?;
        Errno::clear();
        // SAFETY: the config is made, used and freed here; libevent copies what it needs.
        let base = unsafe {
            let config = ffi::event_config_new();
            if config.is_null() {
                return Err(Errno::set());
            }
            ffi::event_config_set_flag(
                config,
                ffi::event_base_config_flag_EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST as _,
            );
            let base = ffi::event_base_new_with_config(config);
            ffi::event_config_free(config);
            base
        };
        NonNull::new(base)
            .map(|raw| EventBase {
                raw,
                signal_pair_bound,
            })
            .ok_or_else(Errno::set)
    }

    fn raw(&self) -> *mut event_base {
        self.raw.as_ptr()
    }

    /// Whether libevent's signal socketpair (made with the base, watched once a signal event
    /// is added) has descriptors below `limit`; false may be a false alarm at the limit's edge.
    pub fn signal_descriptors_below(&self, limit: usize) -> bool {
        usize::try_from(self.signal_pair_bound).is_ok_and(|fd| fd < limit)
    }

    /// Runs the loop: 0 when it exited normally, 1 when no events were left, -1 on error.
    /// libevent's DNS code runs inside, so the thread's reserve serves its reply callbacks
    /// (see [`DNS_REPLY_CALLBACK_SIZE`]).
    pub fn dispatch(&self) -> c_int {
        // SAFETY: the base is alive while `self` is.
        reserve::armed(DNS_REPLIES, || unsafe {
            ffi::event_base_loop(self.raw(), 0)
        })
    }

    /// Makes a running loop return after the current callback.
    pub fn break_loop(&self) {
        // SAFETY: as for dispatch.
        unsafe { ffi::event_base_loopbreak(self.raw()) };
    }

    /// Whether the running loop was told to return after the current callback (loopbreak, or
    /// a callback's error).
    pub fn is_breaking(&self) -> bool {
        // SAFETY: as for dispatch.
        unsafe { ffi::event_base_got_break(self.raw()) != 0 }
    }

    /// Makes the loop return after `after` (or once the current callbacks have run). 0 on success.
    pub fn exit_loop(&self, after: Option<Micros>) -> c_int {
        let timeval = after.map(to_timeval);
        // SAFETY: as for dispatch; libevent copies the timeval.
        unsafe { ffi::event_base_loopexit(self.raw(), timeval_ptr(&timeval)) }
    }

    /// The backend's name ("epoll", "poll", "select", "kqueue", ...).
    pub fn method(&self) -> &'static str {
        // SAFETY: as for dispatch; the name is a static string of the backend.
        unsafe { CStr::from_ptr(ffi::event_base_get_method(self.raw())) }
            .to_str()
            .unwrap_or("?")
    }
}

impl Drop for EventBase {
    fn drop(&mut self) {
        // SAFETY: the last owner is going away, so no event or bufferevent refers to the base
        // any more. A bufferevent freed since the last loop round may still wait for its
        // finalizer, which event_base_free skips (it would leak): one non-blocking round runs
        // it first. No Lua callback runs in it (see LoopSlot: none is set).
        reserve::armed(DNS_REPLIES, || unsafe {
            ffi::event_base_loop(self.raw(), ffi::EVLOOP_NONBLOCK as c_int);
            ffi::event_base_free(self.raw());
        })
    }
}

// ------------------------------------------------------------------------------ event ----

/// The signature libevent calls plain events back with.
pub type EventCallback = unsafe extern "C" fn(ffi::evutil_socket_t, c_short, *mut c_void);

/// libevent's `struct event`, inside the object that owns it. All zeroes until assigned.
#[repr(transparent)]
pub struct Event(UnsafeCell<ffi::event>);

impl Event {
    pub fn unassigned() -> Event {
        // SAFETY: an all-zero struct event is what libevent's own static initializers make:
        // not assigned to any base, so every call below refuses it.
        Event(UnsafeCell::new(unsafe { std::mem::zeroed() }))
    }

    fn raw(&self) -> *mut ffi::event {
        self.0.get()
    }

    /// The fields are read in place rather than through libevent's accessors (event_get_base,
    /// event_get_fd, event_get_events): three calls into the shared library saved on every
    /// callback. The module embeds `struct event` by value already, so it relies on the layout
    /// anyway (checked when the module loads, see `event_layout_matches`).
    #[inline]
    fn fields(&self) -> &ffi::event {
        // SAFETY: our own struct event, which libevent changes only inside libevent calls on
        // this thread; the reference does not outlive the read it is made for.
        unsafe { &*self.raw() }
    }

    #[inline]
    fn is_assigned_to(&self, base: &EventBase) -> bool {
        self.fields().ev_base == base.raw()
    }

    /// Assigns the event (or re-targets it), always persistent. False when libevent refuses
    /// the mask.
    ///
    /// # Safety
    /// The event is not pending (never added, or deleted). `arg` stays valid for `callback`
    /// until the event is deleted, and the event's own memory does not move or go until then.
    pub unsafe fn assign(
        &self,
        base: &EventBase,
        fd: c_int,
        events: c_short,
        callback: EventCallback,
        arg: *const c_void,
    ) -> bool {
        // SAFETY: per the contract; `base` is alive.
        unsafe {
            ffi::event_assign(
                self.raw(),
                base.raw(),
                fd,
                events | EV_PERSIST,
                Some(callback),
                arg as *mut c_void,
            ) == 0
        }
    }

    /// Registers the event with an optional timeout. Fails for an event not assigned to `base`.
    #[inline]
    pub fn add(&self, base: &EventBase, timeout: Option<Micros>) -> Result<(), Option<Errno>> {
        if !self.is_assigned_to(base) {
            return Err(None);
        }
        let timeval = timeout.map(to_timeval);
        // SAFETY: assigned to `base`, which is alive; libevent copies the timeval.
        match unsafe { ffi::event_add(self.raw(), timeval_ptr(&timeval)) } {
            0 => Ok(()),
            // It fails in a system call or an allocation, both of which set errno (not cleared
            // first: this runs for every re-armed timer).
            _ => Err(Some(Errno::last()).filter(|errno| errno.0 != 0)),
        }
    }

    /// Removes the event from its base (nothing happens if it is not pending or not assigned
    /// to `base`).
    #[inline]
    pub fn delete(&self, base: &EventBase) {
        if self.is_assigned_to(base) {
            // SAFETY: assigned to `base`, which is alive; deleting a non-pending event is a no-op.
            unsafe { ffi::event_del(self.raw()) };
        }
    }

    /// The fd (or signal number) the event is assigned to.
    #[inline]
    pub fn fd(&self) -> c_int {
        self.fields().ev_fd
    }

    /// The mask the event is assigned with, without EV_PERSIST.
    #[inline]
    pub fn events(&self) -> c_short {
        self.fields().ev_events & !EV_PERSIST
    }
}

// ------------------------------------------------------------------------------ timer ----

/// A one-shot timer of libevent's own allocation, freed (and so cancelled) when dropped: for
/// the retries and deadlines the module keeps beside a Lua object.
pub struct Timer(NonNull<ffi::event>);

impl Timer {
    /// A timer on `base`, not yet started. None when memory is short.
    ///
    /// # Safety
    /// `arg` stays valid for `callback` until the timer is dropped, which happens before
    /// `base` goes.
    pub unsafe fn new(
        base: &EventBase,
        callback: EventCallback,
        arg: *const c_void,
    ) -> Option<Timer> {
        // SAFETY: `base` is alive; fd -1 with no events makes a pure timer.
        NonNull::new(unsafe {
            ffi::event_new(base.raw(), -1, 0, Some(callback), arg as *mut c_void)
        })
        .map(Timer)
    }

    /// Starts (or restarts) the timer to fire once after `after`. 0 on success.
    pub fn start(&self, after: Micros) -> c_int {
        let timeval = to_timeval(after);
        // SAFETY: the event is ours and alive; libevent copies the timeval.
        unsafe { ffi::event_add(self.0.as_ptr(), &timeval) }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: ours, freed once; event_free removes it first, and is safe inside its own
        // callback (libevent reads nothing of an event after calling it back).
        unsafe { ffi::event_free(self.0.as_ptr()) };
    }
}

// --------------------------------------------------------------------------- listener ----

/// The signature libevent calls back with each accepted socket (owned by the callback).
pub type AcceptCallback =
    unsafe extern "C" fn(*mut ffi::evconnlistener, c_int, *mut libc::sockaddr, c_int, *mut c_void);
/// The signature of the listener's accept-error callback (errno holds the error).
pub type AcceptErrorCallback = unsafe extern "C" fn(*mut ffi::evconnlistener, *mut c_void);

/// An evconnlistener, owned: it closes its listening socket when dropped.
pub struct Listener(NonNull<ffi::evconnlistener>);

impl Listener {
    /// Accepts on `fd` (a bound, listening, non-blocking socket, owned from here on, even on
    /// failure). Accepted sockets are non-blocking and close-on-exec. Err (errno where set)
    /// when memory is short.
    ///
    /// # Safety
    /// `arg` stays valid for both callbacks until the listener is dropped, which happens
    /// before `base` goes.
    pub unsafe fn new(
        base: &EventBase,
        fd: c_int,
        accepted: AcceptCallback,
        failed: AcceptErrorCallback,
        arg: *const c_void,
    ) -> Result<Listener, Option<Errno>> {
        Errno::clear();
        let flags = ffi::LEV_OPT_CLOSE_ON_FREE | ffi::LEV_OPT_CLOSE_ON_EXEC;
        // SAFETY: `base` is alive; backlog 0 means the socket listens already.
        let raw = unsafe {
            ffi::evconnlistener_new(base.raw(), Some(accepted), arg as *mut c_void, flags, 0, fd)
        };
        let Some(raw) = NonNull::new(raw) else {
            let errno = Errno::set();
            os::close(fd);
            return Err(errno);
        };
        // SAFETY: just made.
        unsafe { ffi::evconnlistener_set_error_cb(raw.as_ptr(), Some(failed)) };
        Ok(Listener(raw))
    }

    /// 0 on success.
    pub fn enable(&self) -> c_int {
        // SAFETY: ours and alive.
        unsafe { ffi::evconnlistener_enable(self.0.as_ptr()) }
    }

    /// 0 on success.
    pub fn disable(&self) -> c_int {
        // SAFETY: ours and alive.
        unsafe { ffi::evconnlistener_disable(self.0.as_ptr()) }
    }

    pub fn fd(&self) -> c_int {
        // SAFETY: ours and alive.
        unsafe { ffi::evconnlistener_get_fd(self.0.as_ptr()) }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: ours, freed once. Inside its own accept callback libevent holds a reference
        // and frees it only once the callback has returned.
        unsafe { ffi::evconnlistener_free(self.0.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------- evbuffer ----

/// A new, empty evbuffer, owned by the caller (free it with [`free_buffer`]). None when out of
/// memory.
pub fn new_buffer() -> Option<NonNull<evbuffer>> {
    // SAFETY: no preconditions.
    NonNull::new(unsafe { ffi::evbuffer_new() })
}

/// Frees an evbuffer made by [`new_buffer`].
///
/// # Safety
/// `buffer` came from `new_buffer`, is freed once, and is not used afterwards.
pub unsafe fn free_buffer(buffer: NonNull<evbuffer>) {
    // SAFETY: per the contract.
    unsafe { ffi::evbuffer_free(buffer.as_ptr()) }
}

/// A live evbuffer, for the lifetime `'a`.
#[derive(Clone, Copy)]
pub struct BufferRef<'a> {
    raw: NonNull<evbuffer>,
    _alive: PhantomData<&'a evbuffer>,
}

impl<'a> BufferRef<'a> {
    /// # Safety
    /// `raw` is a live evbuffer, and stays so for `'a`.
    pub unsafe fn new(raw: NonNull<evbuffer>) -> BufferRef<'a> {
        BufferRef {
            raw,
            _alive: PhantomData,
        }
    }

    fn raw(self) -> *mut evbuffer {
        self.raw.as_ptr()
    }

    pub fn as_non_null(self) -> NonNull<evbuffer> {
        self.raw
    }

    #[inline]
    pub fn is(self, other: BufferRef<'_>) -> bool {
        self.raw == other.raw
    }

    #[inline]
    pub fn len(self) -> usize {
        // SAFETY: live for 'a (constructor).
        unsafe { ffi::evbuffer_get_length(self.raw()) }
    }

    /// Appends a copy of `bytes`. False when libevent refuses (out of memory, or the end of a
    /// bufferevent's input buffer, which only its socket fills).
    pub fn add(self, bytes: &[u8]) -> bool {
        // SAFETY: live (constructor); libevent copies the bytes.
        unsafe { ffi::evbuffer_add(self.raw(), bytes.as_ptr() as *const c_void, bytes.len()) == 0 }
    }

    /// Moves every byte of `from` to the end of this buffer. False when libevent refuses, and
    /// for a buffer added to itself.
    pub fn add_buffer(self, from: BufferRef<'_>) -> bool {
        // SAFETY: both live (constructors) and distinct.
        !self.is(from) && unsafe { ffi::evbuffer_add_buffer(self.raw(), from.raw()) == 0 }
    }

    /// Copies bytes from position `offset` into `out` without consuming them; returns how many.
    /// Reads libevent's chunks in place (evbuffer_peek): no allocation, and it works on a
    /// bufferevent's output buffer too, whose frozen start evbuffer_copyout refuses.
    #[inline]
    pub fn copy_out(self, offset: usize, out: &mut [MaybeUninit<u8>]) -> usize {
        // No clamp to the length first: past the end, setting the position fails and peeking
        // finds fewer bytes, and the copy stops there.
        let count = out.len();
        let mut copied = 0;
        while copied < count {
            let mut position = MaybeUninit::<ffi::evbuffer_ptr>::zeroed();
            let mut chunks: [MaybeUninit<ffi::iovec>; 8] = [MaybeUninit::zeroed(); 8];
            // SAFETY: live (constructor); libevent refuses a position past the end, and
            // evbuffer_peek fills at most 8 iovecs pointing into the buffer's chunks,
            // which stay put until the buffer is next changed (not before this loop ends). A
            // null start (the common case: from the front) spares walking the chunks to it.
            let filled = unsafe {
                let start = if offset + copied == 0 {
                    ptr::null_mut()
                } else {
                    let at = offset + copied;
                    if ffi::evbuffer_ptr_set(
                        self.raw(),
                        position.as_mut_ptr(),
                        at,
                        ffi::evbuffer_ptr_how_EVBUFFER_PTR_SET,
                    ) != 0
                    {
                        break;
                    }
                    position.as_mut_ptr()
                };
                let needed = ffi::evbuffer_peek(
                    self.raw(),
                    (count - copied) as isize,
                    start,
                    chunks.as_mut_ptr() as *mut ffi::iovec,
                    8,
                );
                needed.clamp(0, 8) as usize
            };
            let before = copied;
            for chunk in &chunks[..filled] {
                // SAFETY: written by evbuffer_peek above (`filled` of them).
                let chunk = unsafe { chunk.assume_init() };
                let take = chunk.iov_len.min(count - copied);
                // SAFETY: the chunk holds `iov_len` readable bytes; `out` has room past `copied`.
                unsafe {
                    ptr::copy_nonoverlapping(
                        chunk.iov_base as *const u8,
                        out.as_mut_ptr().add(copied) as *mut u8,
                        take,
                    )
                };
                copied += take;
            }
            // Nothing more there (the end of the buffer, or only empty chunks): done.
            if copied == before {
                break;
            }
        }
        copied
    }

    /// Where the next line ends (libevent's EOL_ANY: any run of CR and LF): the line's length
    /// and the length of its end, or `None` when no line end is there yet.
    #[inline]
    pub fn find_line(self) -> Option<(usize, usize)> {
        let mut eol_len = 0usize;
        // SAFETY: live (constructor); a null start searches from the beginning.
        let found = unsafe {
            ffi::evbuffer_search_eol(
                self.raw(),
                ptr::null_mut(),
                &mut eol_len,
                ffi::evbuffer_eol_style_EVBUFFER_EOL_ANY,
            )
        };
        usize::try_from(found.pos).ok().map(|line| (line, eol_len))
    }

    /// Removes the first `count` bytes (all of them when there are fewer). False when libevent
    /// refuses: a bufferevent's output buffer gives its data only to its socket.
    #[inline]
    pub fn drain(self, count: usize) -> bool {
        // SAFETY: live (constructor).
        unsafe { ffi::evbuffer_drain(self.raw(), count) == 0 }
    }

    /// Reads up to `len` bytes from `fd` (a negative `len` lets libevent choose): bytes read,
    /// 0 at end of file, -1 on error.
    pub fn read(self, fd: c_int, len: c_int) -> c_int {
        // SAFETY: live (constructor); a bad fd only makes read(2) fail.
        unsafe { ffi::evbuffer_read(self.raw(), fd, len) }
    }

    /// Writes as much as `fd` takes, draining it: bytes written or -1.
    pub fn write(self, fd: c_int) -> c_int {
        // SAFETY: live (constructor); a bad fd only makes write(2) fail.
        unsafe { ffi::evbuffer_write(self.raw(), fd) }
    }
}

// ---------------------------------------------------------------- libevent's memory ----

/// Whether [`install_memory_functions`] installed the module's memory functions.
static MEMORY_FUNCTIONS_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Points libevent's memory functions at ones that forward to malloc, realloc and free, and
/// fall back on the calling thread's emergency reserve (see reserve.rs) when malloc fails during
/// a call the module armed it for. Process-wide, so done once, when the module is first
/// loaded and before it makes any base; never changed afterwards.
///
/// A host that installs memory functions of its own sets LUAEVENT_KEEP_MEM_FUNCTIONS in the
/// environment: they are then left alone (and the reserve is never drawn on).
pub fn install_memory_functions() {
    static DONE: AtomicBool = AtomicBool::new(false);
    once_per_process(&DONE, || {
        // SAFETY: a NUL-terminated name; getenv allocates nothing.
        if !unsafe { libc::getenv(c"LUAEVENT_KEEP_MEM_FUNCTIONS".as_ptr()) }.is_null() {
            return;
        }
        // SAFETY: the three functions form a consistent allocator (every block, reserve ones
        // included, comes from malloc), so blocks libevent got before this call from its
        // default (the C library's malloc) may be freed or resized through them; libevent only
        // stores the pointers.
        unsafe {
            ffi::event_set_mem_functions(
                Some(memory_malloc),
                Some(memory_realloc),
                Some(memory_free),
            )
        };
        MEMORY_FUNCTIONS_INSTALLED.store(true, Ordering::Relaxed);
    });
}

unsafe extern "C" fn memory_malloc(size: usize) -> *mut c_void {
    // SAFETY: plain malloc.
    let block = unsafe { libc::malloc(size) };
    if block.is_null() {
        return reserve::take(size);
    }
    reserve::top_up_one();
    block
}

unsafe extern "C" fn memory_realloc(block: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: libevent passes a block from these functions or its default (all from malloc),
    // or null.
    unsafe { libc::realloc(block, size) }
}

unsafe extern "C" fn memory_free(block: *mut c_void) {
    // SAFETY: as for memory_realloc.
    unsafe { libc::free(block) }
}

/// Runs `call` (a libevent call that uses one of its small allocations unchecked) with the
/// thread's reserve armed for it. None, without calling, when the reserve has no block (malloc
/// has nothing left). Without the module's memory functions (LUAEVENT_KEEP_MEM_FUNCTIONS) the
/// reserve cannot serve libevent: `call` runs as it would in any libevent program.
fn with_reserve<R>(call: impl FnOnce() -> R) -> Option<R> {
    if !MEMORY_FUNCTIONS_INSTALLED.load(Ordering::Relaxed) {
        return Some(call());
    }
    if reserve::fill() == 0 {
        return None;
    }
    Some(reserve::armed(Serve::AnySmall, call))
}

// ------------------------------------------------------------------------- bufferevent ----

/// The read/write callback signature of bufferevents.
pub type BuffereventDataCallback = unsafe extern "C" fn(*mut ffi::bufferevent, *mut c_void);
/// The event (error, end of file, timeout) callback signature of bufferevents.
pub type BuffereventEventCallback =
    unsafe extern "C" fn(*mut ffi::bufferevent, c_short, *mut c_void);
/// The signature of evbuffer change callbacks.
pub type BufferChangeCallback =
    unsafe extern "C" fn(*mut evbuffer, *const ffi::evbuffer_cb_info, *mut c_void);

/// Whether a bufferevent closes its socket when freed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// The user's descriptor (`bufferevent.new`): left open, as the C module does.
    Lent,
    /// A socket the module made (accepted or connected): closed with the bufferevent.
    Owned,
}

/// A socket bufferevent on `base` with its three callbacks set; `fd` may be -1 (a socket set
/// later, see [`BuffereventRef::connect_socket`]). None (with errno where set) on failure; an
/// owned socket is then still the caller's to close.
///
/// # Safety
/// `arg` stays valid for the callbacks until the bufferevent is freed with
/// [`free_bufferevent`], which must happen before `base` goes.
pub unsafe fn new_bufferevent(
    base: &EventBase,
    fd: c_int,
    socket: Socket,
    read: BuffereventDataCallback,
    write: BuffereventDataCallback,
    event: BuffereventEventCallback,
    arg: *const c_void,
) -> Result<NonNull<ffi::bufferevent>, Option<Errno>> {
    Errno::clear();
    let options = match socket {
        Socket::Lent => 0,
        Socket::Owned => ffi::bufferevent_options_BEV_OPT_CLOSE_ON_FREE as c_int,
    };
    // SAFETY: `base` is alive.
    let raw = NonNull::new(unsafe { ffi::bufferevent_socket_new(base.raw(), fd, options) })
        .ok_or_else(Errno::set)?;
    // SAFETY: just made; `arg` per the contract.
    unsafe {
        ffi::bufferevent_setcb(
            raw.as_ptr(),
            Some(read),
            Some(write),
            Some(event),
            arg as *mut c_void,
        )
    };
    Ok(raw)
}

/// Frees a bufferevent; safe inside its own callbacks (libevent holds a reference while it
/// runs them and clears the callbacks at once, so none fires afterwards).
///
/// # Safety
/// `raw` came from [`new_bufferevent`], is freed once and not used afterwards.
pub unsafe fn free_bufferevent(raw: NonNull<ffi::bufferevent>) {
    // SAFETY: per the contract. A TLS socket bufferevent (an SSL, nothing beneath) hands its
    // reaper chunk to its input first, to free its SSL and socket with it (see
    // `new_tls_socket`); should libevent refuse the move (it only does for a frozen buffer, which
    // that input never is), they are left rather than freed under libevent's feet.
    unsafe {
        let ssl = ffi::bufferevent_openssl_get_ssl(raw.as_ptr());
        if !ssl.is_null() && ffi::bufferevent_get_underlying(raw.as_ptr()).is_null() {
            let reaper = openssl_sys::SSL_get_ex_data(ssl, REAPER_SLOT) as *mut evbuffer;
            if !reaper.is_null() {
                openssl_sys::SSL_set_ex_data(ssl, REAPER_SLOT, ptr::null_mut());
                let input = ffi::bufferevent_get_input(raw.as_ptr());
                if ffi::evbuffer_add_buffer(input, reaper) == 0 {
                    ffi::evbuffer_free(reaper);
                }
            }
        }
        ffi::bufferevent_free(raw.as_ptr())
    }
}

/// A live bufferevent, for the lifetime `'a`.
#[derive(Clone, Copy)]
pub struct BuffereventRef<'a> {
    raw: NonNull<ffi::bufferevent>,
    _alive: PhantomData<&'a ffi::bufferevent>,
}

impl<'a> BuffereventRef<'a> {
    /// # Safety
    /// `raw` is a live bufferevent, and stays so for `'a`.
    pub unsafe fn new(raw: NonNull<ffi::bufferevent>) -> BuffereventRef<'a> {
        BuffereventRef {
            raw,
            _alive: PhantomData,
        }
    }

    #[inline]
    pub fn raw(self) -> *mut ffi::bufferevent {
        self.raw.as_ptr()
    }

    pub fn input(self) -> BufferRef<'a> {
        // SAFETY: live (constructor); a bufferevent's buffers live as long as it does.
        unsafe {
            BufferRef::new(NonNull::new_unchecked(ffi::bufferevent_get_input(
                self.raw(),
            )))
        }
    }

    pub fn output(self) -> BufferRef<'a> {
        // SAFETY: as for input.
        unsafe {
            BufferRef::new(NonNull::new_unchecked(ffi::bufferevent_get_output(
                self.raw(),
            )))
        }
    }

    pub fn fd(self) -> c_int {
        // SAFETY: live (constructor).
        unsafe { ffi::bufferevent_getfd(self.raw()) }
    }

    /// Hands `fd`, a non-blocking socket whose connect() is under way (or done), to the
    /// bufferevent, which reports BEV_EVENT_CONNECTED once it is writable without error, or
    /// BEV_EVENT_ERROR (errno set to the socket's error) when the connection failed. Output
    /// written meanwhile is sent once connected. Err when libevent refuses (out of memory):
    /// the bufferevent then has no socket, and `fd` is the caller's again.
    pub fn connect_socket(self, fd: c_int) -> Result<(), Option<Errno>> {
        Errno::clear();
        // SAFETY: live (constructor); with no address given, libevent only watches `fd`.
        let result = unsafe {
            ffi::bufferevent_setfd(self.raw(), fd);
            ffi::bufferevent_socket_connect(self.raw(), ptr::null(), 0)
        };
        if result == 0 {
            return Ok(());
        }
        let errno = Errno::set();
        self.release_socket();
        Err(errno)
    }

    /// Takes the socket out of the bufferevent (its events removed), leaving it without one;
    /// returns it, or -1 if there was none. The caller closes it.
    pub fn release_socket(self) -> c_int {
        let fd = self.fd();
        // SAFETY: live (constructor); setting -1 only removes the socket's events.
        unsafe { ffi::bufferevent_setfd(self.raw(), -1) };
        fd
    }

    /// 0 on success.
    pub fn enable(self, events: c_short) -> c_int {
        // SAFETY: live (constructor).
        unsafe { ffi::bufferevent_enable(self.raw(), events) }
    }

    /// 0 on success.
    pub fn disable(self, events: c_short) -> c_int {
        // SAFETY: live (constructor).
        unsafe { ffi::bufferevent_disable(self.raw(), events) }
    }

    /// EV_READ, EV_WRITE or both: what is enabled, whatever libevent has suspended.
    pub fn enabled(self) -> c_short {
        // SAFETY: live (constructor).
        unsafe { ffi::bufferevent_get_enabled(self.raw()) }
    }

    pub fn is_reading(self) -> bool {
        self.enabled() & EV_READ != 0
    }

    /// Sets the watermarks of one direction. None when memory is short (nothing is changed).
    ///
    /// libevent 2.1 makes an input-buffer callback the first time a read high watermark is set,
    /// and uses it without checking the allocation (a write through a null pointer when memory
    /// is short): the thread's reserve serves it should malloc fail (see [`with_reserve`]).
    pub fn set_watermark(self, events: c_short, low: usize, high: usize) -> Option<()> {
        // SAFETY: live (constructor).
        let set = || unsafe { ffi::bufferevent_setwatermark(self.raw(), events, low, high) };
        if events & EV_READ != 0 && high > 0 {
            with_reserve(set)
        } else {
            set();
            Some(())
        }
    }

    /// The read watermarks: (low, high), 0 meaning none.
    pub fn read_watermarks(self) -> (usize, usize) {
        let (mut low, mut high) = (0usize, 0usize);
        // SAFETY: live (constructor); libevent writes both sizes.
        unsafe { ffi::bufferevent_getwatermark(self.raw(), EV_READ, &mut low, &mut high) };
        (low, high)
    }

    /// The read and write timeouts last set (`None`: none).
    pub fn timeouts(self) -> (Option<Micros>, Option<Micros>) {
        let micros = |t: &ffi::timeval| {
            (t.tv_sec != 0 || t.tv_usec != 0)
                .then(|| t.tv_sec as Micros * 1_000_000 + t.tv_usec as Micros)
        };
        // SAFETY: live (constructor). `timeout_read` and `timeout_write` are public fields of
        // libevent's `struct bufferevent` (event2/bufferevent_struct.h, whose layout the
        // bindings take from the system's headers), where bufferevent_set_timeouts keeps the
        // timeouts, cleared for none; plain reads of them.
        unsafe {
            let raw = self.raw();
            (micros(&(*raw).timeout_read), micros(&(*raw).timeout_write))
        }
    }

    /// The write watermarks: (low, high), 0 meaning none.
    pub fn write_watermarks(self) -> (usize, usize) {
        let (mut low, mut high) = (0usize, 0usize);
        // SAFETY: live (constructor); libevent writes both sizes.
        unsafe { ffi::bufferevent_getwatermark(self.raw(), EV_WRITE, &mut low, &mut high) };
        (low, high)
    }

    /// Read and write timeouts; `None` disables one. 0 on success.
    pub fn set_timeouts(self, read: Option<Micros>, write: Option<Micros>) -> c_int {
        let (read, write) = (read.map(to_timeval), write.map(to_timeval));
        // SAFETY: live (constructor); libevent copies the timevals.
        unsafe {
            ffi::bufferevent_set_timeouts(self.raw(), timeval_ptr(&read), timeval_ptr(&write))
        }
    }

    /// Schedules the read callback for the next loop round (it still needs the read low
    /// watermark). A deferred callback holds a reference on the bufferevent, and freeing it
    /// clears the callbacks, so the call never reaches a freed one.
    pub fn trigger_read_later(self) {
        // SAFETY: live (constructor).
        unsafe {
            ffi::bufferevent_trigger(
                self.raw(),
                EV_READ,
                ffi::bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS as c_int,
            )
        }
    }

    /// Schedules the write callback for the next loop round (as `trigger_read_later`).
    pub fn trigger_write_later(self) {
        // SAFETY: live (constructor).
        unsafe {
            ffi::bufferevent_trigger(
                self.raw(),
                ffi::EV_WRITE,
                ffi::bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS as c_int,
            )
        }
    }

    /// Schedules the event callback with `what` for the next loop round, as libevent itself
    /// reports an error (the same caveats as [`BuffereventRef::trigger_read_later`]).
    pub fn trigger_event_later(self, what: c_short) {
        // SAFETY: live (constructor).
        unsafe {
            ffi::bufferevent_trigger_event(
                self.raw(),
                what,
                ffi::bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS as c_int,
            )
        }
    }

    /// Runs the write callback now if the output is at or below the write low watermark, as
    /// libevent does after each write to the socket.
    ///
    /// # Safety
    /// The callback may free the bufferevent (libevent holds a reference until it returns):
    /// the caller uses no view of it afterwards without checking that it is still open.
    pub unsafe fn trigger_write_now(self) {
        // SAFETY: live (constructor); what the callback does is the caller's (contract).
        unsafe { ffi::bufferevent_trigger(self.raw(), ffi::EV_WRITE, 0) }
    }

    /// Reads up to `room` bytes from the socket onto the end of the input with one readv, as
    /// libevent's own read does (it unfreezes the input's end, frozen outside its reads, for
    /// the time of the read). Bytes read, 0 at end of file, or the errno of a failed readv
    /// (EAGAIN included).
    pub fn read_more(self, room: usize) -> Result<usize, Errno> {
        let (fd, input) = (self.fd(), self.input().raw());
        // SAFETY: the input is live (the bufferevent is). The iovecs come from
        // evbuffer_reserve_space and are committed with no more than readv wrote into them.
        unsafe {
            let mut vecs: [ffi::iovec; 2] = std::mem::zeroed();
            ffi::evbuffer_unfreeze(input, 0);
            let count = ffi::evbuffer_reserve_space(input, room as isize, vecs.as_mut_ptr(), 2);
            if count <= 0 {
                ffi::evbuffer_freeze(input, 0);
                return Ok(0);
            }
            let count = count as usize;
            // Never read more than `room`, even if libevent reserved more.
            let mut left = room;
            for vec in vecs.iter_mut().take(count) {
                vec.iov_len = vec.iov_len.min(left);
                left -= vec.iov_len;
            }
            let read = libc::readv(fd, vecs.as_ptr() as *const libc::iovec, count as c_int);
            let failure = (read < 0).then(Errno::last);
            let mut keep = read.max(0) as usize;
            for vec in vecs.iter_mut().take(count) {
                vec.iov_len = vec.iov_len.min(keep);
                keep -= vec.iov_len;
            }
            ffi::evbuffer_commit_space(input, vecs.as_mut_ptr(), count as c_int);
            ffi::evbuffer_freeze(input, 0);
            failure.map_or(Ok(read.max(0) as usize), Err)
        }
    }

    /// Whether libevent is waiting for the socket to become writable to write the output:
    /// output is queued, and writing is enabled and not suspended (the write event is added).
    pub fn write_pending(self) -> bool {
        // SAFETY: live (constructor). `ev_write` is a field of libevent's public struct
        // bufferevent (event2/bufferevent_struct.h); event_pending only reads it.
        let event = unsafe { &raw const (*self.raw()).ev_write };
        // SAFETY: as above.
        unsafe { ffi::event_pending(event, ffi::EV_WRITE, ptr::null_mut()) != 0 }
    }

    /// Stops a TLS layer's write timeout once its output is empty. libevent 2.1's OpenSSL
    /// filter starts the timeout when bytes are queued on an empty output but never stops it
    /// when they have gone, so it fired on a connection with nothing left to write. (The
    /// ciphertext still beneath keeps a write timeout of its own: see `set_timeouts`.) Nothing
    /// happens for any other bufferevent, or while output is queued.
    pub fn stop_idle_write_timeout(self) {
        if self.underlying().is_none() || self.output().len() != 0 {
            return;
        }
        // SAFETY: live (constructor). A filter's `ev_write` (a field of the public struct
        // bufferevent) is only its write timer (libevent's generic timeouts), which the filter
        // adds again when bytes are next queued on an empty output; deleting it is what
        // libevent's own timeout adjustment does for an empty output.
        unsafe { ffi::event_del(&raw mut (*self.raw()).ev_write) };
    }

    /// Writes the output to the socket now, as libevent's own write callback does once the
    /// socket is writable: one writev of at most what libevent would write at once (its
    /// output's start, frozen outside its writes, is unfrozen for the time of the write).
    /// When that empties the output, the write event is removed, as libevent removes it.
    /// Bytes written (0: writev returned 0), or the errno of a failed writev (EAGAIN
    /// included). The write callback is the caller's to run ([`Self::trigger_write_now`]).
    pub fn write_now(self) -> Result<usize, Errno> {
        let (fd, output) = (self.fd(), self.output().raw());
        // SAFETY: live (constructor), and so its output and its write event (a field of the
        // public struct bufferevent); a bad fd only makes writev fail.
        unsafe {
            let most = ffi::bufferevent_get_max_to_write(self.raw());
            ffi::evbuffer_unfreeze(output, 1);
            let written = ffi::evbuffer_write_atmost(output, fd, most);
            let failure = (written < 0).then(Errno::last);
            ffi::evbuffer_freeze(output, 1);
            if ffi::evbuffer_get_length(output) == 0 {
                ffi::event_del(&raw mut (*self.raw()).ev_write);
            }
            failure.map_or(Ok(written.max(0) as usize), Err)
        }
    }

    /// Adds an enabled change callback to the input buffer. None when out of memory.
    ///
    /// # Safety
    /// `arg` stays valid for `callback` until the entry is removed with
    /// [`BuffereventRef::remove_input_callback`].
    pub unsafe fn add_input_callback(
        self,
        callback: BufferChangeCallback,
        arg: *const c_void,
    ) -> Option<NonNull<ffi::evbuffer_cb_entry>> {
        // SAFETY: live (constructor); `arg` per the contract.
        NonNull::new(unsafe {
            ffi::evbuffer_add_cb(self.input().raw(), Some(callback), arg as *mut c_void)
        })
    }

    /// Turns an input change callback on or off without removing it.
    ///
    /// # Safety
    /// `entry` came from `add_input_callback` on this bufferevent and was not removed.
    pub unsafe fn set_input_callback_enabled(
        self,
        entry: NonNull<ffi::evbuffer_cb_entry>,
        enabled: bool,
    ) {
        // SAFETY: per the contract.
        unsafe {
            if enabled {
                ffi::evbuffer_cb_set_flags(
                    self.input().raw(),
                    entry.as_ptr(),
                    ffi::EVBUFFER_CB_ENABLED,
                );
            } else {
                ffi::evbuffer_cb_clear_flags(
                    self.input().raw(),
                    entry.as_ptr(),
                    ffi::EVBUFFER_CB_ENABLED,
                );
            }
        }
    }

    /// # Safety
    /// As for `set_input_callback_enabled`; the entry is not used afterwards.
    pub unsafe fn remove_input_callback(self, entry: NonNull<ffi::evbuffer_cb_entry>) {
        // SAFETY: per the contract.
        unsafe { ffi::evbuffer_remove_cb_entry(self.input().raw(), entry.as_ptr()) };
    }
}

// ------------------------------------------------------------------ TLS over a bufferevent ----

/// Which end of the handshake a TLS layer plays.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TlsSide {
    Client,
    Server,
}

/// Why no TLS layer was made.
pub enum TlsLayerFailure {
    /// The bufferevent beneath is as it was (callbacks included).
    Kept,
    /// libevent freed the bufferevent beneath on its error path: it must not be used again.
    Gone,
}

/// Keeps libevent_openssl loaded for the rest of the process. Its first filter makes a BIO
/// method that it keeps in a static and never frees; when Lua unloads this module at
/// `lua_close`, the dynamic loader would unload libevent_openssl with it and the method would
/// be lost, once per load of the module (valgrind: 108 bytes definitely lost). Pinned, the
/// method is made once and reused by every later load. Nothing to do when libevent is linked
/// into this module itself (the address then resolves to our own file), nor when the loader
/// cannot say (the pin only saves those bytes).
fn pin_libevent_openssl() {
    let mut theirs = MaybeUninit::<libc::Dl_info>::zeroed();
    let mut ours = MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables and fills the structs it is given; the file
    // names it points them to belong to the loader and stay valid while the objects are loaded,
    // which they are (we run inside one, and call into the other). dlopen with RTLD_NOLOAD only
    // takes a reference on an object already loaded; the handle is kept for good on purpose.
    unsafe {
        let filter = ffi::bufferevent_openssl_filter_new as *const c_void;
        let own = pin_libevent_openssl as fn() as *const c_void;
        if libc::dladdr(filter, theirs.as_mut_ptr()) == 0
            || libc::dladdr(own, ours.as_mut_ptr()) == 0
        {
            return;
        }
        let (theirs, ours) = (theirs.assume_init(), ours.assume_init());
        if theirs.dli_fname.is_null() || theirs.dli_fbase == ours.dli_fbase {
            return;
        }
        libc::dlopen(
            theirs.dli_fname,
            libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        );
    }
}

/// The read, write and event callbacks a TLS bufferevent is made with.
pub type TlsCallbacks = (
    BuffereventDataCallback,
    BuffereventDataCallback,
    BuffereventEventCallback,
);

impl TlsSide {
    /// libevent's state for a TLS bufferevent whose handshake starts on this side.
    fn handshake_state(self) -> c_int {
        match self {
            TlsSide::Client => ffi::BUFFEREVENT_SSL_CONNECTING,
            TlsSide::Server => ffi::BUFFEREVENT_SSL_ACCEPTING,
        }
    }
}

/// [`pin_libevent_openssl`] has run.
static PINNED: Once = Once::new();

/// Puts a TLS layer (libevent's OpenSSL filter) over `underlying`, a socket bufferevent, with
/// the three callbacks set on the layer. Bytes already in `underlying`'s output go out first;
/// bytes already in its input are the first the handshake reads. The handshake starts with
/// [`BuffereventRef::start_handshake`].
///
/// The layer owns `ssl` and `underlying` (`BEV_OPT_CLOSE_ON_FREE`): freeing the layer frees
/// both, once libevent's last reference is gone, so never under a running callback. A peer that
/// closes without a close notice ends as end of file (`SSL_OP_IGNORE_UNEXPECTED_EOF` and
/// libevent's dirty-shutdown switch, libevent/libevent#1288).
///
/// On failure `ssl` is freed; whether `underlying` survived is said (libevent's error path
/// frees it once it has taken its reference, see libevent/libevent#1774).
///
/// # Safety
/// As for [`new_bufferevent`]: `arg` stays valid until the layer is freed, before `base` goes.
/// `underlying` is a live bufferevent on `base` that nothing else frees from now on (on success).
pub unsafe fn new_tls_layer(
    base: &EventBase,
    underlying: BuffereventRef<'_>,
    ssl: crate::openssl::Ssl,
    side: TlsSide,
    (read, write, event): TlsCallbacks,
    arg: *const c_void,
) -> Result<NonNull<ffi::bufferevent>, TlsLayerFailure> {
    let state = side.handshake_state();
    let options = ffi::bufferevent_options_BEV_OPT_CLOSE_ON_FREE as c_int;
    PINNED.call_once(pin_libevent_openssl);
    let raw_ssl = ssl.into_raw().as_ptr();
    // SAFETY: `raw_ssl` is ours until the call takes it (it frees it on failure too, as
    // CLOSE_ON_FREE asks). The extra reference keeps `underlying`'s memory valid across the
    // call whatever its error path does, so that its callbacks can be read back afterwards.
    unsafe {
        ffi::SSL_set_options(raw_ssl, openssl_sys::SSL_OP_IGNORE_UNEXPECTED_EOF);
        ffi::bufferevent_incref(underlying.raw());
        // libevent 2.1 crashes on its own error path when one of the new bufferevent's buffers
        // cannot be allocated (it frees the half-made bufferevent through operations not set
        // yet): the reserve serves those.
        let Some(layer) = with_reserve(|| {
            ffi::bufferevent_openssl_filter_new(
                base.raw(),
                underlying.raw(),
                raw_ssl,
                state,
                options,
            )
        }) else {
            openssl_sys::SSL_free(raw_ssl);
            ffi::bufferevent_decref(underlying.raw());
            return Err(TlsLayerFailure::Kept);
        };
        let Some(layer) = NonNull::new(layer) else {
            let mut event_callback: ffi::bufferevent_event_cb = None;
            let (mut r, mut w, mut a): (
                ffi::bufferevent_data_cb,
                ffi::bufferevent_data_cb,
                *mut c_void,
            ) = (None, None, ptr::null_mut());
            ffi::bufferevent_getcb(
                underlying.raw(),
                &mut r,
                &mut w,
                &mut event_callback,
                &mut a,
            );
            // bufferevent_free clears the callbacks: a bufferevent that lost them was freed.
            let gone = event_callback.is_none();
            ffi::bufferevent_decref(underlying.raw());
            return Err(if gone {
                TlsLayerFailure::Gone
            } else {
                TlsLayerFailure::Kept
            });
        };
        ffi::bufferevent_decref(underlying.raw());
        ffi::bufferevent_openssl_set_allow_dirty_shutdown(layer.as_ptr(), 1);
        ffi::bufferevent_setcb(
            layer.as_ptr(),
            Some(read),
            Some(write),
            Some(event),
            arg as *mut c_void,
        );
        Ok(layer)
    }
}

/// Puts TLS on the socket of `plain`, a connected socket bufferevent, itself: a new
/// bufferevent of libevent_openssl that reads and writes the socket through OpenSSL
/// (`bufferevent_openssl_socket_new`), with the three callbacks set on it; `plain` is freed
/// (without closing the socket) and must not be used again. What `plain`'s output holds is
/// moved to the new bufferevent, sent once the handshake is done; its input must be empty. The
/// handshake starts with the first loop round (libevent waits for the socket to be writable).
///
/// The new bufferevent owns `ssl` and the socket, but not through `BEV_OPT_CLOSE_ON_FREE`:
/// libevent 2.1's error path for that option hands OpenSSL a null SSL (`SSL_get_wbio(NULL)`,
/// a crash under OpenSSL 3) when an allocation fails once the bufferevent is half made.
/// Instead a one-byte reference chunk, whose cleanup frees the SSL and closes the socket, waits
/// in a buffer of its own (the SSL's app data) until [`free_bufferevent`] moves it into the
/// bufferevent's input: libevent frees that chunk with the input in the bufferevent's
/// finalizer, after every callback that could still use the SSL or the socket has returned and
/// the socket's events are gone (what `BEV_OPT_CLOSE_ON_FREE` would do at that point). A peer
/// that closes without a close notice ends as end of file, as for [`new_tls_layer`].
///
/// On failure `plain` is as it was and `ssl` is freed (its socket left open).
///
/// # Safety
/// As for [`new_bufferevent`]: `arg` stays valid until the new bufferevent is freed with
/// [`free_bufferevent`], before `base` goes. `plain` is a live socket bufferevent on `base`
/// that nothing else frees or uses after a success.
pub unsafe fn new_tls_socket(
    base: &EventBase,
    plain: BuffereventRef<'_>,
    ssl: crate::openssl::Ssl,
    side: TlsSide,
    (read, write, event): TlsCallbacks,
    arg: *const c_void,
) -> Result<NonNull<ffi::bufferevent>, TlsLayerFailure> {
    let state = side.handshake_state();
    let fd = plain.fd();
    if fd < 0 {
        return Err(TlsLayerFailure::Kept);
    }
    PINNED.call_once(pin_libevent_openssl);
    let raw_ssl = ssl.as_ptr();
    // SAFETY: `ssl` is ours (freed by its drop on every failure below, with the BIO it was
    // given; the BIO does not close the socket). `plain` and `base` are live (contract). The
    // reaper buffer holds no reference chunk until the last step that can fail, so freeing it
    // on the way out frees nothing else.
    unsafe {
        let reaper = NonNull::new(ffi::evbuffer_new()).ok_or(TlsLayerFailure::Kept)?;
        let give_up = |layer: Option<NonNull<ffi::bufferevent>>| {
            openssl_sys::SSL_set_ex_data(raw_ssl, REAPER_SLOT, ptr::null_mut());
            if let Some(layer) = layer {
                ffi::bufferevent_free(layer.as_ptr());
            }
            ffi::evbuffer_free(reaper.as_ptr());
            TlsLayerFailure::Kept
        };
        // The BIO is made here rather than by libevent, whose own would go unchecked: an SSL
        // without one would leave the socket to nobody.
        let bio = openssl_sys::BIO_new_socket(fd, 0);
        if bio.is_null() {
            ffi::evbuffer_free(reaper.as_ptr());
            return Err(TlsLayerFailure::Kept);
        }
        openssl_sys::SSL_set_bio(raw_ssl, bio, bio);
        if openssl_sys::SSL_set_ex_data(raw_ssl, REAPER_SLOT, reaper.as_ptr().cast()) != 1 {
            return Err(give_up(None));
        }
        ffi::SSL_set_options(raw_ssl, openssl_sys::SSL_OP_IGNORE_UNEXPECTED_EOF);
        // The reserve serves the new bufferevent's buffers, as for `new_tls_layer`.
        let made =
            with_reserve(|| ffi::bufferevent_openssl_socket_new(base.raw(), fd, raw_ssl, state, 0));
        let Some(layer) = made.and_then(NonNull::new) else {
            return Err(give_up(None));
        };
        // The socket bufferevent keeps its output's front frozen except while it writes.
        let (from, to) = (
            plain.output().raw(),
            ffi::bufferevent_get_output(layer.as_ptr()),
        );
        ffi::evbuffer_unfreeze(from, 1);
        let carried = ffi::evbuffer_add_buffer(to, from) == 0;
        if !carried {
            ffi::evbuffer_freeze(from, 1);
            return Err(give_up(Some(layer)));
        }
        if ffi::evbuffer_add_reference(
            reaper.as_ptr(),
            REAPER_MARK.as_ptr().cast(),
            REAPER_MARK.len(),
            Some(release_tls_socket),
            raw_ssl.cast(),
        ) != 0
        {
            // Back where it was (no allocation: chunks are moved).
            ffi::evbuffer_add_buffer(from, to);
            ffi::evbuffer_freeze(from, 1);
            return Err(give_up(Some(layer)));
        }
        ffi::evbuffer_freeze(from, 1);
        let ssl = ssl.into_raw(); // the reaper's from now on
        debug_assert_eq!(ssl.as_ptr(), raw_ssl);
        ffi::bufferevent_openssl_set_allow_dirty_shutdown(layer.as_ptr(), 1);
        ffi::bufferevent_setcb(
            layer.as_ptr(),
            Some(read),
            Some(write),
            Some(event),
            arg as *mut c_void,
        );
        // The socket is the new bufferevent's now: `plain` lets go of it, unclosed.
        plain.release_socket();
        ffi::bufferevent_free(plain.raw());
        Ok(layer)
    }
}

/// The SSL's ex_data slot that holds a TLS socket bufferevent's reaper buffer: its app data
/// (index 0, which OpenSSL keeps for the application; nothing else in the module uses it).
const REAPER_SLOT: c_int = 0;

/// The reference chunk's bytes (never read: the chunk only waits to be freed).
static REAPER_MARK: [u8; 1] = [0];

/// The cleanup of a TLS socket bufferevent's reference chunk (see [`new_tls_socket`]): frees
/// the SSL and closes its socket (-1 once the socket was taken out, see
/// [`BuffereventRef::release_socket`]).
unsafe extern "C" fn release_tls_socket(_data: *const c_void, _len: usize, ssl: *mut c_void) {
    let ssl = ssl as *mut openssl_sys::SSL;
    // SAFETY: `ssl` is the one `new_tls_socket` gave the chunk, which owns it; libevent frees
    // the chunk once, after the bufferevent's last use of it.
    unsafe {
        let fd = ffi::SSL_get_fd(ssl);
        openssl_sys::SSL_free(ssl);
        if fd >= 0 {
            os::close(fd);
        }
    }
}

impl<'a> BuffereventRef<'a> {
    /// The connection of a TLS layer; None for any other bufferevent.
    pub fn ssl(self) -> Option<NonNull<openssl_sys::SSL>> {
        // SAFETY: live (constructor); libevent checks the bufferevent's type and returns null
        // for one that is not a TLS layer.
        NonNull::new(unsafe { ffi::bufferevent_openssl_get_ssl(self.raw()) })
    }

    /// Takes a new TLS layer's first handshake step: libevent starts a filter's handshake only
    /// when the bufferevent beneath reports something, which a quiet connection never does. A
    /// client's hello goes into the output beneath, sent from there; a server that has not heard
    /// from its peer yet waits. True when that step failed (the caller reports it).
    pub fn start_handshake(self) -> bool {
        let Some(ssl) = self.ssl().filter(|_| self.underlying().is_some()) else {
            return false;
        };
        let raw_ssl = ssl.as_ptr();
        // SAFETY: a live layer and its SSL, whose BIO is the bufferevent beneath.
        unsafe {
            // The handshake's first step (a client's hello; nothing for a server that has not
            // heard from its peer yet), written into the output beneath; libevent takes it from
            // there when the peer answers.
            openssl_sys::ERR_clear_error();
            let step = openssl_sys::SSL_do_handshake(raw_ssl);
            if step == 1 {
                return false;
            }
            let error = openssl_sys::SSL_get_error(raw_ssl, step);
            error != openssl_sys::SSL_ERROR_WANT_READ && error != openssl_sys::SSL_ERROR_WANT_WRITE
        }
    }

    /// The bufferevent beneath a TLS layer (live as long as the layer).
    pub fn underlying(self) -> Option<BuffereventRef<'a>> {
        // SAFETY: live (constructor); the layer holds a reference on the one beneath.
        NonNull::new(unsafe { ffi::bufferevent_get_underlying(self.raw()) })
            .map(|raw| unsafe { BuffereventRef::new(raw) })
    }

    /// The read, write and event callbacks and their argument, as set.
    fn callbacks(
        self,
    ) -> (
        ffi::bufferevent_data_cb,
        ffi::bufferevent_data_cb,
        ffi::bufferevent_event_cb,
        *mut c_void,
    ) {
        let (mut r, mut w, mut e, mut a) = (None, None, None, ptr::null_mut());
        // SAFETY: live (constructor); bufferevent_getcb only reads them.
        unsafe { ffi::bufferevent_getcb(self.raw(), &mut r, &mut w, &mut e, &mut a) };
        (r, w, e, a)
    }

    /// Replaces the read callback, keeping the other two and the argument; returns the one it
    /// replaced (None if there was none, and then nothing is changed).
    pub fn replace_read_callback(
        self,
        read: BuffereventDataCallback,
    ) -> Option<BuffereventDataCallback> {
        let (r, w, e, a) = self.callbacks();
        let previous = r?;
        // SAFETY: live (constructor); the callbacks and argument are put back as they were, the
        // read one aside, which the caller vouches for with the same argument.
        unsafe { ffi::bufferevent_setcb(self.raw(), Some(read), w, e, a) };
        Some(previous)
    }

    /// The write callback and the callbacks' argument.
    pub fn write_callback(self) -> (Option<BuffereventDataCallback>, *mut c_void) {
        let (_, w, _, a) = self.callbacks();
        (w, a)
    }

    /// Replaces the write callback, keeping the other two and the argument; returns the one it
    /// replaced (None if there was none, and then nothing is changed).
    pub fn replace_write_callback(
        self,
        write: BuffereventDataCallback,
    ) -> Option<BuffereventDataCallback> {
        let (r, w, e, a) = self.callbacks();
        let previous = w?;
        // SAFETY: live (constructor); the callbacks and argument are put back as they were, the
        // write one aside, which the caller vouches for with the same argument.
        unsafe { ffi::bufferevent_setcb(self.raw(), r, Some(write), e, a) };
        Some(previous)
    }

    /// The TLS layer's errors since the last call, first to last (0: none left).
    pub fn next_tls_error(self) -> std::ffi::c_ulong {
        // SAFETY: live (constructor); for a bufferevent that is not a TLS layer it returns 0.
        unsafe { ffi::bufferevent_get_openssl_error(self.raw()) }
    }

    /// Sends a TLS close notice, where the handshake was done, at once and without blocking,
    /// behind what the layer has already encrypted (best effort: a peer that has gone or a full
    /// socket buffer loses it, as closing a plain bufferevent loses its unsent output). For a
    /// TLS layer about to be freed. A filter encrypts its output as it comes; a TLS socket
    /// bufferevent waits for the socket to be writable, so what its output holds is written
    /// first here, as far as the socket takes it.
    pub fn send_close_notice(self) {
        let Some(ssl) = self.ssl() else {
            return;
        };
        let beneath = self.underlying();
        // SAFETY: the layer is live, so is its SSL (and the bufferevent beneath, if any);
        // SSL_write and SSL_shutdown write through libevent's BIO into the output beneath, sent
        // from there, or on a TLS socket bufferevent to the socket itself (non-blocking). The
        // chunk peeked stays put until the output is drained.
        unsafe {
            if openssl_sys::SSL_is_init_finished(ssl.as_ptr()) != 1 {
                return;
            }
            openssl_sys::ERR_clear_error();
            if beneath.is_none() {
                let output = self.output();
                while output.len() > 0 {
                    let mut chunk = MaybeUninit::<ffi::iovec>::zeroed();
                    if ffi::evbuffer_peek(output.raw(), -1, ptr::null_mut(), chunk.as_mut_ptr(), 1)
                        < 1
                    {
                        break;
                    }
                    let chunk = chunk.assume_init();
                    let len = c_int::try_from(chunk.iov_len).unwrap_or(c_int::MAX);
                    let written = openssl_sys::SSL_write(ssl.as_ptr(), chunk.iov_base, len);
                    if written <= 0 {
                        break;
                    }
                    output.drain(written as usize);
                }
            }
            openssl_sys::SSL_shutdown(ssl.as_ptr());
            openssl_sys::ERR_clear_error();
        }
        let Some(beneath) = beneath else { return };
        let fd = beneath.fd();
        if fd >= 0 {
            let output = beneath.output().raw();
            // SAFETY: a socket bufferevent keeps its output's front frozen except while it
            // writes itself; do as it does.
            unsafe { ffi::evbuffer_unfreeze(output, 1) };
            beneath.output().write(fd);
            // SAFETY: as above.
            unsafe { ffi::evbuffer_freeze(output, 1) };
        }
    }
}

// ------------------------------------------------------------------------------- evdns ----

/// An evdns base (libevent's resolver), owned: freed only by [`DnsBase::free`], which its
/// owner calls once libevent holds no lookup of it any more (see dns.rs for why that matters).
pub struct DnsBase(NonNull<ffi::evdns_base>);

/// libevent's callback for [`DnsBase::getaddrinfo`]: (error code, owned address list, argument).
pub type LookupCallback = unsafe extern "C" fn(c_int, *mut ffi::addrinfo, *mut c_void);

/// A lookup libevent is working on.
pub type LookupRequest = NonNull<ffi::evdns_getaddrinfo_request>;

impl DnsBase {
    /// A resolver on `base` that never keeps the loop running while it has nothing to do. With
    /// `system`, it reads /etc/resolv.conf (and through it /etc/hosts). None when out of memory.
    pub fn new(base: &EventBase, system: bool) -> Option<DnsBase> {
        let mut flags = ffi::EVDNS_BASE_DISABLE_WHEN_INACTIVE;
        if system {
            flags |= ffi::EVDNS_BASE_INITIALIZE_NAMESERVERS;
        }
        // SAFETY: `base` is alive; the resolver is freed before it (its owner's contract).
        NonNull::new(unsafe { ffi::evdns_base_new(base.raw(), flags as c_int) }).map(DnsBase)
    }

    fn raw(&self) -> *mut ffi::evdns_base {
        self.0.as_ptr()
    }

    /// Adds a name server. False when libevent refuses (out of memory or descriptors).
    pub fn add_nameserver(&self, address: std::net::SocketAddr) -> bool {
        let (storage, len) = sockaddr_of(address);
        // SAFETY: alive while `self` is; libevent copies the address.
        unsafe {
            ffi::evdns_base_nameserver_sockaddr_add(
                self.raw(),
                &storage as *const _ as *const ffi::sockaddr,
                len,
                0,
            ) == 0
        }
    }

    /// Sets an option as resolv.conf's `options` line would ("timeout:", "attempts:", ...).
    pub fn set_option(&self, name: &CStr, value: &CStr) -> bool {
        // SAFETY: alive; libevent copies what it keeps.
        unsafe { ffi::evdns_base_set_option(self.raw(), name.as_ptr(), value.as_ptr()) == 0 }
    }

    /// How many name servers it has (each with a socket of its own).
    pub fn nameserver_count(&self) -> usize {
        // SAFETY: alive.
        unsafe { ffi::evdns_base_count_nameservers(self.raw()) }.max(0) as usize
    }

    /// Forgets every hosts-file entry.
    pub fn clear_hosts(&self) {
        // SAFETY: alive.
        unsafe { ffi::evdns_base_clear_host_addresses(self.raw()) }
    }

    /// Reads a hosts file (None: the system's). Fails with errno when it cannot be read.
    pub fn load_hosts(&self, path: Option<&CStr>) -> Result<(), Option<Errno>> {
        Errno::clear();
        // SAFETY: alive; the path is read during the call.
        match unsafe {
            ffi::evdns_base_load_hosts(self.raw(), path.map_or(ptr::null(), |p| p.as_ptr()))
        } {
            0 => Ok(()),
            _ => Err(Errno::set()),
        }
    }

    /// Starts a lookup of `name` (`family`: AF_INET, AF_INET6 or AF_UNSPEC) for TCP addresses.
    /// libevent calls `callback` exactly once with `arg` (an out-of-memory failure inside
    /// libevent's loop aside), possibly before this returns (literal addresses, hosts-file
    /// names, failures to start): then the result is None.
    ///
    /// # Safety
    /// `arg` stays valid for `callback` until it is called, and the resolver is not freed
    /// while a lookup is outstanding.
    pub unsafe fn getaddrinfo(
        &self,
        name: &CStr,
        family: c_int,
        callback: LookupCallback,
        arg: *const c_void,
    ) -> Option<LookupRequest> {
        // SAFETY: an all-zero addrinfo is a valid hints value (no flags, no pointers).
        let mut hints: ffi::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_family = family;
        // One entry per address: with no socket type libevent makes a TCP and a UDP one.
        hints.ai_socktype = libc::SOCK_STREAM;
        hints.ai_protocol = libc::IPPROTO_TCP;
        // SAFETY: alive; libevent copies the name and the hints; `arg` per the contract.
        NonNull::new(unsafe {
            ffi::evdns_getaddrinfo(
                self.raw(),
                name.as_ptr(),
                ptr::null(),
                &hints,
                Some(callback),
                arg as *mut c_void,
            )
        })
    }

    /// Frees the resolver (any lookup still queued ends without its callback).
    ///
    /// # Safety
    /// libevent holds no lookup of this resolver (every callback ran), no callback of libevent
    /// scheduled for it is pending, and the event base is still alive.
    pub unsafe fn free(self) {
        // SAFETY: per the contract.
        unsafe { ffi::evdns_base_free(self.raw(), 0) }
    }
}

/// Cancels a lookup: libevent then calls its callback (later, from the loop) with
/// EVUTIL_EAI_CANCEL, or with the answer that was already on its way.
///
/// # Safety
/// `request` came from [`DnsBase::getaddrinfo`] and its callback has not run yet.
pub unsafe fn cancel_lookup(request: LookupRequest) {
    // libevent 2.1 allocates the deferred callback of each half (A and AAAA) of the lookup it
    // cancels without a fallback: when that fails the half is freed but still referenced, and a
    // later timeout or cancel uses it (an assertion failure or a use after free). The thread's
    // reserve serves those allocations should malloc fail.
    // SAFETY: per the contract: libevent still owns the request.
    reserve::armed(DNS_REPLIES, || unsafe {
        ffi::evdns_getaddrinfo_cancel(request.as_ptr())
    });
}

/// The size of libevent 2.1's deferred DNS reply callback (`struct deferred_reply_callback` in
/// evdns.c), which it allocates each time a DNS request ends (answered, timed out, cancelled)
/// and drops the request on failure, leaving the lookup's half and a name server's probe
/// pointing at freed memory. The mirror below follows evdns.c's layout; the targeted fault run
/// (tests/faults/run.sh, FAILALLOC_SIZE) checks that this is the size libevent asks for.
pub const DNS_REPLY_CALLBACK_SIZE: usize = std::mem::size_of::<DeferredReplyCallback>();

const _: () = assert!(
    DNS_REPLY_CALLBACK_SIZE <= reserve::BLOCK_SIZE,
    "a reserve block must hold a DNS reply callback"
);

/// What the thread's reserve serves while libevent runs DNS code it may end requests in.
pub const DNS_REPLIES: Serve = Serve::Exactly(DNS_REPLY_CALLBACK_SIZE);

#[allow(dead_code)] // a layout, never made
#[repr(C)]
struct DeferredReplyCallback {
    deferred: ffi::event_callback,
    handle: *mut c_void,
    request_type: u8,
    have_reply: u8,
    ttl: u32,
    err: u32,
    user_callback: Option<unsafe extern "C" fn()>,
    reply: DnsReply,
}

#[allow(dead_code)]
#[repr(C)]
struct DnsReply {
    kind: u32,
    have_answer: u32, // a one-bit field in an unsigned int
    data: DnsReplyData,
}

#[allow(dead_code)]
#[repr(C)]
union DnsReplyData {
    a: (u32, [u32; 32]),
    aaaa: (u32, [[u32; 4]; 32]),
    ptr: [u8; 255],
}

/// The addresses a lookup found: libevent's list, freed on drop.
pub struct AddressList(NonNull<ffi::addrinfo>);

impl AddressList {
    /// # Safety
    /// `list` is an addrinfo list libevent handed over (to be freed with evutil_freeaddrinfo).
    pub unsafe fn adopt(list: *mut ffi::addrinfo) -> Option<AddressList> {
        NonNull::new(list).map(AddressList)
    }

    /// Every IPv4 and IPv6 address, in libevent's order (ports as libevent set them: 0).
    pub fn addresses(&self) -> impl Iterator<Item = std::net::SocketAddr> + '_ {
        let mut next = self.0.as_ptr() as *const ffi::addrinfo;
        std::iter::from_fn(move || {
            while !next.is_null() {
                // SAFETY: a node of the list, alive while `self` is.
                let node = unsafe { &*next };
                next = node.ai_next;
                // SAFETY: ai_addr points at ai_addrlen bytes of a socket address.
                if let Some(address) = unsafe {
                    socket_address(
                        node.ai_addr as *const libc::sockaddr,
                        node.ai_addrlen as usize,
                    )
                } {
                    return Some(address);
                }
            }
            None
        })
    }
}

impl Drop for AddressList {
    fn drop(&mut self) {
        // SAFETY: handed over by libevent (adopt), freed once.
        unsafe { ffi::evutil_freeaddrinfo(self.0.as_ptr()) }
    }
}

/// A socket address in the C form, with its length.
fn sockaddr_of(address: std::net::SocketAddr) -> (libc::sockaddr_storage, ffi::socklen_t) {
    // SAFETY: all zeroes is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match address {
        std::net::SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as ffi::socklen_t)
}

/// The IPv4 or IPv6 address in a C socket address; None for other families.
///
/// # Safety
/// `address` points at `len` readable bytes.
unsafe fn socket_address(
    address: *const libc::sockaddr,
    len: usize,
) -> Option<std::net::SocketAddr> {
    if address.is_null() || len < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: per the contract, and each form is read only when `len` covers it (read
    // unaligned: libevent's buffers carry no alignment promise).
    unsafe {
        match (*address).sa_family as c_int {
            libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
                let sin = ptr::read_unaligned(address as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(std::net::SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let sin6 = ptr::read_unaligned(address as *const libc::sockaddr_in6);
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

impl EventBase {
    /// One round of the loop that does not wait: runs what is ready (libevent's deferred
    /// callbacks among it). Only for a base no Lua loop can reach any more.
    pub fn run_ready(&self) {
        // SAFETY: the base is alive while `self` is.
        reserve::armed(DNS_REPLIES, || unsafe {
            ffi::event_base_loop(self.raw(), ffi::EVLOOP_NONBLOCK as c_int)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_dns_reply_callback_has_the_size_libevent_allocates() {
        // What libevent 2.1.12 asks for on x86_64 (seen by tests/faults/failalloc.c).
        assert_eq!(DNS_REPLY_CALLBACK_SIZE, 600);
    }

    #[test]
    fn a_log_line_is_kept_for_the_error_that_explains_it_then_dropped() {
        forget_log_lines();
        assert!(take_log_line().is_none());
        // A NUL-terminated string, as libevent passes.
        on_log_line(2, c"sigaction: Invalid argument".as_ptr());
        assert_eq!(
            take_log_line()
                .map(|line| line.as_str().to_owned())
                .as_deref(),
            Some("sigaction: Invalid argument")
        );
        assert!(take_log_line().is_none(), "taken once");
        let long = [b'x'; 300];
        let mut text = long.to_vec();
        text.push(0);
        on_log_line(2, text.as_ptr() as *const c_char);
        assert_eq!(
            take_log_line().map(|line| line.as_str().len()),
            Some(LOG_LINE)
        );
        on_log_line(2, c"stale".as_ptr());
        forget_log_lines();
        assert!(take_log_line().is_none());
    }
}
