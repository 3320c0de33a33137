//! Handles on OpenSSL's objects that make the calls the TLS type needs safe, with what each needs
//! to stay valid stated once, here (as libevent.rs does for libevent). Nothing here knows Lua.
//!
//! - [`SslContext`] owns an `SSL_CTX` (OpenSSL counts its references: every `SSL` made from it
//!   holds one, so a connection keeps its context alive after the owner lets go).
//! - [`Ssl`] owns an `SSL` until it is handed over (`into_raw`, to bufferevent_openssl).
//! - [`SessionFacts`] is what a finished handshake tells, copied out of an `SSL` so that it
//!   stays valid whatever happens to the connection afterwards.
//! - [`SslError`] is OpenSSL's reason for a failure, kept as its code (no allocation; the text is
//!   OpenSSL's static string, or `strerror` for a system error).
//! - [`CText`] builds a NUL-terminated string in a fixed buffer (paths, cipher lists, names).
//!
//! Every call that can fail reports it through its return value: OpenSSL's own allocation
//! failures become errors, and no Rust allocation happens on any of these paths (the `openssl`
//! crate would allocate Strings and Vecs for its errors; see doc/tls-design.md).
//!
//! Functions openssl-sys does not declare are declared below with OpenSSL 3.0's signatures; the
//! build requires OpenSSL 3.0 or newer (scripts/rock-build.sh checks for it).

use std::ffi::{c_char, c_int, c_long, c_uchar, c_uint, c_ulong, c_void, CStr};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI32, Ordering};

use openssl_sys as sys;

use crate::c_callback::c_callback;
use crate::os::Errno;

mod ffi {
    use std::ffi::{c_char, c_int, c_ulong, c_void};

    use openssl_sys::{ASN1_TIME, BIO, EVP_PKEY, SSL_CTX, X509, X509_NAME, X509_VERIFY_PARAM};

    pub type PasswordCallback = unsafe extern "C" fn(
        buf: *mut c_char,
        size: c_int,
        rwflag: c_int,
        user: *mut c_void,
    ) -> c_int;

    extern "C" {
        pub fn SSL_CTX_set_default_passwd_cb(ctx: *mut SSL_CTX, cb: Option<PasswordCallback>);
        pub fn SSL_CTX_set_default_passwd_cb_userdata(ctx: *mut SSL_CTX, user: *mut c_void);
        pub fn X509_NAME_print_ex(
            out: *mut BIO,
            name: *const X509_NAME,
            indent: c_int,
            flags: c_ulong,
        ) -> c_int;
        pub fn X509_VERIFY_PARAM_set_trust(param: *mut X509_VERIFY_PARAM, trust: c_int) -> c_int;
        pub fn X509_VERIFY_PARAM_set1_ip_asc(
            param: *mut X509_VERIFY_PARAM,
            ip: *const c_char,
        ) -> c_int;
        pub fn X509_get0_notAfter(x: *const X509) -> *const ASN1_TIME;
        pub fn ASN1_TIME_print_ex(out: *mut BIO, time: *const ASN1_TIME, flags: c_ulong) -> c_int;
        pub fn BIO_new_file(path: *const c_char, mode: *const c_char) -> *mut BIO;
        pub fn BIO_free(bio: *mut BIO) -> c_int;
        pub fn PEM_read_bio_Parameters(bio: *mut BIO, out: *mut *mut EVP_PKEY) -> *mut EVP_PKEY;
        pub fn SSL_CTX_set_options(ctx: *mut SSL_CTX, options: u64) -> u64;
    }

    /// `X509_TRUST_SSL_SERVER` (x509.h).
    pub const X509_TRUST_SSL_SERVER: c_int = 3;
    /// `XN_FLAG_RFC2253` without `ASN1_STRFLGS_ESC_MSB`: RFC 2253 names with UTF-8 kept as is.
    pub const NAME_FORMAT: c_ulong = 0x0111_0313;
    /// `ASN1_DTFLGS_ISO8601` (asn1.h).
    pub const ASN1_DTFLGS_ISO8601: c_ulong = 1;
    /// `ERR_SYSTEM_FLAG` (err.h): the error is an errno value.
    pub const ERR_SYSTEM_FLAG: c_ulong = 1 << 31;
}

// ------------------------------------------------------------------------------ errors ----

/// OpenSSL's reason for a failure: an error code from the thread's error queue (0: none was
/// queued, as when a callback of ours refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SslError(c_ulong);

/// `ERR_LIB_X509` and its `X509_R_KEY_VALUES_MISMATCH` (x509err.h).
const ERR_LIB_X509: c_ulong = 11;
const X509_R_KEY_VALUES_MISMATCH: c_ulong = 116;
/// `ERR_R_UNSUPPORTED` (err.h: 268 with `ERR_RFLAG_COMMON`), what OpenSSL 3's decoders say
/// about bytes that hold nothing they can read.
const ERR_R_UNSUPPORTED: c_ulong = 0x8_010c;

impl SslError {
    /// Takes every error OpenSSL queued on this thread, keeping the most telling one: a system
    /// error (errno) if there is one, else the first queued, which is the root cause. The queue
    /// is left empty, so that no stale error confuses a later call.
    pub fn take() -> SslError {
        let (mut first, mut system) = (0, 0);
        loop {
            // SAFETY: no preconditions; returns 0 once the queue is empty.
            let code = unsafe { sys::ERR_get_error() };
            if code == 0 {
                break;
            }
            if first == 0 {
                first = code;
            }
            if system == 0 && code & ffi::ERR_SYSTEM_FLAG != 0 {
                system = code;
            }
        }
        SslError(if system != 0 { system } else { first })
    }

    /// An error code OpenSSL reported elsewhere (libevent keeps a TLS layer's errors).
    pub fn from_code(code: c_ulong) -> SslError {
        SslError(code)
    }

    /// Whether this is an error code at all (not 0 nor one of `SSL_get_error`'s small values,
    /// which libevent queues beside the real errors).
    pub fn is_reason(&self) -> bool {
        self.0 > 0xff
    }

    /// Empties the thread's error queue (before a call whose failure will be read).
    pub fn clear() {
        // SAFETY: no preconditions.
        unsafe { sys::ERR_clear_error() };
    }

    /// Whether OpenSSL said a key does not match its certificate.
    pub fn is_key_mismatch(&self) -> bool {
        self.0 & ffi::ERR_SYSTEM_FLAG == 0
            && (self.0 >> 23) & 0xff == ERR_LIB_X509
            && self.0 & 0x7f_ffff == X509_R_KEY_VALUES_MISMATCH
    }

    /// Whether OpenSSL found nothing it could decode (its reason is a bare `unsupported`).
    pub fn is_undecodable(&self) -> bool {
        self.0 & ffi::ERR_SYSTEM_FLAG == 0 && self.0 & 0x7f_ffff == ERR_R_UNSUPPORTED
    }

    /// The errno of a system error.
    fn errno(&self) -> Option<Errno> {
        (self.0 & ffi::ERR_SYSTEM_FLAG != 0)
            .then_some(Errno((self.0 & !ffi::ERR_SYSTEM_FLAG) as c_int))
    }
}

