//! What a connection under way keeps (connect.rs works it): held by its bufferevent object,
//! which only knows it is there, so the bufferevent layer sits below connect.rs.

use std::cell::Cell;
use std::net::SocketAddr;

use crate::base::SocketBeyondFdSet;
use crate::dns::{LookupError, PendingLookup};
use crate::libevent::Timer;
use crate::openssl::Ssl;
use crate::os::Errno;

/// The most addresses one connection tries.
pub const MAX_ADDRESSES: usize = 16;

/// The longest host name kept for messages (a DNS name has at most 253 characters).
pub const MAX_NAME: usize = 255;

/// A connection being set up, held by its bufferevent object until it is up or has failed.
pub struct Connecting {
    /// Where to connect, in the order tried (filled once a name is resolved).
    pub(super) addresses: Cell<[Option<SocketAddr>; MAX_ADDRESSES]>,
    /// The host name, for messages (empty for an address literal).
    pub(super) name: [u8; MAX_NAME],
    pub(super) name_len: usize,
    pub(super) port: u16,
    /// The lookup of the name, while it runs; dropping it abandons it.
    pub(super) lookup: Cell<Option<PendingLookup>>,
    /// Why the name did not resolve.
    pub(super) unresolved: Cell<Option<LookupError>>,
    /// Index of the next address to try.
    pub(super) next: Cell<usize>,
    /// The address of the attempt under way.
    pub(super) current: Cell<Option<SocketAddr>>,
    /// Why the last attempt failed.
    pub(super) failure: Cell<Option<(SocketAddr, AttemptFailure)>>,
    /// The base's backend is select: a socket numbered beyond FD_SETSIZE is refused.
    pub(super) fd_set_only: bool,
    /// Every address failed before the loop ran: the timer reports it.
    pub(super) failed_early: Cell<bool>,
    /// The deadline, or the early failure's report.
    pub(super) timer: Timer,
    /// `options.tls`: the client connection, for the TLS layer put in place once connected.
    pub(super) tls: Cell<Option<Ssl>>,
    /// The TLS handshake is under way (the TCP connection is up).
    pub(super) handshaking: Cell<bool>,
}

/// Why one address could not be connected to.
#[derive(Clone, Copy)]
pub enum AttemptFailure {
    Errno(Errno),
    BeyondFdSet(SocketBeyondFdSet),
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptFailure::Errno(errno) => errno.fmt(f),
            AttemptFailure::BeyondFdSet(beyond) => beyond.fmt(f),
        }
    }
}
