//! `core.tls`: TLS contexts, `core.tls.context(params)`, configured from a table shaped like
//! LuaSec's `ssl.newcontext` parameters so that Prosody's and copas's tables carry over. A
//! context owns an `SSL_CTX` (freed by `__gc`); connections made from it hold references of
//! their own, so they outlive it safely.
//!
//! Secure by default: a client context verifies the peer against the system's trusted
//! certificates (or `cafile` / `capath`), and only `verify = "none"` turns that off; TLS 1.2 is
//! the minimum unless `protocol` says otherwise.
//!
//! # For the code that makes TLS connections (listener, connect, STARTTLS)
//! - [`context_argument`] reads a context argument: the object and a view of its `SSL_CTX`
//!   (an argument error once the context was finalized by hand).
//! - [`TlsContext::role`]: a client or a server context (a listener needs a server one, connect
//!   and a client STARTTLS a client one).
//! - [`client_ssl`]: a new client `SSL` (connect state) for a server name: the name is sent as
//!   SNI and the certificate must be valid for it (an IP address is checked against the
//!   certificate's IP entries and not sent); whether a failure ends the handshake follows the
//!   context's `verify`. [`server_ssl`]: a new server `SSL` (accept state). Both return an
//!   owned [`Ssl`]; `Ssl::into_raw` hands it to `bufferevent_openssl_*_new` (which frees it
//!   with the bufferevent when given `BEV_OPT_CLOSE_ON_FREE`).
//! - `openssl::SessionFacts::read(ssl)`: what `bev:tls()` returns (protocol, cipher, alpn,
//!   server name, verification and its reason, the peer certificate's subject, issuer,
//!   not_after and PEM), copied out of the `SSL`, so valid after the connection is gone.
//! - Contexts do not set `SSL_OP_IGNORE_UNEXPECTED_EOF`: the connection code decides how a
//!   peer that closes without a close notice ends (API.md: `EVBUFFER_EOF`).

use std::cell::Cell;
use std::ffi::c_int;
use std::fmt;
use std::ptr::NonNull;

use openssl_sys::SSL_CTX;

use crate::lua::{
    lua_function, lua_type, Argument, Failure, Key, Kind, Outcome, Returns, Stack, TypeSpec,
};
use crate::openssl::{
    self, check_folder, Because, CText, MinimumProtocol, Passphrase, Role, Ssl, SslContext,
    SslContextRef, TextError,
};

/// The Lua object.
pub struct TlsContext {
    /// `None` once finalized.
    raw: Cell<Option<NonNull<SSL_CTX>>>,
    role: Role,
}

lua_type!(TlsContext, c"luaevent.core.tls.context", "TLS context");

impl TlsContext {
    pub fn role(&self) -> Role {
        self.role
    }

    /// The context, while the object is not finalized.
    pub fn view(&self) -> Option<SslContextRef<'_>> {
        // SAFETY: `raw` holds a context given up by SslContext::into_raw until `close` takes
        // it back, which only `__gc` does: Lua code, which cannot run while `self` is borrowed
        // (borrows come from a `&Stack`, see the lua module's rule 3).
        self.raw.get().map(|raw| unsafe { SslContextRef::new(raw) })
    }

    /// Frees the context (connections made from it keep theirs). Idempotent.
    fn close(&self) {
        if let Some(raw) = self.raw.take() {
            // SAFETY: taken out of the cell, so taken back once.
            drop(unsafe { SslContext::from_raw(raw) });
        }
    }
}

impl Drop for TlsContext {
    /// Only a value that never reached Lua is dropped (Lua frees userdata memory without it).
    fn drop(&mut self) {
        self.close();
    }
}

/// The TLS context argument at `index`, and its `SSL_CTX`.
pub fn context_argument(
    stack: &Stack,
    index: c_int,
) -> Result<(&TlsContext, SslContextRef<'_>), Failure> {
    let context = stack.userdata::<TlsContext>(index)?;
    let view = context.view().ok_or_else(|| {
        Failure::argument(
            index,
            format_args!("attempt to use a finalized TLS context"),
        )
    })?;
    Ok((context, view))
}