impl fmt::Display for SslError {
    /// `No such file or directory`, `no start line`, `bad decrypt`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("unknown error");
        }
        if let Some(errno) = self.errno() {
            return write!(f, "{errno}");
        }
        // SAFETY: returns a static string, or null for a code OpenSSL has no text for.
        let reason = unsafe { sys::ERR_reason_error_string(self.0) };
        if reason.is_null() {
            return write!(f, "error {:#x}", self.0);
        }
        // SAFETY: a non-null result is a static NUL-terminated string.
        f.write_str(unsafe { CStr::from_ptr(reason) }.to_str().unwrap_or("?"))
    }
}

/// `": <reason>"` when OpenSSL gave one, nothing otherwise: the tail of a message.
pub struct Because(pub SslError);

impl fmt::Display for Because {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 .0 == 0 {
            Ok(())
        } else {
            write!(f, ": {}", self.0)
        }
    }
}

fn check(result: c_int) -> Result<(), SslError> {
    if result == 1 {
        Ok(())
    } else {
        Err(SslError::take())
    }
}

// -------------------------------------------------------------------------------- text ----

/// A NUL-terminated string of at most `N - 1` bytes, built in place.
pub struct CText<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

/// Why bytes do not fit a [`CText`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    TooLong,
    /// C strings end at the first NUL.
    Nul,
}

impl<const N: usize> CText<N> {
    pub fn new() -> CText<N> {
        CText {
            len: 0,
            bytes: [0; N],
        }
    }

    /// The text of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<CText<N>, TextError> {
        let mut text = CText::new();
        text.push(bytes)?;
        Ok(text)
    }

    /// Appends `piece`; on failure the text is unchanged.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), TextError> {
        if piece.contains(&0) {
            return Err(TextError::Nul);
        }
        if piece.len() >= N - self.len {
            return Err(TextError::TooLong);
        }
        self.bytes[self.len..self.len + piece.len()].copy_from_slice(piece);
        self.len += piece.len();
        self.bytes[self.len] = 0;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_cstr(&self) -> &CStr {
        // The byte after the text is always a NUL, and the text holds none (see push).
        CStr::from_bytes_with_nul(&self.bytes[..=self.len]).unwrap_or(c"")
    }

    /// The text as UTF-8, cut before the first invalid byte (for messages).
    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(text) => text,
            Err(error) => {
                std::str::from_utf8(&self.as_bytes()[..error.valid_up_to()]).unwrap_or_default()
            }
        }
    }
}

impl<const N: usize> Drop for CText<N> {
    /// Texts may hold secrets (a password): the bytes are wiped, not just forgotten.
    fn drop(&mut self) {
        for byte in self.bytes.iter_mut() {
            // SAFETY: a valid, aligned byte of our own; a volatile write is not optimised away.
            unsafe { ptr::write_volatile(byte, 0) };
        }
    }
}

/// A passphrase on its way to OpenSSL (at most `PEM_BUFSIZE`, 1024 bytes, which is what
/// OpenSSL asks for); wiped when dropped.
pub struct Passphrase {
    len: usize,
    bytes: [u8; 1024],
}

impl Passphrase {
    pub fn new() -> Passphrase {
        Passphrase {
            len: 0,
            bytes: [0; 1024],
        }
    }

    /// Keeps `secret`; false when it is too long.
    pub fn set(&mut self, secret: &[u8]) -> bool {
        if secret.len() > self.bytes.len() {
            return false;
        }
        self.bytes[..secret.len()].copy_from_slice(secret);
        self.len = secret.len();
        true
    }

    /// Copies the passphrase into OpenSSL's buffer; its length, or `None` when it does not fit.
    pub fn copy_to(&self, buffer: &mut [u8]) -> Option<usize> {
        let target = buffer.get_mut(..self.len)?;
        target.copy_from_slice(&self.bytes[..self.len]);
        Some(self.len)
    }
}

impl Drop for Passphrase {
    fn drop(&mut self) {
        for byte in self.bytes.iter_mut() {
            // SAFETY: a valid, aligned byte of our own; a volatile write is not optimised away.
            unsafe { ptr::write_volatile(byte, 0) };
        }
    }
}

/// Whether `path` is a folder this process can search (OpenSSL looks CA folders up lazily, so
/// a wrong one would only show at the first handshake).
pub fn check_folder(path: &CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path; the directory stream is closed at once.
    unsafe {
        let dir = libc::opendir(path.as_ptr());
        if dir.is_null() {
            return Err(Errno::last());
        }
        libc::closedir(dir);
    }
    Ok(())
}

// ------------------------------------------------------------------------- contexts ----

/// Which end of connections a context serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The oldest protocol a context accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinimumProtocol {
    /// OpenSSL's own default (its configuration file may raise it).
    LibraryDefault,
    Tls12,
    Tls13,
}

/// `SSL_VERIFY_*` bits, as contexts take them.
pub const VERIFY_PEER: c_int = sys::SSL_VERIFY_PEER;
pub const VERIFY_FAIL_IF_NO_PEER_CERT: c_int = sys::SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
pub const VERIFY_CLIENT_ONCE: c_int = sys::SSL_VERIFY_CLIENT_ONCE;

/// An `SSL_CTX`, owned.
pub struct SslContext(NonNull<sys::SSL_CTX>);

impl Drop for SslContext {
    fn drop(&mut self) {
        // SAFETY: owned; OpenSSL frees it once the SSLs made from it are gone too.
        unsafe { sys::SSL_CTX_free(self.0.as_ptr()) };
    }
}

impl SslContext {
    /// A new context for `role`. A server context gets a session id context of its own, which
    /// OpenSSL needs to resume sessions of clients it verified.
    pub fn new(role: Role) -> Result<SslContext, SslError> {
        SslError::clear();
        // SAFETY: the methods are static; SSL_CTX_new returns null on failure.
        let raw = unsafe {
            sys::SSL_CTX_new(match role {
                Role::Client => sys::TLS_client_method(),
                Role::Server => sys::TLS_server_method(),
            })
        };
        let context = SslContext(NonNull::new(raw).ok_or_else(SslError::take)?);
        // Until a key is loaded with a password of ours, OpenSSL's default would prompt on the
        // terminal for an encrypted key: refuse instead.
        // SAFETY: a live context; the callback never reads its user data.
        unsafe { ffi::SSL_CTX_set_default_passwd_cb(context.as_ptr(), Some(no_password)) };
        if role == Role::Server {
            const SESSION_CONTEXT: &[u8] = b"luaevent-rs";
            // SAFETY: a live context; OpenSSL copies the bytes.
            check(unsafe {
                sys::SSL_CTX_set_session_id_context(
                    context.as_ptr(),
                    SESSION_CONTEXT.as_ptr(),
                    SESSION_CONTEXT.len() as c_uint,
                )
            })?;
        }
        Ok(context)
    }

    fn as_ptr(&self) -> *mut sys::SSL_CTX {
        self.0.as_ptr()
    }

