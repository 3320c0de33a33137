//! Every touch of libevent, behind small functions with the safety argument written once.
//!
//! Pointers passed in are always ones this module got from libevent and has not freed yet;
//! the types that own them (`BaseShared`, `EventState`, `Buffer`) guarantee that.

use std::ffi::{c_int, c_short, c_void, CStr};
use std::ptr;

use libevent_sys as sys;
pub use sys::{event, event_base, evbuffer};

/// A file descriptor as libevent takes it (evutil_socket_t, a plain int on Unix).
pub type Fd = std::ffi::c_int;

/// The signature libevent calls back with for plain events.
pub type EventCallback = unsafe extern "C" fn(Fd, c_short, *mut c_void);

pub const EV_TIMEOUT: c_short = sys::EV_TIMEOUT as c_short;
pub const EV_READ: c_short = sys::EV_READ as c_short;
pub const EV_WRITE: c_short = sys::EV_WRITE as c_short;
pub const EV_SIGNAL: c_short = sys::EV_SIGNAL as c_short;
pub const EV_PERSIST: c_short = sys::EV_PERSIST as c_short;
pub const EV_ET: c_short = sys::EV_ET as c_short;
pub const EV_CLOSED: c_short = sys::EV_CLOSED as c_short;
pub const EVBUFFER_READ: c_short = sys::EVBUFFER_READ as c_short;
pub const EVBUFFER_WRITE: c_short = sys::EVBUFFER_WRITE as c_short;
pub const EVBUFFER_EOF: c_short = sys::EVBUFFER_EOF as c_short;
pub const EVBUFFER_ERROR: c_short = sys::EVBUFFER_ERROR as c_short;
pub const EVBUFFER_TIMEOUT: c_short = sys::EVBUFFER_TIMEOUT as c_short;

/// A timeout in whole microseconds, converted to libevent's `timeval` at the call.
pub type Micros = i64;

fn to_timeval(micros: Micros) -> sys::timeval {
    sys::timeval { tv_sec: (micros / 1_000_000) as _, tv_usec: (micros % 1_000_000) as _ }
}

pub fn version() -> String {
    // SAFETY: event_get_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::event_get_version()).to_string_lossy().into_owned() }
}

/// Whether the `struct event` layout these bindings were generated with is the one of the
/// libevent loaded at run time (events live inside Lua userdata, sized at build time).
pub fn event_layout_matches() -> bool {
    // SAFETY: no preconditions.
    std::mem::size_of::<event>() == unsafe { sys::event_get_struct_event_size() }
}

/// A new event base. On epoll it batches changes (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): an
/// event switching between EV_READ and EV_WRITE from its callback then costs one epoll_ctl(MOD)
/// at the next dispatch instead of a DEL and an ADD at once, which is most of the difference
/// in a request/response loop. libevent's documented caveat: fds cloned with dup() and watched
/// through both numbers can confuse it. Null on failure, which callers check.
pub fn base_new() -> *mut event_base {
    if !can_open_base_fds() {
        return ptr::null_mut();
    }
    // SAFETY: the config is created, used and freed here; libevent copies what it needs.
    unsafe {
        let config = sys::event_config_new();
        if config.is_null() {
            return ptr::null_mut();
        }
        sys::event_config_set_flag(config, sys::event_base_config_flag_EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST as _);
        let base = sys::event_base_new_with_config(config);
        sys::event_config_free(config);
        base
    }
}

/// Whether the process can open the descriptors an epoll base needs: the epoll fd and the
/// socketpair of its signal handling. libevent treats failing to make that socketpair as fatal
/// and calls exit(1), so this is asked first (by making and closing the same three fds).
fn can_open_base_fds() -> bool {
    // SAFETY: plain syscalls on descriptors made and closed here.
    unsafe {
        let epoll = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if epoll < 0 {
            return false;
        }
        let mut pair = [0 as c_int; 2];
        let ok = libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr()) == 0;
        if ok {
            libc::close(pair[0]);
            libc::close(pair[1]);
        }
        libc::close(epoll);
        ok
    }
}

