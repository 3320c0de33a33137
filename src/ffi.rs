//! libevent's C API as this module uses it: libevent-sys's bindings under libevent's own names,
//! and the flag constants in the type the calls take. No logic here: the handles that make the
//! calls safe are in libevent.rs.

use std::ffi::c_short;

use libevent_sys as sys;

pub use sys::{
    bufferevent, bufferevent_disable, bufferevent_enable, bufferevent_free, bufferevent_get_enabled,
    bufferevent_get_input, bufferevent_get_output, bufferevent_getfd, bufferevent_getwatermark, bufferevent_set_timeouts,
    bufferevent_setcb, bufferevent_setwatermark, bufferevent_socket_new, bufferevent_trigger, bufferevent_trigger_event,
    bufferevent_trigger_options_BEV_TRIG_DEFER_CALLBACKS, evbuffer, evbuffer_add, evbuffer_add_buffer, evbuffer_add_cb,
    evbuffer_cb_clear_flags, evbuffer_cb_entry, evbuffer_cb_info, evbuffer_cb_set_flags, evbuffer_commit_space,
    evbuffer_drain, evbuffer_eol_style_EVBUFFER_EOL_ANY, evbuffer_free, evbuffer_freeze,
    evbuffer_get_length, evbuffer_new, evbuffer_peek, evbuffer_ptr, evbuffer_ptr_how_EVBUFFER_PTR_SET, evbuffer_ptr_set, evbuffer_read, evbuffer_remove_cb_entry, evbuffer_reserve_space,
    evbuffer_search_eol, evbuffer_unfreeze, evbuffer_write, event, event_add, event_assign, event_base,
    event_base_config_flag_EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, event_base_free, event_base_get_method, event_base_loop,
    event_base_loopbreak, event_base_loopexit, event_base_new_with_config, event_config_free, event_config_new,
    event_config_set_flag, event_del, event_get_struct_event_size,
    event_get_version, event_set_log_callback, event_set_mem_functions, iovec, timeval, EVBUFFER_CB_ENABLED, EVLOOP_NONBLOCK,
};

// evdns: the asynchronous resolver (see dns.rs).
pub use sys::{
    addrinfo, evdns_base, evdns_base_clear_host_addresses, evdns_base_free, evdns_base_load_hosts, evdns_base_new,
    evdns_base_nameserver_sockaddr_add, evdns_base_set_option, evdns_getaddrinfo, evdns_getaddrinfo_cancel,
    evdns_getaddrinfo_request, evutil_freeaddrinfo, EVDNS_BASE_DISABLE_WHEN_INACTIVE, EVDNS_BASE_INITIALIZE_NAMESERVERS,
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