    /// A borrowed view, for making connections (the module makes them through the Lua object's
    /// view, see tls.rs; this one serves the unit tests).
    #[cfg(test)]
    pub fn view(&self) -> SslContextRef<'_> {
        SslContextRef(self.0, PhantomData)
    }

    /// Gives up ownership; [`SslContext::from_raw`] takes it back.
    pub fn into_raw(self) -> NonNull<sys::SSL_CTX> {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// # Safety
    /// `raw` came from [`SslContext::into_raw`], and is taken back once.
    pub unsafe fn from_raw(raw: NonNull<sys::SSL_CTX>) -> SslContext {
        SslContext(raw)
    }

    pub fn set_minimum_protocol(&self, minimum: MinimumProtocol) -> Result<(), SslError> {
        let version = match minimum {
            MinimumProtocol::LibraryDefault => return Ok(()),
            MinimumProtocol::Tls12 => sys::TLS1_2_VERSION,
            MinimumProtocol::Tls13 => sys::TLS1_3_VERSION,
        };
        // SAFETY: a live context.
        check(unsafe { sys::SSL_CTX_set_min_proto_version(self.as_ptr(), version) })
    }

    /// Adds `SSL_OP_*` bits.
    pub fn set_options(&self, options: u64) {
        // SAFETY: a live context; any bits are accepted.
        unsafe { ffi::SSL_CTX_set_options(self.as_ptr(), options) };
    }

    /// Loads the certificate (and the chain after it) from a PEM file.
    pub fn use_certificate_chain_file(&self, path: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context and a NUL-terminated path.
        check(unsafe { sys::SSL_CTX_use_certificate_chain_file(self.as_ptr(), path.as_ptr()) })
    }

    /// Loads the private key from a PEM file. If the key is encrypted, OpenSSL asks `password`
    /// for the passphrase: it writes it into the buffer it gets and returns its length, or
    /// `None` to refuse. When a certificate is loaded already, the key must match it.
    pub fn use_private_key_file(
        &self,
        path: &CStr,
        password: &mut dyn FnMut(&mut [u8]) -> Option<usize>,
    ) -> Result<(), SslError> {
        let mut password = password;
        let user = &mut password as *mut &mut dyn FnMut(&mut [u8]) -> Option<usize> as *mut c_void;
        SslError::clear();
        // SAFETY: a live context and a NUL-terminated path. The callback and its user data are
        // set for this call only and reset before `password` goes out of scope; OpenSSL calls
        // the callback only from inside SSL_CTX_use_PrivateKey_file, on this thread.
        let result = unsafe {
            ffi::SSL_CTX_set_default_passwd_cb(self.as_ptr(), Some(ask_password));
            ffi::SSL_CTX_set_default_passwd_cb_userdata(self.as_ptr(), user);
            let result = sys::SSL_CTX_use_PrivateKey_file(
                self.as_ptr(),
                path.as_ptr(),
                sys::SSL_FILETYPE_PEM,
            );
            ffi::SSL_CTX_set_default_passwd_cb(self.as_ptr(), Some(no_password));
            ffi::SSL_CTX_set_default_passwd_cb_userdata(self.as_ptr(), ptr::null_mut());
            result
        };
        check(result)
    }

    /// Whether the private key matches the certificate.
    pub fn check_private_key(&self) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context.
        check(unsafe { sys::SSL_CTX_check_private_key(self.as_ptr()) })
    }

    /// Trusts the certificates in `file` and those found in the hashed folder `folder`.
    pub fn load_verify_locations(
        &self,
        file: Option<&CStr>,
        folder: Option<&CStr>,
    ) -> Result<(), SslError> {
        SslError::clear();
        let file = file.map_or(ptr::null(), CStr::as_ptr);
        let folder = folder.map_or(ptr::null(), CStr::as_ptr);
        // SAFETY: a live context; each path is null or NUL-terminated.
        check(unsafe { sys::SSL_CTX_load_verify_locations(self.as_ptr(), file, folder) })
    }

    /// Tells clients which CAs a server accepts certificates from: the subjects of those in
    /// `file` (some clients pick the certificate they present by it).
    pub fn set_client_ca_list(&self, file: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a NUL-terminated path; the context takes ownership of the list (set0 style).
        unsafe {
            let names = sys::SSL_load_client_CA_file(file.as_ptr());
            if names.is_null() {
                return Err(SslError::take());
            }
            sys::SSL_CTX_set_client_CA_list(self.as_ptr(), names);
        }
        Ok(())
    }

    /// Trusts the system's certificates (OpenSSL's default file and folder).
    pub fn set_default_verify_paths(&self) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context.
        check(unsafe { sys::SSL_CTX_set_default_verify_paths(self.as_ptr()) })
    }

    /// `mode`: `VERIFY_*` bits (0: a client does not stop on a failed verification, a server
    /// asks for no certificate). With `continue_on_failure`, a failed verification does not
    /// end the handshake either way; the session's facts tell the reason.
    pub fn set_verify(&self, mode: c_int, continue_on_failure: bool) {
        let callback: Option<extern "C" fn(c_int, *mut sys::X509_STORE_CTX) -> c_int> =
            if continue_on_failure {
                Some(continue_verification)
            } else {
                None
            };
        // SAFETY: a live context; the callback is a plain function.
        unsafe { sys::SSL_CTX_set_verify(self.as_ptr(), mode, callback) };
    }

    pub fn set_verify_depth(&self, depth: c_int) {
        // SAFETY: a live context.
        unsafe { sys::SSL_CTX_set_verify_depth(self.as_ptr(), depth) };
    }

    /// Verifies peers' certificates as TLS server certificates whichever end this is: a server
    /// then accepts the server certificate a peer server presents as a client (XMPP s2s).
    pub fn verify_as_server_certificates(&self) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context; its parameters live as long as it does.
        unsafe {
            let param = sys::SSL_CTX_get0_param(self.as_ptr());
            check(sys::X509_VERIFY_PARAM_set_purpose(
                param,
                sys::X509_PURPOSE_SSL_SERVER,
            ))?;
            check(ffi::X509_VERIFY_PARAM_set_trust(
                param,
                ffi::X509_TRUST_SSL_SERVER,
            ))
        }
    }

    /// TLS 1.2 cipher list, in OpenSSL's syntax.
    pub fn set_cipher_list(&self, list: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context and a NUL-terminated list.
        check(unsafe { sys::SSL_CTX_set_cipher_list(self.as_ptr(), list.as_ptr()) })
    }

    /// TLS 1.3 cipher suites, in OpenSSL's syntax.
    pub fn set_ciphersuites(&self, list: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context and a NUL-terminated list.
        check(unsafe { sys::SSL_CTX_set_ciphersuites(self.as_ptr(), list.as_ptr()) })
    }

    /// Key exchange groups (curves), `:`-separated.
    pub fn set_groups_list(&self, list: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a live context and a NUL-terminated list.
        check(unsafe { sys::SSL_CTX_set1_groups_list(self.as_ptr(), list.as_ptr()) } as c_int)
    }

    /// Diffie-Hellman parameters from PEM text.
    pub fn set_dh_parameters_pem(&self, pem: &[u8]) -> Result<(), SslError> {
        SslError::clear();
        let len = c_int::try_from(pem.len()).map_err(|_| SslError(0))?;
        // SAFETY: the memory BIO reads `pem` (alive for the call) and is freed here.
        let bio = unsafe { sys::BIO_new_mem_buf(pem.as_ptr() as *const c_void, len) };
        self.set_dh_parameters(bio)
    }

    /// Diffie-Hellman parameters from a PEM file.
    pub fn set_dh_parameters_file(&self, path: &CStr) -> Result<(), SslError> {
        SslError::clear();
        // SAFETY: a NUL-terminated path; the BIO is freed by set_dh_parameters.
        let bio = unsafe { ffi::BIO_new_file(path.as_ptr(), c"r".as_ptr()) };
        self.set_dh_parameters(bio)
    }

    fn set_dh_parameters(&self, bio: *mut sys::BIO) -> Result<(), SslError> {
        if bio.is_null() {
            return Err(SslError::take());
        }
        // SAFETY: `bio` is ours and freed here; the key read from it is handed to the context
        // (set0: it owns it on success) or freed.
        unsafe {
            let key = ffi::PEM_read_bio_Parameters(bio, ptr::null_mut());
            ffi::BIO_free(bio);
            if key.is_null() {
                return Err(SslError::take());
            }
            if sys::SSL_CTX_set0_tmp_dh_pkey(self.as_ptr(), key) != 1 {
                sys::EVP_PKEY_free(key);
                return Err(SslError::take());
            }
        }
        Ok(())
    }

    /// The protocols a client offers (ALPN), in wire format (each name preceded by its length).
    pub fn set_alpn_offer(&self, wire: &[u8]) -> Result<(), SslError> {
        SslError::clear();
        let len = c_uint::try_from(wire.len()).map_err(|_| SslError(0))?;
        // SAFETY: a live context; OpenSSL copies the list. It returns 0 on success.
        if unsafe { sys::SSL_CTX_set_alpn_protos(self.as_ptr(), wire.as_ptr(), len) } != 0 {
            return Err(SslError::take());
        }
        Ok(())
    }

    /// The protocols a server accepts (ALPN), in wire format and in its order of preference.
    /// The list is kept with the `SSL_CTX` (ex_data freed with it), so it stays valid for the
    /// connections that outlive this handle.
    pub fn set_alpn_accepted(&self, wire: &[u8]) -> Result<(), SslError> {
        let index = alpn_index().ok_or_else(SslError::take)?;
        let len = u16::try_from(wire.len()).map_err(|_| SslError(0))?;
        // SAFETY: a fresh block of 2 + len bytes (malloc's failure is checked), written within
        // its bounds; the context owns it from set_ex_data on (freed by free_alpn), or it is
        // freed here. A list set earlier is freed first.
        unsafe {
            let block = libc::malloc(2 + wire.len()) as *mut u8;
            if block.is_null() {
                return Err(SslError(0));
            }
            block.copy_from_nonoverlapping(len.to_ne_bytes().as_ptr(), 2);
            block
                .add(2)
                .copy_from_nonoverlapping(wire.as_ptr(), wire.len());
            let previous = sys::SSL_CTX_get_ex_data(self.as_ptr(), index);
            if sys::SSL_CTX_set_ex_data(self.as_ptr(), index, block as *mut c_void) != 1 {
                libc::free(block as *mut c_void);
                return Err(SslError::take());
            }
            libc::free(previous);
            sys::SSL_CTX_set_alpn_select_cb__fixed_rust(
                self.as_ptr(),
                Some(select_alpn),
                block as *mut c_void,
            );
        }
        Ok(())
    }
}