/// Why epoll cannot watch `fd`, if it cannot: not open, or a regular file or directory (which
/// epoll refuses). With batched changes libevent would report this only at the next dispatch,
/// as a warning, leaving an event that never fires; addevent asks the kernel itself instead.
pub fn unwatchable_fd(fd: Fd) -> Option<&'static str> {
    // SAFETY: fstat writes into the zeroed struct we own; any integer is a valid argument.
    unsafe {
        let mut status: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut status) != 0 {
            return Some("is not open");
        }
        match status.st_mode & libc::S_IFMT {
            libc::S_IFREG => Some("is a regular file, which epoll cannot watch"),
            libc::S_IFDIR => Some("is a directory, which epoll cannot watch"),
            _ => None,
        }
    }
}

/// # Safety
/// `base` is live and no event of it is used afterwards.
pub unsafe fn base_free(base: *mut event_base) {
    // SAFETY: per the contract above.
    unsafe { sys::event_base_free(base) }
}

/// Runs what is already active without waiting, callbacks included: libevent finishes freeing
/// a bufferevent in a finalizer that only a loop runs.
pub unsafe fn base_run_pending(base: *mut event_base) {
    // SAFETY: `base` is live (caller).
    unsafe { sys::event_base_loop(base, sys::EVLOOP_NONBLOCK as c_int) };
}

/// Runs the loop: 0 when exited normally, 1 when no events were left, -1 on error.
pub unsafe fn base_loop(base: *mut event_base) -> c_int {
    // SAFETY: `base` is live (caller).
    unsafe { sys::event_base_loop(base, 0) }
}

pub unsafe fn base_loopbreak(base: *mut event_base) {
    // SAFETY: `base` is live (caller).
    unsafe { sys::event_base_loopbreak(base) };
}

pub unsafe fn base_loopexit(base: *mut event_base, after: Option<Micros>) -> c_int {
    let tv = after.map(to_timeval);
    // SAFETY: `base` is live (caller); the timeval is copied by libevent.
    unsafe { sys::event_base_loopexit(base, tv.as_ref().map_or(ptr::null(), |t| t as *const _)) }
}

pub unsafe fn base_method(base: *mut event_base) -> String {
    // SAFETY: `base` is live (caller); the backend name is a static string.
    unsafe { CStr::from_ptr(sys::event_base_get_method(base)).to_string_lossy().into_owned() }
}

/// Assigns (or re-targets) an event that is not pending (delete it first). 0 on success.
pub unsafe fn event_assign(
    ev: *mut event,
    base: *mut event_base,
    fd: Fd,
    events: c_short,
    callback: EventCallback,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: `ev` is live and not pending, `base` is live (caller).
    unsafe { sys::event_assign(ev, base, fd, events, Some(callback), arg) }
}

/// Registers an event with an optional timeout. 0 on success.
pub unsafe fn event_add(ev: *mut event, timeout: Option<Micros>) -> c_int {
    let tv = timeout.map(to_timeval);
    // SAFETY: `ev` is live (caller); libevent copies the timeval.
    unsafe { sys::event_add(ev, tv.as_ref().map_or(ptr::null(), |t| t as *const _)) }
}

/// The fd (or signal number) an event is assigned to.
pub unsafe fn event_fd(ev: *const event) -> Fd {
    // SAFETY: `ev` is assigned (caller).
    unsafe { sys::event_get_fd(ev) }
}

/// The mask an event is assigned with, EV_PERSIST included.
pub unsafe fn event_events(ev: *const event) -> c_short {
    // SAFETY: `ev` is assigned (caller).
    unsafe { sys::event_get_events(ev) }
}

