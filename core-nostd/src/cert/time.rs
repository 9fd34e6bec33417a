//! Certificate times: Unix seconds to and from the civil calendar, and the
//! two X.509 encodings (RFC 5280 §4.1.2.5: UTCTime through 2049,
//! GeneralizedTime from 2050 on, both in UTC with seconds and a `Z`).

use super::der::tag;
use super::CertError;

const SECS_PER_DAY: u64 = 86_400;

/// The ASCII digits, indexed by value.
const DIGITS: &[u8; 10] = b"0123456789";

/// Latest year a certificate time may carry (GeneralizedTime has 4 digits).
pub(crate) const MAX_YEAR: u64 = 9999;

/// A UTC calendar time with second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: u64,
    pub month: u64,
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

// `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a date from 1970 on (Hinnant's algorithm, on
/// unsigned values because nothing before 1970 is representable here);
/// `None` only for a field far outside the calendar (year 0, month 0, day 0).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    // Shift the year to start in March so the leap day is the last day.
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y % 400;
    let mp = month.checked_add(9)? % 12;
    let doy = (mp.checked_mul(153)?.checked_add(2)? / 5)
        .checked_add(day)?
        .checked_sub(1)?;
    let doe = yoe
        .checked_mul(365)?
        .checked_add(yoe / 4)?
        .checked_sub(yoe / 100)?
        .checked_add(doy)?;
    // 719_468 days from 0000-03-01 to 1970-01-01.
    Some(
        era.checked_mul(146_097)?
            .checked_add(doe)?
            .saturating_sub(719_468),
    )
}

