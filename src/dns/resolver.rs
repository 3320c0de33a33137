//! The Lua resolver objects `core.dns.new` makes (`resolver:resolve`, `resolver:close`), and
//! how connecting by name picks its resolver; the lookups themselves are dns.rs's.

use std::cell::Cell;
use std::ffi::c_int;
use std::fmt;

use super::request::RequestUserdata;
use super::{
    base_dns, existing_base_dns, new_core, new_lookup, parse_nameserver, start, Client, Config,
    Core, Family, Hosts, ResolverHandle, ANCHORS, MAX_NAMESERVERS,
};
use crate::base::{base_argument, BaseShared, BaseUserdata, SLOT_DNS_ANCHORS};
use crate::lua::{
    lua_function, lua_type, Address, Failure, Kind, Outcome, Returns, Stack, TypeSpec,
};
use crate::shared::{clone_from_cell, Shared};
use crate::time::seconds_to_micros;

/// The resolver for connecting on the base at `base_index`: the resolver object at `dns_index`
/// when one is given (not nil), else the base's default resolver, made on first use.
#[allow(dead_code)] // for bufferevent.connect, written alongside
pub fn resolver_for_connect(
    stack: &mut Stack,
    base_index: c_int,
    dns_index: Option<c_int>,
    options_argument: c_int,
) -> Result<ResolverHandle, Failure> {
    let base = base_argument(stack, base_index)?;
    if let Some(index) = dns_index.filter(|&index| !stack.is_none_or_nil(index)) {
        // The resolver sits in the options table: errors name that argument, not its stack slot.
        let Some(resolver) = stack.test_userdata::<ResolverUserdata>(index) else {
            return Err(Failure::argument(
                options_argument,
                format_args!(
                    "options.dns: resolver expected, got {}",
                    stack.type_name(index)
                ),
            ));
        };
        let (Some(core), Some(resolver_base)) = (resolver.core(), resolver.base()) else {
            return Err(Failure::argument(
                options_argument,
                format_args!("options.dns: attempt to use a closed resolver"),
            ));
        };
        if !std::ptr::eq(&*resolver_base, &*base) {
            return Err(Failure::argument(
                options_argument,
                format_args!("options.dns: the resolver belongs to another event base"),
            ));
        }
        return Ok(ResolverHandle { base, core });
    }
    if let Some(core) = existing_base_dns(&base).and_then(|dns| clone_from_cell(&dns.default)) {
        return Ok(ResolverHandle { base, core });
    }
    let system = Config {
        nameservers: None,
        hosts: Hosts::System,
        timeout: None,
        attempts: None,
    };
    let core = new_core(stack, &base, &system, "core.bufferevent.connect")?;
    base_dns(&base)?.default.set(Some(core.clone()));
    Ok(ResolverHandle { base, core })
}

/// The Lua resolver object.
pub struct ResolverUserdata {
    /// Keeps the base alive as long as the object; `None` once collected.
    base: Cell<Option<Shared<BaseShared>>>,
    /// `None` once closed.
    core: Cell<Option<Shared<Core>>>,
}

lua_type!(ResolverUserdata, c"luaevent.core.dns.resolver", "resolver");

impl ResolverUserdata {
    fn base(&self) -> Option<Shared<BaseShared>> {
        clone_from_cell(&self.base)
    }

    fn core(&self) -> Option<Shared<Core>> {
        clone_from_cell(&self.core)
    }
}

/// Makes sure the base at `index` has its anchor table (in its slot, found through
/// [`ANCHORS`]).
fn ensure_anchors(stack: &mut Stack, index: c_int, base: &BaseShared) -> Result<(), Failure> {
    let top = stack.top();
    stack.push_slot(index, SLOT_DNS_ANCHORS);
    stack.push_weak_entry(&ANCHORS, Address::of(base));
    let present = stack.kind(-1) == Kind::Table && stack.raw_equal(-1, -2);
    stack.set_top(top);
    if present {
        return Ok(());
    }
    let table = stack.new_table(0, 4)?;
    stack.set_weak_entry(&ANCHORS, Address::of(base), table)?;
    stack.set_slot::<BaseUserdata>(index, SLOT_DNS_ANCHORS, table);
    Ok(())
}

