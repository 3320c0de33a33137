//! What differs between operating systems, in one place: descriptor probes, errno access and
//! text, signal set-up. Linux, the BSDs and macOS get their own code where they differ; any
//! other Unix gets a portable fallback.

use std::ffi::{c_int, CStr};
use std::fmt;

/// An OS error number, shown as `strerror` shows it, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub c_int);

impl Errno {
    /// The calling thread's `errno` now.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// Sets `errno` to 0, so that a later [`Errno::set`] tells whether a call set it.
    pub fn clear() {
        clear_errno();
    }

    /// `Some` when a call set `errno` since [`Errno::clear`].
    pub fn set() -> Option<Errno> {
        Some(Errno::last()).filter(|errno| errno.0 != 0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = [0u8; 128];
        f.write_str(strerror(self.0, &mut buffer))
    }
}

/// Whether the process can open the descriptors a new event base needs: its backend's own
/// descriptor (epoll or kqueue; poll and select have none) and the socketpair libevent uses
/// for signals. libevent treats failing to make that socketpair as fatal and exits the process,
/// so the same descriptors are made and closed here first. Err carries the system's reason;
/// Ok the higher of the socketpair's two descriptors, at or above the one libevent's pair will
/// get (it takes the lowest free ones, and the backend's descriptor comes first).
pub fn probe_base_descriptors() -> Result<c_int, Errno> {
    let backend = open_backend_descriptor()?;
    let mut pair = [0 as c_int; 2];
    // SAFETY: socketpair writes two descriptors into `pair`, which we own and close.
    let result =
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) };
    let errno = Errno::last();
    if let Some(fd) = backend {
        close(fd);
    }
    if result != 0 {
        return Err(errno);
    }
    close(pair[0]);
    close(pair[1]);
    Ok(pair[0].max(pair[1]))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_backend_descriptor() -> Result<Option<c_int>, Errno> {
    // SAFETY: a plain syscall; the descriptor is closed by the caller.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(Some(fd))
    }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
fn open_backend_descriptor() -> Result<Option<c_int>, Errno> {
    // SAFETY: a plain syscall; the descriptor is closed by the caller.
    let fd = unsafe { libc::kqueue() };
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(Some(fd))
    }
}

/// Elsewhere libevent runs on poll or select, which need no descriptor of their own.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
fn open_backend_descriptor() -> Result<Option<c_int>, Errno> {
    Ok(None)
}

/// Closes a descriptor the module owns (one it opened, or an accepted socket nobody took).
pub fn close(fd: c_int) {
    // SAFETY: the caller owns `fd` and drops it here.
    unsafe { libc::close(fd) };
}

/// The pending error of a socket (SO_ERROR), if it has one.
pub fn socket_error(fd: c_int) -> Option<Errno> {
    let mut error: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `error`; a bad fd only fails.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut error as *mut c_int as *mut _,
            &mut len,
        )
    };
    (result == 0 && error != 0).then_some(Errno(error))
}

/// Whether `fd` is open and in non-blocking mode (O_NONBLOCK).
pub fn is_nonblocking(fd: c_int) -> bool {
    // SAFETY: F_GETFL reads the descriptor's flags; any integer is a valid argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

/// What a descriptor refers to, as far as watching it for readiness goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    NotOpen,
    RegularFile,
    Directory,
    /// A socket, pipe, terminal, device...
    Other,
}

pub fn fd_kind(fd: c_int) -> FdKind {
    // SAFETY: fstat writes into the zeroed struct we own; any integer is a valid argument.
    unsafe {
        let mut status: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut status) != 0 {
            return FdKind::NotOpen;
        }
        match status.st_mode & libc::S_IFMT {
            libc::S_IFREG => FdKind::RegularFile,
            libc::S_IFDIR => FdKind::Directory,
            _ => FdKind::Other,
        }
    }
}

/// The number of descriptors an `fd_set` holds (FD_SETSIZE): 0 to FD_SET_SIZE - 1.
// FD_SETSIZE is a usize on Linux, an int elsewhere.
#[allow(clippy::unnecessary_cast)]
pub const FD_SET_SIZE: usize = libc::FD_SETSIZE as usize;

/// How many descriptors below FD_SETSIZE are free: sockets made from now on take the lowest
/// free ones, so that many more fit in an `fd_set` (fewer if another thread opens some).
pub fn free_fds_in_fd_set() -> usize {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed one fails with EBADF.
    let closed = |fd: c_int| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last().0 == libc::EBADF;
    (0..FD_SET_SIZE as c_int).filter(|&fd| closed(fd)).count()
}

/// Whether `fd` fits in an `fd_set`, as select needs.
pub fn fits_fd_set(fd: c_int) -> bool {
    usize::try_from(fd).is_ok_and(|fd| fd < FD_SET_SIZE)
}

/// The text of an error number, written into `buffer` (no allocation).
fn strerror(errno: c_int, buffer: &mut [u8]) -> &str {
    // SAFETY: the XSI strerror_r (which the libc crate binds) writes a NUL-terminated string of
    // at most buffer.len() bytes into the buffer.
    let ok = unsafe {
        libc::strerror_r(
            errno,
            buffer.as_mut_ptr() as *mut libc::c_char,
            buffer.len(),
        )
    } == 0;
    if !ok {
        return "unknown error";
    }
    CStr::from_bytes_until_nul(buffer)
        .ok()
        .and_then(|text| text.to_str().ok())
        .unwrap_or("unknown error")
}

/// Sets the calling thread's errno to 0, where the platform says how (elsewhere errno is left
/// as it is, and a message may show an older error's text).
fn clear_errno() {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "emscripten",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_os = "netbsd"
    ))]
    // SAFETY: the location is the calling thread's own errno.
    unsafe {
        *errno_location() = 0
    };
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "emscripten"))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: no preconditions.
    unsafe { libc::__errno_location() }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: no preconditions.
    unsafe { libc::__error() }
}

#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
unsafe fn errno_location() -> *mut c_int {
    // SAFETY: no preconditions.
    unsafe { libc::__errno() }
}

/// Writing to a socket whose peer is gone raises SIGPIPE, whose default action kills the
/// process; buffer writes must fail with -1 instead. Only a default disposition is changed
/// (LuaSocket does the same when it loads), so a handler the program installed is kept.
/// The highest signal number: Linux has real-time signals up to SIGRTMAX (64), the BSDs and
/// macOS stop at 31.
pub fn highest_signal() -> c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::SIGRTMAX()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        31
    }
}

pub fn ignore_sigpipe() {
    // SAFETY: querying and setting a signal disposition with valid sigaction structs.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_DFL
        {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_reads_as_strerror() {
        assert_eq!(Errno(libc::EMFILE).to_string(), "Too many open files");
        Errno::clear();
        assert_eq!(Errno::set(), None);
    }

    #[test]
    fn standard_descriptors_are_not_regular_files_and_bad_ones_are_not_open() {
        assert_eq!(fd_kind(-1), FdKind::NotOpen);
        assert_eq!(fd_kind(1 << 30), FdKind::NotOpen);
    }

    #[test]
    fn a_directory_and_a_file_are_told_apart() {
        let dir = std::fs::File::open("/").unwrap();
        let file = std::fs::File::open("Cargo.toml").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(fd_kind(dir.as_raw_fd()), FdKind::Directory);
        assert_eq!(fd_kind(file.as_raw_fd()), FdKind::RegularFile);
    }

    #[test]
    fn probing_leaves_no_descriptor_open() {
        let before = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0);
        probe_base_descriptors().unwrap();
        let after = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(before, after);
    }
}