/// A context borrowed from its owner.
#[derive(Clone, Copy)]
pub struct SslContextRef<'a>(NonNull<sys::SSL_CTX>, PhantomData<&'a SslContext>);

impl SslContextRef<'_> {
    /// # Safety
    /// `raw` is a live context (given up by [`SslContext::into_raw`]) for the view's lifetime.
    pub unsafe fn new<'a>(raw: NonNull<sys::SSL_CTX>) -> SslContextRef<'a> {
        SslContextRef(raw, PhantomData)
    }

    /// A client connection. `server_name`, when given, is sent as SNI (unless it is an IP
    /// address) and the peer's certificate must be valid for it (a host name, or an IP address
    /// against the certificate's IP entries); whether a mismatch ends the handshake follows the
    /// context's verification mode.
    pub fn client_ssl(&self, server_name: Option<&CStr>) -> Result<Ssl, SslError> {
        let ssl = self.new_ssl()?;
        // SAFETY: a live SSL; names are NUL-terminated and copied by OpenSSL.
        unsafe {
            sys::SSL_set_connect_state(ssl.as_ptr());
            if let Some(name) = server_name {
                let param = sys::SSL_get0_param(ssl.as_ptr());
                let is_address = name
                    .to_str()
                    .is_ok_and(|text| text.parse::<std::net::IpAddr>().is_ok());
                if is_address {
                    check(ffi::X509_VERIFY_PARAM_set1_ip_asc(param, name.as_ptr()))?;
                } else {
                    if sys::SSL_set_tlsext_host_name(ssl.as_ptr(), name.as_ptr() as *mut c_char)
                        != 1
                    {
                        return Err(SslError::take());
                    }
                    sys::X509_VERIFY_PARAM_set_hostflags(
                        param,
                        sys::X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                    );
                    check(sys::X509_VERIFY_PARAM_set1_host(
                        param,
                        name.as_ptr(),
                        name.to_bytes().len(),
                    ))?;
                }
            }
        }
        Ok(ssl)
    }

    /// Whether connections made from it verify the peer's certificate (`SSL_VERIFY_PEER`).
    pub fn verifies_peer(&self) -> bool {
        // SAFETY: the context is alive for 'a; reading its mode has no other precondition.
        unsafe { sys::SSL_CTX_get_verify_mode(self.0.as_ptr()) & sys::SSL_VERIFY_PEER != 0 }
    }

    /// A server connection.
    pub fn server_ssl(&self) -> Result<Ssl, SslError> {
        let ssl = self.new_ssl()?;
        // SAFETY: a live SSL.
        unsafe { sys::SSL_set_accept_state(ssl.as_ptr()) };
        Ok(ssl)
    }

    fn new_ssl(&self) -> Result<Ssl, SslError> {
        SslError::clear();
        // SAFETY: the context is alive for 'a; the SSL holds a reference of its own to it.
        let raw = unsafe { sys::SSL_new(self.0.as_ptr()) };
        NonNull::new(raw).map(Ssl).ok_or_else(SslError::take)
    }
}

/// The password callback while no key is being loaded: no password.
unsafe extern "C" fn no_password(
    _buf: *mut c_char,
    _size: c_int,
    _rwflag: c_int,
    _user: *mut c_void,
) -> c_int {
    -1
}

c_callback! {
    /// The password callback during `use_private_key_file`: asks the closure given there.
    fn ask_password(buf: *mut c_char, size: c_int, _rwflag: c_int, user: *mut c_void) -> c_int, on panic -1, {
        if buf.is_null() || user.is_null() || size <= 0 {
            return -1;
        }
        // SAFETY: `user` is the closure reference use_private_key_file set for this very call,
        // and `buf` OpenSSL's buffer of `size` bytes.
        let (password, buffer) = unsafe {
            let password = &mut *(user as *mut &mut dyn FnMut(&mut [u8]) -> Option<usize>);
            (password, std::slice::from_raw_parts_mut(buf as *mut u8, size as usize))
        };
        match password(buffer) {
            Some(len) if len <= buffer.len() => len as c_int,
            _ => -1,
        }
    }
}

/// The verification callback of `lsec_continue`: every failure is let through (and recorded
/// by OpenSSL as the session's verification result).
extern "C" fn continue_verification(
    _preverified: c_int,
    _store: *mut sys::X509_STORE_CTX,
) -> c_int {
    1
}

/// The ex_data index under which server contexts keep their ALPN list; made once per process.
static ALPN_INDEX: AtomicI32 = AtomicI32::new(-1);