/// The base an event is assigned to.
pub unsafe fn event_base_of(ev: *const event) -> *mut event_base {
    // SAFETY: `ev` is assigned (caller).
    unsafe { sys::event_get_base(ev) }
}

pub unsafe fn event_del(ev: *mut event) {
    // SAFETY: `ev` is live (caller); deleting a non-pending event is a no-op.
    unsafe { sys::event_del(ev) };
}

pub fn evbuffer_new() -> *mut evbuffer {
    // SAFETY: no preconditions; null only when out of memory.
    unsafe { sys::evbuffer_new() }
}

pub unsafe fn evbuffer_free(buffer: *mut evbuffer) {
    // SAFETY: `buffer` is an owned, live buffer never used again (caller).
    unsafe { sys::evbuffer_free(buffer) }
}

pub unsafe fn evbuffer_length(buffer: *mut evbuffer) -> usize {
    // SAFETY: `buffer` is live (caller).
    unsafe { sys::evbuffer_get_length(buffer) }
}

pub unsafe fn evbuffer_add(buffer: *mut evbuffer, bytes: &[u8]) -> c_int {
    // SAFETY: `buffer` is live (caller); libevent copies the bytes.
    unsafe { sys::evbuffer_add(buffer, bytes.as_ptr() as *const c_void, bytes.len()) }
}

/// Moves all bytes of `from` to the end of `to`.
pub unsafe fn evbuffer_add_buffer(to: *mut evbuffer, from: *mut evbuffer) -> c_int {
    // SAFETY: both live and distinct (caller).
    unsafe { sys::evbuffer_add_buffer(to, from) }
}

/// The first `len` bytes of the buffer as one contiguous slice, without consuming them.
/// libevent linearizes them in place if they span several chunks (no copy when they do not).
///
/// # Safety
/// `buffer` is live and `len` at most its length; the slice is only valid until the buffer is
/// next changed, so use it at once.
pub unsafe fn evbuffer_front<'a>(buffer: *mut evbuffer, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: per the contract above; pullup returns null only for 0 or too large a size.
    unsafe {
        let data = sys::evbuffer_pullup(buffer, len as isize);
        if data.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(data, len)
    }
}

/// Where the next line ends (libevent's EOL_ANY: any run of CR and LF): the line's length and
/// the length of its end, or `None` when no line end is there yet.
pub unsafe fn evbuffer_find_line(buffer: *mut evbuffer) -> Option<(usize, usize)> {
    let mut eol_len = 0usize;
    // SAFETY: `buffer` is live (caller); a null start searches from the beginning.
    let found = unsafe {
        sys::evbuffer_search_eol(buffer, ptr::null_mut(), &mut eol_len, sys::evbuffer_eol_style_EVBUFFER_EOL_ANY)
    };
    usize::try_from(found.pos).ok().map(|line| (line, eol_len))
}

/// Removes the first `len` bytes (clamped to the length). 0 on success, -1 when libevent
/// refuses: a bufferevent's output buffer is drained only by its socket.
pub unsafe fn evbuffer_drain(buffer: *mut evbuffer, len: usize) -> c_int {
    // SAFETY: `buffer` is live (caller); libevent clamps `len` to the length.
    unsafe { sys::evbuffer_drain(buffer, len) }
}

/// Reads up to `len` bytes from `fd` (a negative `len` lets libevent choose).
pub unsafe fn evbuffer_read(buffer: *mut evbuffer, fd: Fd, len: c_int) -> c_int {
    // SAFETY: `buffer` is live (caller); a bad fd only makes read(2) fail.
    unsafe { sys::evbuffer_read(buffer, fd, len) }
}

pub unsafe fn evbuffer_write(buffer: *mut evbuffer, fd: Fd) -> c_int {
    // SAFETY: `buffer` is live (caller); a bad fd only makes write(2) fail.
    unsafe { sys::evbuffer_write(buffer, fd) }
}

pub use sys::bufferevent;

