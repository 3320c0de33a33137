//! Sockets the module makes itself: a listening socket, a non-blocking connect, and socket
//! addresses between Rust's `SocketAddr` and the system's `sockaddr`. No allocation anywhere:
//! addresses are plain values, errors are errno values.

use std::ffi::c_int;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::os::{self, Errno};

/// A `sockaddr` large enough for any address, and its length.
struct RawAddress {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddress {
    fn from(address: SocketAddr) -> RawAddress {
        // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match address {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                let raw = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                raw.sin_family = libc::AF_INET as libc::sa_family_t;
                raw.sin_port = v4.port().to_be();
                raw.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                let raw = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                raw.sin6_port = v6.port().to_be();
                raw.sin6_addr = libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                };
                raw.sin6_flowinfo = v6.flowinfo();
                raw.sin6_scope_id = v6.scope_id();
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddress {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        &self.storage as *const _ as *const libc::sockaddr
    }
}

/// The address a `sockaddr` of `len` bytes holds, if it is IPv4 or IPv6.
///
/// # Safety
/// `address` points to at least `len` readable bytes.
pub unsafe fn from_sockaddr(address: *const libc::sockaddr, len: usize) -> Option<SocketAddr> {
    if address.is_null() || len < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: per the contract, and each cast is checked against the family's size first;
    // read_unaligned because the caller's buffer may not be aligned for the larger structs.
    unsafe {
        match c_int::from((*address).sa_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let raw = (address as *const libc::sockaddr_in).read_unaligned();
                let ip = Ipv4Addr::from(raw.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(raw.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let raw = (address as *const libc::sockaddr_in6).read_unaligned();
                let ip = Ipv6Addr::from(raw.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(raw.sin6_port),
                    raw.sin6_flowinfo,
                    raw.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// An IPv4 or IPv6 address literal ("127.0.0.1", "::1"); None for anything else (a name).
pub fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn family(address: &SocketAddr) -> c_int {
    match address {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// A new non-blocking, close-on-exec TCP socket for `address`'s family.
fn tcp_socket(address: &SocketAddr) -> Result<c_int, Errno> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe {
        libc::socket(
            family(address),
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(fd)
    }
}

/// A non-blocking socket bound to `address` and listening with `backlog`; Err with the
/// system's reason (nothing is left open then).
pub fn listen(address: SocketAddr, backlog: c_int, reuse_address: bool) -> Result<c_int, Errno> {
    let fd = tcp_socket(&address)?;
    let raw = RawAddress::from(address);
    let on: c_int = 1;
    // SAFETY: setsockopt reads an int; bind reads `len` bytes of the address; listen takes
    // the socket. Each result is checked; the socket is ours to close on failure.
    let failed = unsafe {
        (reuse_address
            && libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &on as *const c_int as *const _,
                size_of::<c_int>() as _,
            ) != 0)
            || libc::bind(fd, raw.as_ptr(), raw.len) != 0
            || libc::listen(fd, backlog) != 0
    };
    if failed {
        let errno = Errno::last();
        os::close(fd);
        return Err(errno);
    }
    Ok(fd)
}

/// A socket whose non-blocking connect() to `address` is under way (or already done); Err
/// with the system's reason when it failed at once (nothing is left open then).
pub fn start_connect(address: SocketAddr) -> Result<c_int, Errno> {
    let fd = tcp_socket(&address)?;
    let raw = RawAddress::from(address);
    // SAFETY: connect reads `len` bytes of the address.
    if unsafe { libc::connect(fd, raw.as_ptr(), raw.len) } == 0 {
        return Ok(fd);
    }
    match Errno::last() {
        Errno(libc::EINPROGRESS) | Errno(libc::EINTR) => Ok(fd),
        errno => {
            os::close(fd);
            Err(errno)
        }
    }
}

/// The local address a socket is bound to.
pub fn local_address(fd: c_int) -> Result<SocketAddr, Errno> {
    // SAFETY: an all-zero sockaddr_storage is valid; getsockname writes at most `len` bytes.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe { libc::getsockname(fd, &mut storage as *mut _ as *mut libc::sockaddr, &mut len) }
        != 0
    {
        return Err(Errno::last());
    }
    // SAFETY: getsockname wrote `len` bytes (at most the storage's size) into the storage.
    unsafe { from_sockaddr(&storage as *const _ as *const libc::sockaddr, len as usize) }
        .ok_or(Errno(libc::EAFNOSUPPORT))
}

/// The address as text ("127.0.0.1", "::1"), written into `out`; the written part.
pub fn format_ip<'a>(address: &IpAddr, out: &'a mut [u8; 64]) -> &'a [u8] {
    use std::io::Write;
    // IPv4 by hand: every accepted connection's peer is formatted, and core::fmt costs about
    // ten times as much.
    if let IpAddr::V4(v4) = address {
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                out[len] = b'.';
                len += 1;
            }
            let digits = [octet / 100, octet / 10 % 10, octet % 10];
            let skip = if octet >= 100 {
                0
            } else if octet >= 10 {
                1
            } else {
                2
            };
            for digit in &digits[skip..] {
                out[len] = b'0' + digit;
                len += 1;
            }
        }
        return &out[..len];
    }
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    // At most 45 bytes for an IPv6 address: it fits.
    let _ = write!(cursor, "{address}");
    let len = cursor.position() as usize;
    &out[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_go_through_sockaddr_unchanged() {
        for text in [
            "127.0.0.1:80",
            "[::1]:65535",
            "0.0.0.0:0",
            "[2001:db8::5]:1234",
        ] {
            let address: SocketAddr = text.parse().unwrap();
            let raw = RawAddress::from(address);
            let back = unsafe { from_sockaddr(raw.as_ptr(), raw.len as usize) };
            assert_eq!(back, Some(address));
        }
    }

    #[test]
    fn literals_parse_and_names_do_not() {
        assert_eq!(parse_ip(b"127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip(b"::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip(b"localhost"), None);
        assert_eq!(parse_ip(b"127.0.0.1\0"), None);
    }

    #[test]
    fn ips_format_as_text() {
        let mut out = [0u8; 64];
        assert_eq!(format_ip(&"::1".parse().unwrap(), &mut out), b"::1");
        assert_eq!(
            format_ip(&"10.0.0.255".parse().unwrap(), &mut out),
            b"10.0.0.255"
        );
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "1.23.199.100",
            "9.10.99.200",
        ] {
            assert_eq!(format_ip(&text.parse().unwrap(), &mut out), text.as_bytes());
        }
        assert_eq!(
            format_ip(&"::ffff:1.2.3.4".parse().unwrap(), &mut out),
            b"::ffff:1.2.3.4"
        );
    }
}