impl Civil {
    /// The calendar time of `unix` seconds. Callers bound `unix` (see
    /// [`MAX_YEAR`]); the arithmetic below stays far from overflow for any
    /// `u64` anyway since it only divides and adds small constants.
    // reason: after `doe` (a remainder below 146_097) every intermediate is
    // below 2^20, and `era` is only used through saturating operations.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn from_unix(unix: u64) -> Civil {
        let days = unix / SECS_PER_DAY;
        let secs = unix % SECS_PER_DAY;
        let z = days.saturating_add(719_468);
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe.saturating_add(era.saturating_mul(400)) + u64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
        }
    }

    /// Unix seconds, or `None` before 1970 or for a field out of range.
    pub fn to_unix(self) -> Option<u64> {
        if self.year < 1970
            || self.year > MAX_YEAR
            || !(1..=12).contains(&self.month)
            || self.day < 1
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return None;
        }
        days_from_civil(self.year, self.month, self.day)?
            .checked_mul(SECS_PER_DAY)?
            .checked_add(self.hour.checked_mul(3600)?)?
            .checked_add(self.minute.checked_mul(60)?)?
            .checked_add(self.second)
    }

    /// The same wall-clock time `years` calendar years later. February 29th
    /// becomes February 28th in a year without one (as OpenSSL and chrono do).
    pub fn plus_years(self, years: u64) -> Civil {
        let year = self.year.saturating_add(years);
        let day = if self.month == 2 && self.day == 29 && !is_leap(year) {
            28
        } else {
            self.day
        };
        Civil { year, day, ..self }
    }

    /// The DER tag this time is encoded with (RFC 5280 §4.1.2.5).
    pub fn tag(&self) -> u8 {
        if self.year < 2050 {
            tag::UTC_TIME
        } else {
            tag::GENERALIZED_TIME
        }
    }

    /// The encoded digits, `YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`; returns the
    /// buffer and how much of it is used.
    pub fn encode(&self) -> ([u8; 15], usize) {
        let mut out = [0u8; 15];
        let mut n = 0;
        let mut put = |v: u64, digits: u32| {
            let mut p = 10u64.saturating_pow(digits.saturating_sub(1));
            for _ in 0..digits {
                let digit = v.checked_div(p).unwrap_or(0) % 10;
                if let (Some(slot), Some(c)) = (out.get_mut(n), DIGITS.get(digit as usize)) {
                    *slot = *c;
                }
                n = n.saturating_add(1);
                p /= 10;
            }
        };
        if self.tag() == tag::UTC_TIME {
            put(self.year % 100, 2);
        } else {
            put(self.year, 4);
        }
        put(self.month, 2);
        put(self.day, 2);
        put(self.hour, 2);
        put(self.minute, 2);
        put(self.second, 2);
        if let Some(slot) = out.get_mut(n) {
            *slot = b'Z';
        }
        (out, n.saturating_add(1))
    }

    /// Decodes a UTCTime or GeneralizedTime value in the strict DER form.
    /// `offset` is where the element starts, for the error.
    pub fn decode(tag_byte: u8, value: &[u8], offset: usize) -> Result<Civil, CertError> {
        let bad = CertError::Time { offset };
        let (year_digits, expected_len) = match tag_byte {
            tag::UTC_TIME => (2, 13),
            tag::GENERALIZED_TIME => (4, 15),
            _ => return Err(bad),
        };
        if value.len() != expected_len || value.last() != Some(&b'Z') {
            return Err(bad);
        }
        let mut pos = 0usize;
        let mut take = |digits: usize| -> Result<u64, CertError> {
            let end = pos.checked_add(digits).ok_or(bad)?;
            let field = value.get(pos..end).ok_or(bad)?;
            pos = end;
            field.iter().try_fold(0u64, |acc, &c| {
                if c.is_ascii_digit() {
                    let digit = u64::from(c.checked_sub(b'0').ok_or(bad)?);
                    acc.checked_mul(10)
                        .and_then(|a| a.checked_add(digit))
                        .ok_or(bad)
                } else {
                    Err(bad)
                }
            })
        };
        let mut year = take(year_digits)?;
        if year_digits == 2 {
            year = year.saturating_add(if year < 50 { 2000 } else { 1900 });
        }
        let civil = Civil {
            year,
            month: take(2)?,
            day: take(2)?,
            hour: take(2)?,
            minute: take(2)?,
            second: take(2)?,
        };
        civil.to_unix().ok_or(bad)?;
        Ok(civil)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_civil_agree_on_known_dates() {
        // 2026-11-21 09:53:08 UTC
        let c = Civil::from_unix(1_795_254_788);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 11, 21, 9, 53, 8)
        );
        assert_eq!(c.to_unix(), Some(1_795_254_788));
        // 2000-02-29 00:00:00 and 2049-12-31 23:59:59
        for t in [951_782_400u64, 2_524_607_999, 0, 4_102_444_800] {
            assert_eq!(Civil::from_unix(t).to_unix(), Some(t));
        }
    }

    #[test]
    fn utc_time_until_2049_generalized_time_from_2050() {
        let last_utc = Civil::from_unix(2_524_607_999); // 2049-12-31 23:59:59
        assert_eq!(last_utc.tag(), tag::UTC_TIME);
        let (b, n) = last_utc.encode();
        assert_eq!(&b[..n], b"491231235959Z");
        let first_gen = Civil::from_unix(2_524_608_000);
        assert_eq!(first_gen.tag(), tag::GENERALIZED_TIME);
        let (b, n) = first_gen.encode();
        assert_eq!(&b[..n], b"20500101000000Z");
        assert_eq!(
            Civil::decode(tag::GENERALIZED_TIME, &b[..n], 0).unwrap(),
            first_gen
        );
    }

    #[test]
    fn leap_day_plus_ten_years_is_february_28th() {
        let leap = Civil::from_unix(951_782_400); // 2000-02-29
        let later = leap.plus_years(10);
        assert_eq!((later.year, later.month, later.day), (2010, 2, 28));
    }

    #[test]
    fn decode_rejects_bad_digits_and_ranges() {
        for bad in [
            &b"491231235959"[..],
            b"4912312359590",
            b"49123123595aZ",
            b"491331235959Z",
            b"490230000000Z",
            b"491231245959Z",
        ] {
            assert!(Civil::decode(tag::UTC_TIME, bad, 7).is_err());
        }
        assert_eq!(
            Civil::decode(tag::INTEGER, b"491231235959Z", 7),
            Err(CertError::Time { offset: 7 })
        );
    }
}