/// Reads and checks the options table at `index`. The name server list and the hosts path
/// are left in stack slots pushed here, where the resolver's setup reads them.
fn read_options(stack: &mut Stack, index: c_int) -> Result<Config, Failure> {
    let mut config = Config {
        nameservers: None,
        hosts: Hosts::System,
        timeout: None,
        attempts: None,
    };
    let [nameservers, hosts, timeout, attempts] =
        stack.options(index, &["nameservers", "hosts", "timeout", "attempts"])?;
    if !stack.is_none_or_nil(nameservers) {
        check_nameservers(stack, index, nameservers)?;
        config.nameservers = Some(nameservers);
    }
    match stack.kind(hosts) {
        Kind::None | Kind::Nil => {}
        Kind::String => {
            if stack.c_string(hosts).is_none() {
                return Err(Failure::argument(
                    index,
                    format_args!("options.hosts: the path contains a NUL byte"),
                ));
            }
            config.hosts = Hosts::File(hosts);
        }
        Kind::Boolean if !stack.truthy(hosts) => config.hosts = Hosts::None,
        _ => {
            let got = describe(stack, hosts);
            return Err(Failure::argument(
                index,
                format_args!("options.hosts: a file path or false expected, got {got}"),
            ));
        }
    }
    if !stack.is_none_or_nil(timeout) {
        let seconds = stack
            .to_number(timeout)
            .filter(|_| stack.kind(timeout) == Kind::Number);
        let micros = seconds
            .filter(|&s| s > 0.0)
            .and_then(seconds_to_micros)
            .filter(|&m| m > 0);
        config.timeout = Some(micros.ok_or_else(|| {
            let got = describe(stack, timeout);
            Failure::argument(
                index,
                format_args!("options.timeout: a number of seconds > 0 expected, got {got}"),
            )
        })?);
    }
    if !stack.is_none_or_nil(attempts) {
        let number = stack
            .to_integer(attempts)
            .filter(|&n| stack.kind(attempts) == Kind::Number && (1..=255).contains(&n));
        config.attempts = Some(number.ok_or_else(|| {
            let got = describe(stack, attempts);
            Failure::argument(
                index,
                format_args!("options.attempts: an integer from 1 to 255 expected, got {got}"),
            )
        })?);
    }
    Ok(config)
}

/// A value as argument errors show it: a number, or its type.
struct Described {
    number: Option<f64>,
    what: &'static str,
}

fn describe(stack: &Stack, index: c_int) -> Described {
    Described {
        number: stack
            .to_number(index)
            .filter(|_| stack.kind(index) == Kind::Number),
        what: stack.type_name(index),
    }
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number {
            Some(number) => write!(f, "{number}"),
            None => write!(f, "{}", self.what),
        }
    }
}

/// Checks `options.nameservers` (the value at `list`): a non-empty list of addresses.
fn check_nameservers(stack: &mut Stack, index: c_int, list: c_int) -> Result<(), Failure> {
    if stack.kind(list) != Kind::Table {
        let got = stack.type_name(list);
        return Err(Failure::argument(
            index,
            format_args!("options.nameservers: a list of addresses expected, got {got}"),
        ));
    }
    let mut n = 1;
    loop {
        let kind = stack.push_field(list, n);
        if kind == Kind::Nil {
            stack.pop(1);
            break;
        }
        let valid = kind == Kind::String
            && stack
                .string_bytes(-1)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .and_then(parse_nameserver)
                .is_some();
        if !valid {
            let failure = match stack.string_bytes(-1).map(std::str::from_utf8) {
                Some(Ok(text)) if kind == Kind::String => Failure::argument(
                    index,
                    format_args!("options.nameservers[{n}]: invalid address '{text}'"),
                ),
                _ => Failure::argument(
                    index,
                    format_args!(
                        "options.nameservers[{n}]: an address string expected, got {}",
                        stack.type_name(-1)
                    ),
                ),
            };
            return Err(failure);
        }
        stack.pop(1);
        if n as usize == MAX_NAMESERVERS {
            if stack.push_field(list, n + 1) != Kind::Nil {
                return Err(Failure::argument(
                    index,
                    format_args!("options.nameservers: at most {MAX_NAMESERVERS} name servers"),
                ));
            }
            stack.pop(1);
            break;
        }
        n += 1;
    }
    if n == 1 {
        return Err(Failure::argument(
            index,
            format_args!("options.nameservers: at least one address expected"),
        ));
    }
    Ok(())
}