/// The context given as an option (`options.tls`) at stack slot `index`, for a connection of
/// `role`: an argument error for argument `argument` when it is not a context, is finalized, or
/// plays the other role (a server context given to connect, say).
pub fn context_option(
    stack: &Stack,
    index: c_int,
    argument: c_int,
    role: Role,
) -> Result<SslContextRef<'_>, Failure> {
    let Some(context) = stack.test_userdata::<TlsContext>(index) else {
        return Err(Failure::argument(
            argument,
            format_args!(
                "options.tls: TLS context expected, got {}",
                stack.type_name(index)
            ),
        ));
    };
    let Some(view) = context.view() else {
        return Err(Failure::argument(
            argument,
            format_args!("options.tls: attempt to use a finalized TLS context"),
        ));
    };
    if context.role != role {
        let (wanted, got) = match role {
            Role::Client => ("client", "server"),
            Role::Server => ("server", "client"),
        };
        return Err(Failure::argument(
            argument,
            format_args!("options.tls: a {wanted} TLS context expected, got a {got} one"),
        ));
    }
    Ok(view)
}

/// A client connection from `context` for `server_name` (see the notes at the top); errors
/// start with `function`.
pub fn client_ssl(
    function: &str,
    context: SslContextRef<'_>,
    server_name: Option<&[u8]>,
) -> Result<Ssl, Failure> {
    let name = match server_name {
        None => None,
        Some(bytes) if bytes.is_empty() || bytes.len() > 255 => {
            return Err(Failure::message(format_args!(
                "{function}: a server name is 1 to 255 bytes long"
            )))
        }
        Some(bytes) => Some(CText::<256>::from_bytes(bytes).map_err(|_| {
            Failure::message(format_args!(
                "{function}: a server name cannot contain a NUL byte"
            ))
        })?),
    };
    context
        .client_ssl(name.as_ref().map(|name| name.as_cstr()))
        .map_err(|error| {
            Failure::message(format_args!(
                "{function}: could not start a TLS client{}",
                Because(error)
            ))
        })
}

/// A server connection from `context`; errors start with `function`.
pub fn server_ssl(function: &str, context: SslContextRef<'_>) -> Result<Ssl, Failure> {
    context.server_ssl().map_err(|error| {
        Failure::message(format_args!(
            "{function}: could not start a TLS server{}",
            Because(error)
        ))
    })
}

// ------------------------------------------------------------------ core.tls.context ----

/// Where the parameters are.
const PARAMS: c_int = 1;

/// The parameters this module knows (LuaSec's names).
const KNOWN: &[&str] = &[
    "mode",
    "protocol",
    "certificate",
    "key",
    "password",
    "cafile",
    "capath",
    "verify",
    "depth",
    "ciphers",
    "ciphersuites",
    "curve",
    "curveslist",
    "dhparam",
    "alpn",
    "options",
    "verifyext",
];

/// Longest path taken (Linux's PATH_MAX, the NUL included).
const PATH: usize = 4096;
/// Longest cipher, curve or ALPN list taken.
const LIST: usize = 4096;

fn fail(reason: fmt::Arguments<'_>) -> Failure {
    Failure::message(format_args!("core.tls.context: {reason}"))
}

/// Bytes from Lua shown in a message, cut before the first invalid UTF-8 byte.
fn show(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
    }
}

/// Pushes parameter `name` and returns its type; `false` counts as absent, as in LuaSec (Prosody
/// writes `curve = false` for "no curve").
fn push_param(stack: &mut Stack, name: &str) -> Kind {
    let kind = stack.push_named_entry(PARAMS, name.as_bytes());
    if kind == Kind::Boolean && stack.boolean(-1) == Some(false) {
        Kind::Nil
    } else {
        kind
    }
}

/// The failure for parameter `name` (on top) being of the wrong type.
fn wrong_type(stack: &Stack, name: &str, expected: &str) -> Failure {
    fail(format_args!(
        "'{name}' must be {expected}, got {}",
        stack.type_name(-1)
    ))
}