fn alpn_index() -> Option<c_int> {
    let index = ALPN_INDEX.load(Ordering::Acquire);
    if index >= 0 {
        return Some(index);
    }
    // SAFETY: registers an index with a free function; no other preconditions.
    let made =
        unsafe { sys::SSL_CTX_get_ex_new_index(0, ptr::null_mut(), None, None, Some(free_alpn)) };
    if made < 0 {
        return None;
    }
    // Two threads may race here: the loser's index stays unused (its free function sees null).
    match ALPN_INDEX.compare_exchange(-1, made, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(made),
        Err(existing) => Some(existing),
    }
}

unsafe extern "C" fn free_alpn(
    _parent: *mut c_void,
    block: *mut c_void,
    _data: *mut sys::CRYPTO_EX_DATA,
    _index: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    // SAFETY: the block set_alpn_accepted made with malloc (or null).
    unsafe { libc::free(block) };
}

/// The server's ALPN choice: its first protocol that the client offers too; no ALPN at all
/// when there is none (the connection goes on without it).
unsafe extern "C" fn select_alpn(
    _ssl: *mut sys::SSL,
    out: *mut *const c_uchar,
    out_len: *mut c_uchar,
    offered: *const c_uchar,
    offered_len: c_uint,
    block: *mut c_void,
) -> c_int {
    if block.is_null() {
        return sys::SSL_TLSEXT_ERR_NOACK;
    }
    // SAFETY: `block` is the context's list (2 length bytes, then the list), alive as long as
    // the context, which the connection holds; OpenSSL passes the client's list and the out
    // pointers, and SSL_select_next_proto points `out` into one of the two lists.
    unsafe {
        let mut len = [0u8; 2];
        ptr::copy_nonoverlapping(block as *const u8, len.as_mut_ptr(), 2);
        let accepted = (block as *const u8).add(2);
        let mut chosen: *mut c_uchar = ptr::null_mut();
        let mut chosen_len: c_uchar = 0;
        let status = sys::SSL_select_next_proto(
            &mut chosen,
            &mut chosen_len,
            accepted,
            u16::from_ne_bytes(len) as c_uint,
            offered,
            offered_len,
        );
        if status != sys::OPENSSL_NPN_NEGOTIATED {
            return sys::SSL_TLSEXT_ERR_NOACK;
        }
        *out = chosen;
        *out_len = chosen_len;
    }
    sys::SSL_TLSEXT_ERR_OK
}

// ----------------------------------------------------------------------- connections ----

/// An `SSL`, owned until handed over.
pub struct Ssl(NonNull<sys::SSL>);

impl Drop for Ssl {
    fn drop(&mut self) {
        // SAFETY: owned.
        unsafe { sys::SSL_free(self.0.as_ptr()) };
    }
}

impl Ssl {
    pub fn as_ptr(&self) -> *mut sys::SSL {
        self.0.as_ptr()
    }

    /// Gives up ownership (to bufferevent_openssl, which frees it with the bufferevent).
    pub fn into_raw(self) -> NonNull<sys::SSL> {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// For the unit tests; the module reads a connection's facts through libevent's layer.
    #[cfg(test)]
    pub fn facts(&self) -> SessionFacts {
        // SAFETY: owned, so alive for the call.
        unsafe { SessionFacts::read(self.0) }
    }
}

/// At most 255 bytes copied out of a connection (an ALPN protocol, a server name).
#[derive(Clone, Copy)]
pub struct Short {
    len: u8,
    bytes: [u8; 255],
}

impl Short {
    fn copy(bytes: &[u8]) -> Short {
        let len = bytes.len().min(255);
        let mut short = Short {
            len: len as u8,
            bytes: [0; 255],
        };
        short.bytes[..len].copy_from_slice(&bytes[..len]);
        short
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// How the peer's certificate fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Verified,
    /// The peer presented no certificate (a client a server did not require one from).
    NoCertificate,
    /// OpenSSL's verification code (`X509_V_ERR_*`).
    Failed(c_long),
}

impl Verification {
    /// OpenSSL's reason: `self-signed certificate`, `hostname mismatch`, ...
    pub fn reason(&self) -> Option<&'static CStr> {
        match *self {
            Verification::Verified => None,
            Verification::NoCertificate => Some(c"the peer presented no certificate"),
            // SAFETY: returns a static string for every code.
            Verification::Failed(code) => {
                Some(unsafe { CStr::from_ptr(sys::X509_verify_cert_error_string(code)) })
            }
        }
    }
}

/// What a finished handshake tells (`bev:tls()`), copied out of the connection.
#[derive(Debug)]
pub struct SessionFacts {
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: &'static CStr,
    /// OpenSSL's name of the cipher, such as `TLS_AES_256_GCM_SHA384`.
    pub cipher: Option<&'static CStr>,
    /// The protocol agreed by ALPN.
    pub alpn: Option<Short>,
    /// The name the client asked for (SNI).
    pub server_name: Option<Short>,
    pub verification: Verification,
    pub peer: Option<Certificate>,
}

impl SessionFacts {
    /// # Safety
    /// `ssl` is a live connection.
    pub unsafe fn read(ssl: NonNull<sys::SSL>) -> SessionFacts {
        let ssl = ssl.as_ptr();
        // SAFETY: per the contract. The version and cipher names are static strings; the ALPN
        // and server name are copied before returning; the peer certificate is a reference of
        // our own (get1).
        unsafe {
            let protocol = CStr::from_ptr(sys::SSL_get_version(ssl));
            let cipher = sys::SSL_get_current_cipher(ssl);
            let cipher =
                (!cipher.is_null()).then(|| CStr::from_ptr(sys::SSL_CIPHER_get_name(cipher)));
            let mut alpn: *const c_uchar = ptr::null();
            let mut alpn_len: c_uint = 0;
            sys::SSL_get0_alpn_selected(ssl, &mut alpn, &mut alpn_len);
            let alpn = (!alpn.is_null() && alpn_len > 0)
                .then(|| Short::copy(std::slice::from_raw_parts(alpn, alpn_len as usize)));
            let name = sys::SSL_get_servername(ssl, sys::TLSEXT_NAMETYPE_host_name);
            let server_name =
                (!name.is_null()).then(|| Short::copy(CStr::from_ptr(name).to_bytes()));
            let peer = NonNull::new(sys::SSL_get1_peer_certificate(ssl)).map(Certificate);
            let result = sys::SSL_get_verify_result(ssl);
            let verification = match (&peer, result) {
                (_, code) if code != sys::X509_V_OK as c_long => Verification::Failed(code),
                (None, _) => Verification::NoCertificate,
                (Some(_), _) => Verification::Verified,
            };
            SessionFacts {
                protocol,
                cipher,
                alpn,
                server_name,
                verification,
                peer,
            }
        }
    }
}

/// Why the peer's certificate failed verification (`self-signed certificate`, `hostname
/// mismatch`, ...), or None when it did not fail.
///
/// # Safety
/// `ssl` is a live connection.
pub unsafe fn verify_failure(ssl: NonNull<sys::SSL>) -> Option<&'static CStr> {
    // SAFETY: per the contract; the reason is a static string for every code.
    unsafe {
        let code = sys::SSL_get_verify_result(ssl.as_ptr());
        (code != sys::X509_V_OK as c_long)
            .then(|| CStr::from_ptr(sys::X509_verify_cert_error_string(code)))
    }
}

/// A certificate, one reference of our own.
pub struct Certificate(NonNull<sys::X509>);

