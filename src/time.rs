//! Durations as the module takes them from Lua: seconds (a float), kept as whole microseconds,
//! with the range libevent's `timeval` and the reference allow.

use std::ffi::c_int;

use crate::lua::{Failure, Stack};

/// A duration in whole microseconds.
pub type Micros = i64;

/// Seconds as whole microseconds, rounded to the nearest (so 1e-06 is one microsecond, not 0).
/// `None` for negative, NaN, infinite or absurdly large values (over 2^31 seconds).
pub fn seconds_to_micros(seconds: f64) -> Option<Micros> {
    if !(0.0..=2_147_483_648.0).contains(&seconds) {
        return None;
    }
    Some((seconds * 1e6).round() as Micros)
}

/// A duration argument in seconds, as whole microseconds (see [`seconds_to_micros`]).
pub fn timeout(stack: &Stack, index: c_int) -> Result<Micros, Failure> {
    let seconds = stack.number(index)?;
    seconds_to_micros(seconds).ok_or_else(|| {
        let range = "from 0 to 2^31 (2147483648)";
        Failure::argument(
            index,
            format_args!("timeout must be a number of seconds {range}, got {seconds}"),
        )
    })
}

/// A duration argument that may be absent or nil.
pub fn optional_timeout(stack: &Stack, index: c_int) -> Result<Option<Micros>, Failure> {
    if stack.is_none_or_nil(index) {
        Ok(None)
    } else {
        timeout(stack, index).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::seconds_to_micros;

    #[test]
    fn durations_round_to_the_nearest_microsecond() {
        assert_eq!(seconds_to_micros(1e-06), Some(1));
        assert_eq!(seconds_to_micros(0.0000004), Some(0));
        assert_eq!(seconds_to_micros(0.0000006), Some(1));
        assert_eq!(seconds_to_micros(1.5), Some(1_500_000));
        assert_eq!(seconds_to_micros(0.0), Some(0));
    }

    #[test]
    fn what_is_not_a_duration_is_refused() {
        assert_eq!(seconds_to_micros(-0.5), None);
        assert_eq!(seconds_to_micros(f64::NAN), None);
        assert_eq!(seconds_to_micros(f64::INFINITY), None);
        assert_eq!(seconds_to_micros(1e300), None);
    }
}
