//! libevent's C API as this module uses it: libevent-sys's bindings under libevent's own names,
//! and the flag constants in the type the calls take. No logic here: the handles that make the
//! calls safe are in libevent.rs.

use std::ffi::{c_int, c_short, c_void};

use libevent_sys as sys;

pub use sys::{
    bufferevent, bufferevent_disable, bufferevent_enable, bufferevent_free,
    bufferevent_get_enabled, bufferevent_get_input, bufferevent_get_max_to_write,
    bufferevent_get_output, bufferevent_getfd, bufferevent_getwatermark, bufferevent_set_timeouts,
    bufferevent_setcb, bufferevent_setwatermark, bufferevent_socket_new, bufferevent_trigger,
    bufferevent_trigger_event, bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS, evbuffer,
    evbuffer_add, evbuffer_add_buffer, evbuffer_add_cb, evbuffer_cb_clear_flags, evbuffer_cb_entry,
    evbuffer_cb_info, evbuffer_cb_set_flags, evbuffer_commit_space, evbuffer_drain,
    evbuffer_eol_style_EVBUFFER_EOL_ANY, evbuffer_free, evbuffer_freeze, evbuffer_get_length,
    evbuffer_new, evbuffer_peek, evbuffer_ptr, evbuffer_ptr_how_EVBUFFER_PTR_SET, evbuffer_ptr_set,
    evbuffer_read, evbuffer_remove_cb_entry, evbuffer_reserve_space, evbuffer_search_eol,
    evbuffer_unfreeze, evbuffer_write, evbuffer_write_atmost, event, event_add, event_assign,
    event_base, event_base_config_flag_EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, event_base_free,
    event_base_get_method, event_base_got_break, event_base_loop, event_base_loopbreak,
    event_base_loopexit, event_base_new_with_config, event_callback, event_config_free,
    event_config_new, event_config_set_flag, event_del, event_get_struct_event_size,
    event_get_version, event_pending, event_set_log_callback, event_set_mem_functions, iovec,
    timeval, EVBUFFER_CB_ENABLED, EVLOOP_NONBLOCK,
};

// evdns: the asynchronous resolver (see dns.rs).
pub use sys::{
    addrinfo, evdns_base, evdns_base_clear_host_addresses, evdns_base_count_nameservers,
    evdns_base_free, evdns_base_load_hosts, evdns_base_nameserver_sockaddr_add, evdns_base_new,
    evdns_base_set_option, evdns_getaddrinfo, evdns_getaddrinfo_cancel, evdns_getaddrinfo_request,
    evutil_freeaddrinfo, EVDNS_BASE_DISABLE_WHEN_INACTIVE, EVDNS_BASE_INITIALIZE_NAMESERVERS,
    EVUTIL_EAI_AGAIN, EVUTIL_EAI_CANCEL, EVUTIL_EAI_MEMORY, EVUTIL_EAI_NODATA, EVUTIL_EAI_NONAME,
};
pub use sys::{sockaddr, socklen_t};

/// A socket as libevent takes it (`evutil_socket_t`: a plain int on Unix).
#[allow(non_camel_case_types)]
pub type evutil_socket_t = std::ffi::c_int;

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
pub const EVBUFFER_CONNECTED: c_short = sys::BEV_EVENT_CONNECTED as c_short;

// ----------------------------------------------------- sockets the module makes itself ----
// Accepted and connected sockets, and the timers beside them.
pub use sys::{
    bufferevent_options_BEV_OPT_CLOSE_ON_FREE, bufferevent_setfd, bufferevent_socket_connect,
    evbuffer_add_reference, event_free, event_new,
};

// ------------------------------------------------------------------- evconnlistener ----
// libevent-sys's bindings leave out <event2/listener.h>; these are its declarations (libevent
// 2.1, in libevent_core, which the crate links).

/// libevent's listener (opaque).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct evconnlistener {
    _opaque: [u8; 0],
}