impl Drop for Certificate {
    fn drop(&mut self) {
        // SAFETY: our reference.
        unsafe { sys::X509_free(self.0.as_ptr()) };
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject() {
            Ok(text) => write!(
                f,
                "Certificate({:?})",
                String::from_utf8_lossy(text.as_bytes())
            ),
            Err(_) => f.write_str("Certificate(?)"),
        }
    }
}

impl Certificate {
    /// The subject's name, RFC 2253 style: `CN=example.com,O=Example`.
    pub fn subject(&self) -> Result<MemoryText, SslError> {
        // SAFETY: a live certificate; the name belongs to it.
        self.name(unsafe { sys::X509_get_subject_name(self.0.as_ptr()) })
    }

    /// The issuer's name, as `subject`.
    pub fn issuer(&self) -> Result<MemoryText, SslError> {
        // SAFETY: as for subject.
        self.name(unsafe { sys::X509_get_issuer_name(self.0.as_ptr()) })
    }

    fn name(&self, name: *const sys::X509_NAME) -> Result<MemoryText, SslError> {
        let text = MemoryText::new()?;
        // SAFETY: a live name and BIO.
        if unsafe { ffi::X509_NAME_print_ex(text.0.as_ptr(), name, 0, ffi::NAME_FORMAT) } < 0 {
            return Err(SslError::take());
        }
        Ok(text)
    }

    /// When it expires, ISO 8601 in UTC: `2031-01-02 03:04:05Z`.
    pub fn not_after(&self) -> Result<MemoryText, SslError> {
        let text = MemoryText::new()?;
        // SAFETY: a live certificate and BIO; the time belongs to the certificate.
        check(unsafe {
            ffi::ASN1_TIME_print_ex(
                text.0.as_ptr(),
                ffi::X509_get0_notAfter(self.0.as_ptr()),
                ffi::ASN1_DTFLGS_ISO8601,
            )
        })?;
        Ok(text)
    }

    /// The certificate in PEM.
    pub fn pem(&self) -> Result<MemoryText, SslError> {
        let text = MemoryText::new()?;
        // SAFETY: a live certificate and BIO.
        check(unsafe { sys::PEM_write_bio_X509(text.0.as_ptr(), self.0.as_ptr()) })?;
        Ok(text)
    }
}

/// Text OpenSSL wrote into memory of its own (a memory BIO), freed on drop.
pub struct MemoryText(NonNull<sys::BIO>);

impl Drop for MemoryText {
    fn drop(&mut self) {
        // SAFETY: ours.
        unsafe { ffi::BIO_free(self.0.as_ptr()) };
    }
}

impl MemoryText {
    fn new() -> Result<MemoryText, SslError> {
        SslError::clear();
        // SAFETY: BIO_s_mem is static; BIO_new returns null on failure.
        NonNull::new(unsafe { sys::BIO_new(sys::BIO_s_mem()) })
            .map(MemoryText)
            .ok_or_else(SslError::take)
    }

    pub fn as_bytes(&self) -> &[u8] {
        let mut data: *mut c_char = ptr::null_mut();
        // SAFETY: a memory BIO; the bytes stay put until it is written to or freed, and neither
        // can happen while `self` is borrowed.
        unsafe {
            let len = sys::BIO_get_mem_data(self.0.as_ptr(), &mut data);
            if data.is_null() || len <= 0 {
                return &[];
            }
            std::slice::from_raw_parts(data as *const u8, len as usize)
        }
    }
}

// --------------------------------------------------------------------------- options ----

/// LuaSec's names of OpenSSL's options with OpenSSL 3's bits (ssl.h). Names OpenSSL 3 keeps
/// only for compatibility are 0: accepted, and they change nothing. DTLS options and
/// `no_ssl_mask` are not here: they would switch TLS itself off.
pub const OPTIONS: &[(&str, u64)] = &[
    ("all", 1 << 31 | 1 << 11 | 1 << 4 | 1 << 6),
    ("allow_client_renegotiation", 1 << 8),
    ("allow_no_dhe_kex", 1 << 10),
    ("allow_unsafe_legacy_renegotiation", 1 << 18),
    ("cipher_server_preference", 1 << 22),
    ("cisco_anyconnect", 1 << 15),
    ("cleanse_plaintext", 1 << 1),
    ("cookie_exchange", 1 << 13),
    ("cryptopro_tlsext_bug", 1 << 31),
    ("disable_tlsext_ca_names", 1 << 9),
    ("dont_insert_empty_fragments", 1 << 11),
    ("enable_ktls", 1 << 3),
    ("enable_middlebox_compat", 1 << 20),
    ("ephemeral_rsa", 0),
    ("ignore_unexpected_eof", 1 << 7),
    ("legacy_server_connect", 1 << 2),
    ("microsoft_big_sslv3_buffer", 0),
    ("microsoft_sess_id_bug", 0),
    ("msie_sslv2_rsa_padding", 0),
    ("netscape_ca_dn_bug", 0),
    ("netscape_challenge_bug", 0),
    ("netscape_demo_cipher_change_bug", 0),
    ("netscape_reuse_cipher_change_bug", 0),
    ("no_anti_replay", 1 << 24),
    ("no_compression", 1 << 17),
    ("no_encrypt_then_mac", 1 << 19),
    ("no_extended_master_secret", 1 << 0),
    ("no_query_mtu", 1 << 12),
    ("no_renegotiation", 1 << 30),
    ("no_session_resumption_on_renegotiation", 1 << 16),
    ("no_sslv2", 0),
    ("no_sslv3", 1 << 25),
    ("no_ticket", 1 << 14),
    ("no_tlsv1", 1 << 26),
    ("no_tlsv1_1", 1 << 28),
    ("no_tlsv1_2", 1 << 27),
    ("no_tlsv1_3", 1 << 29),
    ("pkcs1_check_1", 0),
    ("pkcs1_check_2", 0),
    ("prioritize_chacha", 1 << 21),
    ("safari_ecdhe_ecdsa_bug", 1 << 6),
    ("single_dh_use", 0),
    ("single_ecdh_use", 0),
    ("ssleay_080_client_dh_bug", 0),
    ("sslref2_reuse_cert_type_bug", 0),
    ("tls_block_padding_bug", 0),
    ("tls_d5_bug", 0),
    ("tls_rollback_bug", 1 << 23),
    ("tlsext_padding", 1 << 4),
];

/// The bits of the option LuaSec names `name`.
pub fn option_bits(name: &[u8]) -> Option<u64> {
    OPTIONS
        .iter()
        .find(|(known, _)| known.as_bytes() == name)
        .map(|(_, bits)| *bits)
}

#[cfg(test)]
mod tests {
    //! Handshakes between a client and a server `SSL` over an in-memory BIO pair: what the
    //! connection code will get from these handles, without sockets or libevent.

    use super::*;
    use std::ffi::CString;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    extern "C" {
        fn BIO_new_bio_pair(
            bio1: *mut *mut sys::BIO,
            size1: usize,
            bio2: *mut *mut sys::BIO,
            size2: usize,
        ) -> c_int;
        fn SSL_get_client_CA_list(ssl: *const sys::SSL) -> *mut c_void;
        fn OPENSSL_sk_num(stack: *const c_void) -> c_int;
    }