/// A string parameter, given to `read`; `None` when absent.
fn string_param<R>(
    stack: &mut Stack,
    name: &str,
    read: impl FnOnce(&[u8]) -> Result<R, Failure>,
) -> Result<Option<R>, Failure> {
    let result = match push_param(stack, name) {
        Kind::Nil => Ok(None),
        Kind::String => read(stack.string_bytes(-1).unwrap_or_default()).map(Some),
        _ => Err(wrong_type(stack, name, "a string")),
    };
    stack.pop(1);
    result
}

/// A path parameter, as a C string.
fn path_param(stack: &mut Stack, name: &str) -> Result<Option<CText<PATH>>, Failure> {
    string_param(stack, name, |bytes| {
        CText::from_bytes(bytes).map_err(|error| match error {
            TextError::TooLong => fail(format_args!("'{name}' is too long")),
            TextError::Nul => fail(format_args!("'{name}' contains a NUL byte")),
        })
    })
}

/// A parameter naming flags: a name, a list of names, or a set (`{ name = true }`, where
/// `false` leaves a name out); `each` gets every name. Whether the parameter was given.
fn names_param(
    stack: &mut Stack,
    name: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<bool, Failure> {
    let result = match push_param(stack, name) {
        Kind::Nil => Ok(false),
        Kind::String => each(stack.string_bytes(-1).unwrap_or_default()).map(|_| true),
        Kind::Table => {
            let table = stack.top();
            stack
                .for_each_entry(table, |stack, key, value| match (key, stack.kind(value)) {
                    (Key::Integer(_), Kind::String) => each(stack.string_bytes(value).unwrap_or_default()),
                    (Key::String(flag), Kind::Boolean) if stack.boolean(value) == Some(true) => each(flag),
                    (Key::String(_), Kind::Boolean) => Ok(()),
                    _ => Err(fail(format_args!(
                        "'{name}' must be a name, a list of names or a set of names, got a {} in the table",
                        stack.type_name(value)
                    ))),
                })
                .map(|_| true)
        }
        _ => Err(wrong_type(stack, name, "a string or a list of strings")),
    };
    stack.pop(1);
    result
}

/// A parameter holding a string or a list of strings, in order; `each` gets every string.
/// Whether the parameter was given.
fn list_param(
    stack: &mut Stack,
    name: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<bool, Failure> {
    let result = match push_param(stack, name) {
        Kind::Nil => Ok(false),
        Kind::String => each(stack.string_bytes(-1).unwrap_or_default()).map(|_| true),
        Kind::Table => {
            let table = stack.top();
            let mut n = 1;
            loop {
                let kind = stack.push_field(table, n);
                let step = match kind {
                    Kind::Nil => None,
                    Kind::String => Some(each(stack.string_bytes(-1).unwrap_or_default())),
                    _ => Some(Err(fail(format_args!(
                        "'{name}' must be a string or a list of strings, got a {} in the list",
                        stack.type_name(-1)
                    )))),
                };
                stack.pop(1);
                match step {
                    None => break Ok(true),
                    Some(Err(failure)) => break Err(failure),
                    Some(Ok(())) => n += 1,
                }
            }
        }
        _ => Err(wrong_type(stack, name, "a string or a list of strings")),
    };
    stack.pop(1);
    result
}

/// A string or list parameter joined with `:` (OpenSSL's list syntax); `None` when absent.
fn joined_param(stack: &mut Stack, name: &str) -> Result<Option<CText<LIST>>, Failure> {
    let mut text = CText::<LIST>::new();
    let given = list_param(stack, name, |item| {
        let joined = if text.is_empty() {
            text.push(item)
        } else {
            text.push(b":").and_then(|_| text.push(item))
        };
        joined.map_err(|error| match error {
            TextError::TooLong => fail(format_args!("'{name}' is too long")),
            TextError::Nul => fail(format_args!("'{name}' contains a NUL byte")),
        })
    })?;
    Ok(given.then_some(text))
}

/// `core.tls.context(params)`
pub fn context(stack: &mut Stack) -> Outcome {
    if stack.kind(PARAMS) != Kind::Table {
        return Err(Failure::expected(stack, PARAMS, "table"));
    }
    stack.set_top(PARAMS);
    // Every key first: a parameter this module does not support is never silently ignored.
    stack.for_each_entry(PARAMS, |stack, key, value| match key {
        Key::String(name) if KNOWN.iter().any(|known| known.as_bytes() == name) => Ok(()),
        Key::String(name) => Err(fail(format_args!("unsupported parameter '{}'", show(name)))),
        Key::Integer(n) => Err(fail(format_args!(
            "unsupported parameter [{n}] (parameters are named)"
        ))),
        Key::Other => Err(fail(format_args!(
            "unsupported parameter (a {} key)",
            stack.type_name(value - 1)
        ))),
    })?;
    let role = string_param(stack, "mode", |mode| match mode {
        b"client" => Ok(Role::Client),
        b"server" => Ok(Role::Server),
        other => Err(fail(format_args!(
            "unsupported mode '{}' (\"client\" or \"server\")",
            show(other)
        ))),
    })?
    .ok_or_else(|| {
        fail(format_args!(
            "'mode' is required (\"client\" or \"server\")"
        ))
    })?;
    let minimum = string_param(stack, "protocol", |protocol| match protocol {
        b"tlsv1_2" | b"tlsv1_2+" => Ok(MinimumProtocol::Tls12),
        b"tlsv1_3" | b"tlsv1_3+" => Ok(MinimumProtocol::Tls13),
        // LuaSec's "sslv23" is its old name of "any".
        b"any" | b"sslv23" => Ok(MinimumProtocol::LibraryDefault),
        other => Err(fail(format_args!(
            "unsupported protocol '{}' (\"tlsv1_2\", \"tlsv1_3\" or \"any\")",
            show(other)
        ))),
    })?
    .unwrap_or(MinimumProtocol::Tls12);

    let context = SslContext::new(role).map_err(|error| {
        fail(format_args!(
            "could not create a TLS context{}",
            Because(error)
        ))
    })?;
    context
        .set_minimum_protocol(minimum)
        .map_err(|error| fail(format_args!("could not set the protocol{}", Because(error))))?;
    let mut options = 0;
    names_param(stack, "options", |name| {
        options |= openssl::option_bits(name)
            .ok_or_else(|| fail(format_args!("unsupported option '{}'", show(name))))?;
        Ok(())
    })?;
    context.set_options(options);
    certificate_and_key(stack, &context)?;
    verification(stack, &context, role)?;
    algorithms(stack, &context)?;
    alpn(stack, &context, role)?;

    stack.new_userdata(TlsContext {
        raw: Cell::new(Some(context.into_raw())),
        role,
    })?;
    Ok(Returns::Values(1))
}

/// `certificate`, `key` and `password`: the certificate first, so that OpenSSL checks the key
/// against it as it loads.
fn certificate_and_key(stack: &mut Stack, context: &SslContext) -> Result<(), Failure> {
    let kind = push_param(stack, "password");
    stack.pop(1);
    if !matches!(kind, Kind::Nil | Kind::String | Kind::Function) {
        push_param(stack, "password");
        let failure = wrong_type(stack, "password", "a string or a function");
        stack.pop(1);
        return Err(failure);
    }
    let certificate = path_param(stack, "certificate")?;
    let key = path_param(stack, "key")?;
    let (certificate, key) = match (certificate, key) {
        (None, None) => return Ok(()),
        (Some(_), None) => return Err(fail(format_args!("'certificate' needs its 'key'"))),
        (None, Some(_)) => return Err(fail(format_args!("'key' needs its 'certificate'"))),
        (Some(certificate), Some(key)) => (certificate, key),
    };
    context
        .use_certificate_chain_file(certificate.as_cstr())
        .map_err(|error| {
            fail(format_args!(
                "cannot load certificate '{}'{}",
                certificate.as_str(),
                Because(error)
            ))
        })?;
    let mismatch = || {
        fail(format_args!(
            "the key '{}' does not match the certificate '{}'",
            key.as_str(),
            certificate.as_str()
        ))
    };

    // The password stays on the stack while the key loads: OpenSSL asks for it (only for an
    // encrypted key), and a function is called then, once.
    let kind = push_param(stack, "password");
    let password = stack.top();
    let mut secret = Passphrase::new();
    let mut known = false;
    let mut asked = false;
    let mut failure = None;
    let loaded = context.use_private_key_file(key.as_cstr(), &mut |buffer| {
        asked = true;
        if failure.is_some() {
            return None;
        }
        if !known {
            let fetched = match kind {
                Kind::String => Ok(secret.set(stack.string_bytes(password).unwrap_or_default())),
                Kind::Function => stack
                    .call_function(
                        password,
                        &[],
                        |stack, result| match stack.string_bytes(result) {
                            Some(bytes) => Ok(secret.set(bytes)),
                            None => Err(fail(format_args!(
                                "the password function returned {}, not a string",
                                stack.type_name(result)
                            ))),
                        },
                        |raised| fail(format_args!("the password function failed: {raised}")),
                    )
                    .and_then(|result| result),
                _ => return None,
            };
            match fetched {
                Ok(true) => known = true,
                Ok(false) => {
                    failure = Some(fail(format_args!("the password is longer than 1024 bytes")));
                    return None;
                }
                Err(error) => {
                    failure = Some(error);
                    return None;
                }
            }
        }
        let copied = secret.copy_to(buffer);
        if copied.is_none() {
            failure = Some(fail(format_args!(
                "the password is longer than OpenSSL takes ({} bytes)",
                buffer.len()
            )));
        }
        copied
    });
    stack.pop(1);
    if let Some(failure) = failure {
        return Err(failure);
    }
    match loaded {
        Ok(()) => {}
        Err(error) if error.is_key_mismatch() => return Err(mismatch()),
        Err(_) if asked && kind == Kind::Nil => {
            return Err(fail(format_args!(
                "cannot load key '{}': it is encrypted and no 'password' was given",
                key.as_str()
            )))
        }
        // A wrong password fails AES's padding check (bad decrypt), or once in a while passes
        // it and leaves bytes that decode as nothing: either way, what went wrong is the password.
        Err(_) if asked => {
            return Err(fail(format_args!(
                "cannot load key '{}': the password does not decrypt it",
                key.as_str()
            )))
        }
        Err(error) if error.is_undecodable() => {
            return Err(fail(format_args!(
                "cannot load key '{}': not a PEM private key OpenSSL can read",
                key.as_str()
            )))
        }
        Err(error) => {
            return Err(fail(format_args!(
                "cannot load key '{}'{}",
                key.as_str(),
                Because(error)
            )))
        }
    }
    context.check_private_key().map_err(|_| mismatch())
}

/// `verify`, `verifyext`, `depth`, `cafile` and `capath`.
fn verification(stack: &mut Stack, context: &SslContext, role: Role) -> Result<(), Failure> {
    let mut flags = 0;
    let mut none = false;
    names_param(stack, "verify", |name| {
        match name {
            b"none" => none = true,
            b"peer" => flags |= openssl::VERIFY_PEER,
            b"fail_if_no_peer_cert" => flags |= openssl::VERIFY_FAIL_IF_NO_PEER_CERT,
            b"client_once" => flags |= openssl::VERIFY_CLIENT_ONCE,
            other => {
                return Err(fail(format_args!(
                    "unsupported verify option '{}'",
                    show(other)
                )))
            }
        }
        Ok(())
    })?;
    // A client verifies unless told "none" (and not also "peer"); a server asks for a
    // certificate only when told "peer".
    let peer = flags & openssl::VERIFY_PEER != 0 || (role == Role::Client && !none);
    let (mut keep_going, mut as_server) = (false, false);
    names_param(stack, "verifyext", |name| {
        match name {
            b"lsec_continue" => keep_going = true,
            b"lsec_ignore_purpose" => as_server = true,
            other => {
                return Err(fail(format_args!(
                    "unsupported verifyext option '{}'",
                    show(other)
                )))
            }
        }
        Ok(())
    })?;
    let depth = match push_param(stack, "depth") {
        Kind::Nil => Ok(None),
        _ => match stack
            .to_integer(-1)
            .filter(|_| stack.kind(-1) == Kind::Number)
        {
            Some(depth) if (0..=i64::from(c_int::MAX)).contains(&depth) => Ok(Some(depth as c_int)),
            _ if stack.kind(-1) == Kind::Number => {
                Err(fail(format_args!("'depth' must be an integer >= 0")))
            }
            _ => Err(wrong_type(stack, "depth", "an integer")),
        },
    };
    stack.pop(1);
    let depth = depth?;

    let cafile = path_param(stack, "cafile")?;
    let capath = path_param(stack, "capath")?;
    if let Some(capath) = &capath {
        check_folder(capath.as_cstr()).map_err(|errno| {
            fail(format_args!(
                "cannot use CA folder '{}': {errno}",
                capath.as_str()
            ))
        })?;
    }
    if cafile.is_some() || capath.is_some() {
        context
            .load_verify_locations(
                cafile.as_ref().map(|file| file.as_cstr()),
                capath.as_ref().map(|path| path.as_cstr()),
            )
            .map_err(|error| match &cafile {
                Some(file) => fail(format_args!(
                    "cannot load CA file '{}'{}",
                    file.as_str(),
                    Because(error)
                )),
                None => fail(format_args!("cannot load CA folder{}", Because(error))),
            })?;
    } else if role == Role::Client || peer {
        // A client checks against the system's store even with verify = "none", so that the
        // session still tells whether the peer would have passed.
        context.set_default_verify_paths().map_err(|error| {
            fail(format_args!(
                "cannot load the system's trusted certificates{}",
                Because(error)
            ))
        })?;
    }
    // A server asking for certificates names the CAs of `cafile` to its clients.
    if let (Role::Server, true, Some(file)) = (role, peer, &cafile) {
        context
            .set_client_ca_list(file.as_cstr())
            .map_err(|error| {
                fail(format_args!(
                    "cannot load CA file '{}'{}",
                    file.as_str(),
                    Because(error)
                ))
            })?;
    }
    // Without "peer", OpenSSL ignores the other bits.
    context.set_verify(
        if peer {
            flags | openssl::VERIFY_PEER
        } else {
            0
        },
        keep_going,
    );
    if as_server {
        context.verify_as_server_certificates().map_err(|error| {
            fail(format_args!(
                "could not set lsec_ignore_purpose{}",
                Because(error)
            ))
        })?;
    }
    if let Some(depth) = depth {
        context.set_verify_depth(depth);
    }
    Ok(())
}

/// `ciphers`, `ciphersuites`, `curve` / `curveslist` and `dhparam`.
fn algorithms(stack: &mut Stack, context: &SslContext) -> Result<(), Failure> {
    if let Some(ciphers) = joined_param(stack, "ciphers")? {
        context
            .set_cipher_list(ciphers.as_cstr())
            .map_err(|error| {
                fail(format_args!(
                    "cannot use ciphers '{}'{}",
                    ciphers.as_str(),
                    Because(error)
                ))
            })?;
    }
    if let Some(suites) = joined_param(stack, "ciphersuites")? {
        context
            .set_ciphersuites(suites.as_cstr())
            .map_err(|error| {
                fail(format_args!(
                    "cannot use ciphersuites '{}'{}",
                    suites.as_str(),
                    Because(error)
                ))
            })?;
    }
    // As in LuaSec, a list of curves wins over a single curve.
    let curves = match joined_param(stack, "curveslist")? {
        Some(list) => Some(list),
        None => string_param(stack, "curve", |curve| {
            CText::from_bytes(curve)
                .map_err(|_| fail(format_args!("unsupported curve '{}'", show(curve))))
        })?,
    };
    if let Some(curves) = curves {
        context.set_groups_list(curves.as_cstr()).map_err(|error| {
            fail(format_args!(
                "unsupported curve in '{}'{}",
                curves.as_str(),
                Because(error)
            ))
        })?;
    }
    dh_parameters(stack, context)
}

/// `dhparam`: a PEM file, or (as Prosody gives it to LuaSec) a function returning PEM text,
/// called once here with LuaSec's arguments `(false, 2048)`.
fn dh_parameters(stack: &mut Stack, context: &SslContext) -> Result<(), Failure> {
    let result = match push_param(stack, "dhparam") {
        Kind::Nil => Ok(()),
        Kind::String => match CText::<PATH>::from_bytes(stack.string_bytes(-1).unwrap_or_default()) {
            Err(_) => Err(fail(format_args!("'dhparam' is too long or contains a NUL byte"))),
            Ok(path) => context.set_dh_parameters_file(path.as_cstr()).map_err(|error| {
                if error.is_undecodable() {
                    fail(format_args!("cannot load DH parameters '{}': not PEM DH parameters OpenSSL can read", path.as_str()))
                } else {
                    fail(format_args!("cannot load DH parameters '{}'{}", path.as_str(), Because(error)))
                }
            }),
        },
        Kind::Function => {
            let function = stack.top();
            stack
                .call_function(
                    function,
                    &[Argument::Boolean(false), Argument::Integer(2048)],
                    |stack, result| match stack.string_bytes(result) {
                        Some(pem) => context.set_dh_parameters_pem(pem).map_err(|error| {
                            if error.is_undecodable() {
                                fail(format_args!("cannot load the DH parameters 'dhparam' returned: not PEM DH parameters OpenSSL can read"))
                            } else {
                                fail(format_args!("cannot load the DH parameters 'dhparam' returned{}", Because(error)))
                            }
                        }),
                        None => Err(fail(format_args!("the dhparam function returned {}, not a string", stack.type_name(result)))),
                    },
                    |raised| fail(format_args!("the dhparam function failed: {raised}")),
                )
                .and_then(|result| result)
        }
        _ => Err(wrong_type(stack, "dhparam", "a file name or a function")),
    };
    stack.pop(1);
    result
}

/// `alpn`: the protocols a client offers, or those a server accepts, in order of preference.
fn alpn(stack: &mut Stack, context: &SslContext, role: Role) -> Result<(), Failure> {
    if push_param(stack, "alpn") == Kind::Function {
        stack.pop(1);
        return Err(fail(format_args!(
            "'alpn' as a function is not supported (give a list of protocol names)"
        )));
    }
    stack.pop(1);
    let mut wire = CText::<LIST>::new();
    let given = list_param(stack, "alpn", |name| {
        if name.is_empty() || name.len() > 255 {
            return Err(fail(format_args!(
                "ALPN protocol names are 1 to 255 bytes long"
            )));
        }
        wire.push(&[name.len() as u8])
            .and_then(|_| wire.push(name))
            .map_err(|error| match error {
                TextError::TooLong => fail(format_args!("'alpn' is too long")),
                TextError::Nul => fail(format_args!(
                    "ALPN protocol names cannot contain a NUL byte"
                )),
            })
    })?;
    if !given {
        return Ok(());
    }
    if wire.is_empty() {
        return Err(fail(format_args!("'alpn' names no protocol")));
    }
    let set = match role {
        Role::Client => context.set_alpn_offer(wire.as_bytes()),
        Role::Server => context.set_alpn_accepted(wire.as_bytes()),
    };
    set.map_err(|error| fail(format_args!("could not set ALPN{}", Because(error))))
}

/// `__gc`
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(context) = stack.test_userdata::<TlsContext>(1) {
        context.close();
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<TlsContext>(&[], &[(c"__gc", lua_function!(collect))]);