/// The read/write callback signature of bufferevents.
pub type BufferEventDataCallback = unsafe extern "C" fn(*mut bufferevent, *mut c_void);
/// The event (error/EOF/timeout) callback signature of bufferevents.
pub type BufferEventEventCallback = unsafe extern "C" fn(*mut bufferevent, c_short, *mut c_void);

/// A socket bufferevent on `base` that leaves the fd open when freed. Null on failure.
pub unsafe fn bufferevent_socket_new(base: *mut event_base, fd: Fd) -> *mut bufferevent {
    // SAFETY: `base` is live (caller); options 0 means no BEV_OPT_CLOSE_ON_FREE.
    unsafe { sys::bufferevent_socket_new(base, fd, 0) }
}

/// Sets the three callbacks; `arg` must stay valid until the bufferevent is freed.
pub unsafe fn bufferevent_setcb(
    bev: *mut bufferevent,
    read: BufferEventDataCallback,
    write: BufferEventDataCallback,
    event: BufferEventEventCallback,
    arg: *mut c_void,
) {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_setcb(bev, Some(read), Some(write), Some(event), arg) }
}

/// Frees a bufferevent; safe inside its own callbacks (libevent holds a reference while it
/// runs them and clears the callbacks at once, so none fires afterwards).
pub unsafe fn bufferevent_free(bev: *mut bufferevent) {
    // SAFETY: `bev` is live and never used again (caller).
    unsafe { sys::bufferevent_free(bev) }
}

pub unsafe fn bufferevent_input(bev: *mut bufferevent) -> *mut evbuffer {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_get_input(bev) }
}

pub unsafe fn bufferevent_output(bev: *mut bufferevent) -> *mut evbuffer {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_get_output(bev) }
}

pub unsafe fn bufferevent_setwatermark(bev: *mut bufferevent, events: c_short, low: usize, high: usize) {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_setwatermark(bev, events, low, high) }
}

/// Read and write timeouts; `None` disables one.
pub unsafe fn bufferevent_set_timeouts(bev: *mut bufferevent, read: Option<Micros>, write: Option<Micros>) -> c_int {
    let read = read.map(to_timeval);
    let write = write.map(to_timeval);
    // SAFETY: `bev` is live (caller); libevent copies the timevals.
    unsafe {
        sys::bufferevent_set_timeouts(
            bev,
            read.as_ref().map_or(ptr::null(), |t| t as *const _),
            write.as_ref().map_or(ptr::null(), |t| t as *const _),
        )
    }
}

pub unsafe fn bufferevent_enable(bev: *mut bufferevent, events: c_short) -> c_int {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_enable(bev, events) }
}

pub unsafe fn bufferevent_disable(bev: *mut bufferevent, events: c_short) -> c_int {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_disable(bev, events) }
}

/// EV_READ, EV_WRITE or both: what is enabled, whatever libevent has suspended.
pub unsafe fn bufferevent_enabled(bev: *mut bufferevent) -> c_short {
    // SAFETY: `bev` is live (caller).
    unsafe { sys::bufferevent_get_enabled(bev) }
}

/// The read high watermark (0: none).
pub unsafe fn bufferevent_read_high_watermark(bev: *mut bufferevent) -> usize {
    let (mut low, mut high) = (0usize, 0usize);
    // SAFETY: `bev` is live (caller); libevent writes both sizes.
    unsafe { sys::bufferevent_getwatermark(bev, EV_READ, &mut low, &mut high) };
    high
}

/// Schedules the read callback for the next loop round (it still needs the read low watermark).
pub unsafe fn bufferevent_trigger_read_later(bev: *mut bufferevent) {
    // SAFETY: `bev` is live (caller). A deferred callback holds a reference on the bufferevent,
    // and bufferevent_free clears the callbacks, so it never reaches a freed one.
    unsafe { sys::bufferevent_trigger(bev, EV_READ, sys::bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS as c_int) }
}