    /// Certificates made with the `openssl` command: a CA, a server certificate for localhost
    /// and 127.0.0.1 signed by it, a client certificate signed by it, a self-signed one. Made
    /// once per machine (valid ten years) in a folder of their own, then reused.
    fn certs() -> &'static PathBuf {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let kept = std::env::temp_dir().join("luaevent-rs-tls-unit-tests");
            if kept.join("complete").exists() {
                return kept;
            }
            let dir = std::env::temp_dir().join(format!("luaevent-rs-tls-unit-tests.{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let sh = |script: &str| {
                let status = Command::new("sh").arg("-c").arg(script).current_dir(&dir).output().unwrap();
                assert!(status.status.success(), "{script}: {}", String::from_utf8_lossy(&status.stderr));
            };
            let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
            sh(&format!("openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 3650 -subj '/CN=luaevent-rs test CA'"));
            for (name, subject, ext) in [
                ("server", "/CN=localhost/O=luaevent-rs", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                ("client", "/CN=a client", "extendedKeyUsage=clientAuth"),
            ] {
                sh(&format!("openssl req {ec} -keyout {name}.key -out {name}.csr -subj '{subject}'"));
                std::fs::write(dir.join(format!("{name}.ext")), format!("{ext}\n")).unwrap();
                sh(&format!(
                    "openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 3650 -extfile {name}.ext"
                ));
            }
            sh(&format!("openssl req -x509 {ec} -keyout self.key -out self.pem -days 3650 -subj '/CN=localhost'"));
            std::fs::write(dir.join("complete"), "").unwrap();
            // Another test run may have got there first: then its folder is used.
            if std::fs::rename(&dir, &kept).is_err() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            kept
        })
    }

    fn path(name: &str) -> CString {
        CString::new(certs().join(name).to_str().unwrap()).unwrap()
    }

    fn server_context(certificate: &str, key: &str) -> SslContext {
        let context = SslContext::new(Role::Server).unwrap();
        context
            .set_minimum_protocol(MinimumProtocol::Tls12)
            .unwrap();
        context
            .use_certificate_chain_file(&path(certificate))
            .unwrap();
        context
            .use_private_key_file(&path(key), &mut |_| None)
            .unwrap();
        context.check_private_key().unwrap();
        context
    }

    fn client_context(mode: c_int, continue_on_failure: bool) -> SslContext {
        let context = SslContext::new(Role::Client).unwrap();
        context
            .set_minimum_protocol(MinimumProtocol::Tls12)
            .unwrap();
        context
            .load_verify_locations(Some(&path("ca.pem")), None)
            .unwrap();
        context.set_verify(mode, continue_on_failure);
        context
    }

    /// Runs the handshake to its end; whether each side finished it.
    fn handshake(client: &Ssl, server: &Ssl) -> (bool, bool) {
        // SAFETY: both SSLs are live; each takes one reference to its end of the pair.
        unsafe {
            let (mut a, mut b) = (ptr::null_mut(), ptr::null_mut());
            assert_eq!(BIO_new_bio_pair(&mut a, 0, &mut b, 0), 1);
            sys::SSL_set_bio(client.as_ptr(), a, a);
            sys::SSL_set_bio(server.as_ptr(), b, b);
            let mut done = [false, false];
            for _ in 0..20 {
                for (side, ssl) in [client, server].into_iter().enumerate() {
                    if !done[side] {
                        let result = sys::SSL_do_handshake(ssl.as_ptr());
                        done[side] = result == 1;
                        let error = sys::SSL_get_error(ssl.as_ptr(), result);
                        if result != 1
                            && error != sys::SSL_ERROR_WANT_READ
                            && error != sys::SSL_ERROR_WANT_WRITE
                        {
                            SslError::clear();
                            return (done[0], done[1]);
                        }
                    }
                }
                if done == [true, true] {
                    break;
                }
            }
            (done[0], done[1])
        }
    }

    fn text(text: MemoryText) -> String {
        String::from_utf8(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_verified_handshake_tells_its_facts() {
        let server = server_context("server.pem", "server.key");
        server.set_alpn_accepted(b"\x0bxmpp-client\x02h2").unwrap();
        let client = client_context(VERIFY_PEER, false);
        client.set_alpn_offer(b"\x02h2\x08http/1.1").unwrap();
        let (c, s) = (
            client.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (true, true));

        let facts = c.facts();
        assert_eq!(facts.protocol, c"TLSv1.3");
        assert!(facts
            .cipher
            .is_some_and(|cipher| cipher.to_bytes().starts_with(b"TLS_")));
        assert_eq!(
            facts.alpn.map(|alpn| alpn.as_bytes().to_vec()),
            Some(b"h2".to_vec())
        );
        assert_eq!(facts.verification, Verification::Verified);
        assert_eq!(facts.verification.reason(), None);
        let peer = facts.peer.as_ref().unwrap();
        assert_eq!(text(peer.subject().unwrap()), "O=luaevent-rs,CN=localhost");
        assert_eq!(text(peer.issuer().unwrap()), "CN=luaevent-rs test CA");
        let not_after = text(peer.not_after().unwrap());
        assert!(
            not_after.len() == 20 && not_after.ends_with('Z'),
            "{not_after}"
        );
        assert!(text(peer.pem().unwrap()).starts_with("-----BEGIN CERTIFICATE-----\n"));

        let facts = s.facts();
        assert_eq!(
            facts.server_name.map(|name| name.as_bytes().to_vec()),
            Some(b"localhost".to_vec())
        );
        assert_eq!(
            facts.alpn.map(|alpn| alpn.as_bytes().to_vec()),
            Some(b"h2".to_vec())
        );
        assert_eq!(facts.verification, Verification::NoCertificate);
        assert!(facts.peer.is_none());
    }

    #[test]
    fn a_wrong_host_name_ends_the_handshake() {
        let server = server_context("server.pem", "server.key");
        let client = client_context(VERIFY_PEER, false);
        let (c, s) = (
            client.view().client_ssl(Some(c"example.com")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert!(!handshake(&c, &s).0);
        assert_eq!(c.facts().verification.reason(), Some(c"hostname mismatch"));
    }

    #[test]
    fn an_address_is_checked_against_the_certificate_and_not_sent_as_sni() {
        let server = server_context("server.pem", "server.key");
        let client = client_context(VERIFY_PEER, false);
        let (c, s) = (
            client.view().client_ssl(Some(c"127.0.0.1")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (true, true));
        assert!(s.facts().server_name.is_none());
        let (c, s) = (
            client.view().client_ssl(Some(c"127.0.0.2")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert!(!handshake(&c, &s).0);
        assert_eq!(
            c.facts().verification.reason(),
            Some(c"IP address mismatch")
        );
    }

    #[test]
    fn a_self_signed_server_fails_unless_verification_is_off_or_continues() {
        let server = server_context("self.pem", "self.key");
        for (mode, keep_going, connects) in [
            (VERIFY_PEER, false, false),
            (0, false, true),
            (VERIFY_PEER, true, true),
        ] {
            let client = client_context(mode, keep_going);
            let (c, s) = (
                client.view().client_ssl(Some(c"localhost")).unwrap(),
                server.view().server_ssl().unwrap(),
            );
            assert_eq!(
                handshake(&c, &s).0,
                connects,
                "mode {mode}, continue {keep_going}"
            );
            let facts = c.facts();
            assert!(matches!(facts.verification, Verification::Failed(_)));
            assert_eq!(
                facts.verification.reason(),
                Some(c"self-signed certificate")
            );
        }
    }

    #[test]
    fn a_server_can_require_a_client_certificate() {
        let server = server_context("server.pem", "server.key");
        server
            .load_verify_locations(Some(&path("ca.pem")), None)
            .unwrap();
        server.set_verify(VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT, false);
        let anonymous = client_context(VERIFY_PEER, false);
        let (c, s) = (
            anonymous.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert!(!handshake(&c, &s).1);

        server.set_client_ca_list(&path("ca.pem")).unwrap();
        let client = client_context(VERIFY_PEER, false);
        client
            .use_certificate_chain_file(&path("client.pem"))
            .unwrap();
        client
            .use_private_key_file(&path("client.key"), &mut |_| None)
            .unwrap();
        let (c, s) = (
            client.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (true, true));
        // SAFETY: a live SSL; the list (the CA names the server sent) belongs to it.
        let names = unsafe { OPENSSL_sk_num(SSL_get_client_CA_list(c.as_ptr())) };
        assert_eq!(names, 1, "the client heard which CA the server accepts");
        let facts = s.facts();
        assert_eq!(facts.verification, Verification::Verified);
        assert_eq!(text(facts.peer.unwrap().subject().unwrap()), "CN=a client");
    }

    #[test]
    fn verifying_as_server_certificates_refuses_a_client_only_certificate() {
        let server = server_context("server.pem", "server.key");
        server
            .load_verify_locations(Some(&path("ca.pem")), None)
            .unwrap();
        server.set_verify(VERIFY_PEER, true);
        server.verify_as_server_certificates().unwrap();
        let client = client_context(VERIFY_PEER, false);
        client
            .use_certificate_chain_file(&path("client.pem"))
            .unwrap();
        client
            .use_private_key_file(&path("client.key"), &mut |_| None)
            .unwrap();
        let (c, s) = (
            client.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (true, true));
        assert_eq!(
            s.facts().verification.reason(),
            Some(c"unsuitable certificate purpose")
        );
    }

    #[test]
    fn no_common_alpn_protocol_means_none() {
        let server = server_context("server.pem", "server.key");
        server.set_alpn_accepted(b"\x02h2").unwrap();
        let client = client_context(VERIFY_PEER, false);
        client.set_alpn_offer(b"\x08http/1.1").unwrap();
        let (c, s) = (
            client.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (true, true));
        assert!(c.facts().alpn.is_none());
    }

    #[test]
    fn a_minimum_of_tls_1_3_refuses_a_tls_1_2_peer() {
        let server = server_context("server.pem", "server.key");
        server.set_minimum_protocol(MinimumProtocol::Tls13).unwrap();
        let client = client_context(VERIFY_PEER, false);
        // SAFETY: a live context.
        unsafe { sys::SSL_CTX_set_max_proto_version(client.as_ptr(), sys::TLS1_2_VERSION) };
        let (c, s) = (
            client.view().client_ssl(Some(c"localhost")).unwrap(),
            server.view().server_ssl().unwrap(),
        );
        assert_eq!(handshake(&c, &s), (false, false));
    }

    #[test]
    fn the_password_callback_gets_openssl_buffer_and_a_refusal_fails_the_load() {
        let dir = certs();
        let encrypted = format!("encrypted-{}.key", std::process::id());
        let status = Command::new("openssl")
            .args([
                "pkey",
                "-in",
                "server.key",
                "-aes256",
                "-passout",
                "pass:pw",
                "-out",
                &encrypted,
            ])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success());
        let context = SslContext::new(Role::Server).unwrap();
        context
            .use_certificate_chain_file(&path("server.pem"))
            .unwrap();
        // OpenSSL may ask again after a refusal (it tries more than one decoder).
        let mut asked = 0;
        assert!(context
            .use_private_key_file(&path(&encrypted), &mut |_| {
                asked += 1;
                None
            })
            .is_err());
        assert!(asked >= 1);
        let mut size = 0;
        let loaded = context.use_private_key_file(&path(&encrypted), &mut |buffer| {
            size = buffer.len();
            buffer[..2].copy_from_slice(b"pw");
            Some(2)
        });
        assert_eq!(loaded, Ok(()));
        assert_eq!(size, 1024);
        context.check_private_key().unwrap();
        // A key of another certificate.
        assert!(context
            .use_private_key_file(&path("self.key"), &mut |_| None)
            .unwrap_err()
            .is_key_mismatch());
        let _ = std::fs::remove_file(dir.join(&encrypted));
    }

    #[test]
    fn errors_read_as_openssl_or_the_system_says() {
        let context = SslContext::new(Role::Server).unwrap();
        let missing = context
            .use_certificate_chain_file(c"/nonexistent/cert.pem")
            .unwrap_err();
        assert_eq!(missing.to_string(), "No such file or directory");
        assert_eq!(Because(missing).to_string(), ": No such file or directory");
        assert_eq!(Because(SslError(0)).to_string(), "");
        assert_eq!(SslError::take(), SslError(0), "the queue is left empty");
    }

    #[test]
    fn option_bits_agree_with_openssl_sys() {
        assert_eq!(option_bits(b"no_ticket"), Some(sys::SSL_OP_NO_TICKET));
        assert_eq!(option_bits(b"all"), Some(sys::SSL_OP_ALL));
        assert_eq!(
            option_bits(b"no_compression"),
            Some(sys::SSL_OP_NO_COMPRESSION)
        );
        assert_eq!(
            option_bits(b"cipher_server_preference"),
            Some(sys::SSL_OP_CIPHER_SERVER_PREFERENCE)
        );
        assert_eq!(option_bits(b"no_tlsv1"), Some(sys::SSL_OP_NO_TLSv1));
        assert_eq!(option_bits(b"no_tlsv1_1"), Some(sys::SSL_OP_NO_TLSv1_1));
        assert_eq!(option_bits(b"no_tlsv1_2"), Some(sys::SSL_OP_NO_TLSv1_2));
        assert_eq!(option_bits(b"no_tlsv1_3"), Some(sys::SSL_OP_NO_TLSv1_3));
        assert_eq!(option_bits(b"no_sslv3"), Some(sys::SSL_OP_NO_SSLv3));
        assert_eq!(
            option_bits(b"ignore_unexpected_eof"),
            Some(sys::SSL_OP_IGNORE_UNEXPECTED_EOF)
        );
        assert_eq!(
            option_bits(b"no_renegotiation"),
            Some(sys::SSL_OP_NO_RENEGOTIATION)
        );
        assert_eq!(option_bits(b"no_dtls_mask"), None);
    }

    #[test]
    fn texts_are_c_strings_in_place() {
        let mut text = CText::<8>::new();
        assert_eq!(text.as_cstr(), c"");
        text.push(b"abc").unwrap();
        text.push(b":de").unwrap();
        assert_eq!(text.as_cstr(), c"abc:de");
        assert_eq!(text.push(b"fg"), Err(TextError::TooLong));
        assert_eq!(text.push(b"\0"), Err(TextError::Nul));
        assert_eq!(text.as_str(), "abc:de");
        let mut passphrase = Passphrase::new();
        assert!(passphrase.set(b"secret"));
        let mut small = [0u8; 4];
        assert_eq!(passphrase.copy_to(&mut small), None);
        let mut buffer = [0u8; 16];
        assert_eq!(passphrase.copy_to(&mut buffer), Some(6));
        assert!(!passphrase.set(&[1; 1025]));
    }
}