/// `core.dns.new(base [, options])`
pub fn new(stack: &mut Stack) -> Outcome {
    let base = base_argument(stack, 1)?;
    if stack.top() < 2 {
        stack.set_top(2); // options absent: a nil in their slot, below what is pushed next
    }
    let object = stack.new_userdata(ResolverUserdata {
        base: Cell::new(Some(base.clone())),
        core: Cell::new(None),
    })?;
    ensure_anchors(stack, 1, &base)?;
    // From here on no Lua code runs (raw reads only) until the core is stored.
    let config = read_options(stack, 2)?;
    let core = new_core(stack, &base, &config, "core.dns.new")?;
    stack
        .userdata::<ResolverUserdata>(object)?
        .core
        .set(Some(core));
    stack.set_top(object);
    Ok(Returns::Values(1))
}

/// `resolver:resolve(name, callback [, family])`
fn resolve(stack: &mut Stack) -> Outcome {
    let resolver = stack.userdata::<ResolverUserdata>(1)?;
    let closed = || Failure::argument(1, format_args!("attempt to use a closed resolver"));
    let base = resolver.base().ok_or_else(closed)?;
    resolver.core().ok_or_else(closed)?;
    let name_ok = match stack.c_string(2) {
        Some(name) if name.is_empty() => Err(Failure::argument(
            2,
            format_args!("a non-empty name expected"),
        )),
        Some(_) => Ok(()),
        None if stack.kind(2) == Kind::String => Err(Failure::argument(
            2,
            format_args!("the name contains a NUL byte"),
        )),
        None => Err(Failure::expected(stack, 2, "string")),
    };
    name_ok?;
    stack.callable(3, "function")?;
    let family = match stack.kind(4) {
        Kind::None | Kind::Nil => Family::Any,
        _ => match stack.string_bytes(4) {
            Some(b"inet") => Family::Inet,
            Some(b"inet6") => Family::Inet6,
            Some(b"any") => Family::Any,
            Some(other) => {
                let text = std::str::from_utf8(other).unwrap_or("?");
                return Err(Failure::argument(
                    4,
                    format_args!("'inet', 'inet6' or 'any' expected, got '{text}'"),
                ));
            }
            None => {
                return Err(Failure::argument(
                    4,
                    format_args!(
                        "'inet', 'inet6' or 'any' expected, got {}",
                        describe(stack, 4)
                    ),
                ))
            }
        },
    };
    if stack.push_weak_entry(&ANCHORS, Address::of(&*base)) != Kind::Table {
        return Err(Failure::message(format_args!(
            "resolver:resolve: the event base of this resolver was collected, so no loop could run the callback"
        )));
    }
    let anchors = stack.top();
    let object = stack.new_userdata(RequestUserdata::default())?;
    // Allocating may have run finalizers, and one of them may have closed the resolver.
    let core = stack
        .userdata::<ResolverUserdata>(1)?
        .core()
        .ok_or_else(closed)?;
    let name = stack
        .c_string(2)
        .ok_or_else(|| Failure::expected(stack, 2, "string"))?;
    let lookup = new_lookup(&core, name, family, Client::Lua)?;
    stack.set_address_field(anchors, Address::of(&*lookup), 3)?;
    let name = stack
        .c_string(2)
        .ok_or_else(|| Failure::expected(stack, 2, "string"))?;
    start(&lookup, name);
    stack.userdata::<RequestUserdata>(object)?.hold(lookup);
    stack.set_top(object);
    Ok(Returns::Values(1))
}

/// `resolver:close()`
fn close(stack: &mut Stack) -> Outcome {
    if let Some(core) = stack.userdata::<ResolverUserdata>(1)?.core.take() {
        core.close();
    }
    Ok(Returns::Values(0))
}

/// `__gc`: as close, and lets go of the base.
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(resolver) = stack.test_userdata::<ResolverUserdata>(1) {
        if let Some(core) = resolver.core.take() {
            core.close();
        }
        drop(resolver.base.take());
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<ResolverUserdata>(
    &[&[
        (c"resolve", lua_function!(resolve)),
        (c"close", lua_function!(close)),
    ]],
    &[(c"__gc", lua_function!(collect))],
);