pub use sys::evbuffer_cb_entry;
pub use sys::evbuffer_cb_info;

/// The signature of evbuffer change callbacks.
pub type EvbufferCallback = unsafe extern "C" fn(*mut evbuffer, *const evbuffer_cb_info, *mut c_void);

/// Adds an enabled change callback to `buffer`; null on failure. `arg` must stay valid until
/// the entry is removed.
pub unsafe fn evbuffer_add_callback(buffer: *mut evbuffer, callback: EvbufferCallback, arg: *mut c_void) -> *mut evbuffer_cb_entry {
    // SAFETY: `buffer` is live (caller).
    unsafe { sys::evbuffer_add_cb(buffer, Some(callback), arg) }
}

/// Turns a change callback on or off without freeing its entry.
pub unsafe fn evbuffer_callback_set_enabled(buffer: *mut evbuffer, entry: *mut evbuffer_cb_entry, enabled: bool) {
    // SAFETY: `entry` belongs to the live `buffer` (caller).
    unsafe {
        if enabled {
            sys::evbuffer_cb_set_flags(buffer, entry, sys::EVBUFFER_CB_ENABLED);
        } else {
            sys::evbuffer_cb_clear_flags(buffer, entry, sys::EVBUFFER_CB_ENABLED);
        }
    }
}

pub unsafe fn evbuffer_remove_callback(buffer: *mut evbuffer, entry: *mut evbuffer_cb_entry) {
    // SAFETY: `entry` belongs to the live `buffer` (caller) and is not used again.
    unsafe { sys::evbuffer_remove_cb_entry(buffer, entry) };
}

/// Reads what the bufferevent's socket already holds into its input buffer: up to `budget`
/// bytes with one readv, never past the read high watermark. libevent's own socket reads stop
/// at 4 KiB per wakeup (EVBUFFER_MAX_READ in 2.1), so a busy stream otherwise costs a loop
/// iteration and a Lua callback per 4 KiB. End of file and errors are left for libevent's next
/// read to report, as they would be without this.
pub unsafe fn bufferevent_read_ahead(bev: *mut bufferevent, budget: usize) {
    // SAFETY: `bev` is live (caller). The iovecs come from evbuffer_reserve_space and are
    // committed with no more than readv wrote into them.
    unsafe {
        let fd = sys::bufferevent_getfd(bev);
        if fd < 0 {
            return;
        }
        let input = sys::bufferevent_get_input(bev);
        let (mut low, mut high) = (0usize, 0usize);
        sys::bufferevent_getwatermark(bev, EV_READ, &mut low, &mut high);
        let mut room = budget;
        if high > 0 {
            room = room.min(high.saturating_sub(sys::evbuffer_get_length(input)));
        }
        if room == 0 {
            return;
        }
        let mut vecs: [sys::iovec; 2] = std::mem::zeroed();
        // A socket bufferevent keeps its input's end frozen except while it reads; do the same.
        sys::evbuffer_unfreeze(input, 0);
        let count = sys::evbuffer_reserve_space(input, room as isize, vecs.as_mut_ptr(), 2);
        if count <= 0 {
            sys::evbuffer_freeze(input, 0);
            return;
        }
        let count = count as usize;
        // Never read more than `room`, even if libevent reserved more.
        let mut left = room;
        for vec in vecs.iter_mut().take(count) {
            vec.iov_len = vec.iov_len.min(left);
            left -= vec.iov_len;
        }
        let read = libc::readv(fd, vecs.as_ptr() as *const libc::iovec, count as c_int);
        let mut keep = if read > 0 { read as usize } else { 0 };
        for vec in vecs.iter_mut().take(count) {
            vec.iov_len = vec.iov_len.min(keep);
            keep -= vec.iov_len;
        }
        sys::evbuffer_commit_space(input, vecs.as_mut_ptr(), count as c_int);
        sys::evbuffer_freeze(input, 0);
    }
}