/// Called with each accepted socket, which the callback then owns.
#[allow(non_camel_case_types)]
pub type evconnlistener_cb = Option<
    unsafe extern "C" fn(
        *mut evconnlistener,
        evutil_socket_t,
        *mut libc::sockaddr,
        c_int,
        *mut c_void,
    ),
>;
/// Called when accept() fails with an error that is not worth retrying at once.
#[allow(non_camel_case_types)]
pub type evconnlistener_errorcb = Option<unsafe extern "C" fn(*mut evconnlistener, *mut c_void)>;

/// Close the listening socket when the listener is freed.
pub const LEV_OPT_CLOSE_ON_FREE: u32 = 1 << 1;
/// Accepted sockets are close-on-exec.
pub const LEV_OPT_CLOSE_ON_EXEC: u32 = 1 << 2;

unsafe extern "C" {
    pub fn evconnlistener_new(
        base: *mut event_base,
        cb: evconnlistener_cb,
        ptr: *mut c_void,
        flags: u32,
        backlog: c_int,
        fd: evutil_socket_t,
    ) -> *mut evconnlistener;
    pub fn evconnlistener_free(lev: *mut evconnlistener);
    pub fn evconnlistener_enable(lev: *mut evconnlistener) -> c_int;
    pub fn evconnlistener_disable(lev: *mut evconnlistener) -> c_int;
    pub fn evconnlistener_get_fd(lev: *mut evconnlistener) -> evutil_socket_t;
    pub fn evconnlistener_set_error_cb(lev: *mut evconnlistener, errorcb: evconnlistener_errorcb);
}

// ------------------------------------------------------------------ bufferevent_openssl ----
// <event2/bufferevent_ssl.h> (libevent_openssl, which libevent-sys's `openssl` feature links),
// declared here with openssl-sys's SSL type.

/// `enum bufferevent_ssl_state`.
pub const BUFFEREVENT_SSL_CONNECTING: c_int = 1;
pub const BUFFEREVENT_SSL_ACCEPTING: c_int = 2;

/// The callbacks `bufferevent_getcb` reads back.
#[allow(non_camel_case_types)]
pub type bufferevent_data_cb = Option<unsafe extern "C" fn(*mut bufferevent, *mut c_void)>;
#[allow(non_camel_case_types)]
pub type bufferevent_event_cb =
    Option<unsafe extern "C" fn(*mut bufferevent, c_short, *mut c_void)>;

unsafe extern "C" {
    pub fn bufferevent_openssl_filter_new(
        base: *mut event_base,
        underlying: *mut bufferevent,
        ssl: *mut openssl_sys::SSL,
        state: c_int,
        options: c_int,
    ) -> *mut bufferevent;
    pub fn bufferevent_openssl_socket_new(
        base: *mut event_base,
        fd: evutil_socket_t,
        ssl: *mut openssl_sys::SSL,
        state: c_int,
        options: c_int,
    ) -> *mut bufferevent;
    pub fn bufferevent_openssl_get_ssl(bev: *mut bufferevent) -> *mut openssl_sys::SSL;
    pub fn bufferevent_get_openssl_error(bev: *mut bufferevent) -> std::ffi::c_ulong;
    pub fn bufferevent_openssl_set_allow_dirty_shutdown(bev: *mut bufferevent, allow: c_int);
    pub fn bufferevent_get_underlying(bev: *mut bufferevent) -> *mut bufferevent;
    pub fn bufferevent_incref(bev: *mut bufferevent);
    pub fn bufferevent_decref(bev: *mut bufferevent) -> c_int;
    /// OpenSSL 3.0's (a macro in 1.1).
    pub fn SSL_set_options(ssl: *mut openssl_sys::SSL, options: u64) -> u64;
    /// The socket of the connection's read BIO (-1: none).
    pub fn SSL_get_fd(ssl: *const openssl_sys::SSL) -> c_int;
    pub fn bufferevent_getcb(
        bev: *mut bufferevent,
        read: *mut bufferevent_data_cb,
        write: *mut bufferevent_data_cb,
        event: *mut bufferevent_event_cb,
        arg: *mut *mut c_void,
    );
}
