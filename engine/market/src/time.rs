//! Timestamps: parsing the forms market files use, and printing them.
//!
//! All times inside Candlewick are `i64` milliseconds since the Unix epoch,
//! UTC. Calendar arithmetic uses Howard Hinnant's days-from-civil
//! algorithm, exact for the proleptic Gregorian calendar.

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected YYYY-MM-DD[ HH:MM[:SS[.fff]]][Z] or epoch seconds/ms/us")]
pub struct TimeError;

/// Parses `2017-04-19 09:00:00`, `2017-04-19T09:00:00Z`, `2004-08-19`,
/// optional fractional seconds, or an integer epoch.
///
/// An integer is read by magnitude: at least 1e14 is microseconds (Binance
/// spot files from 2025 on), at least 1e11 is milliseconds, else seconds.
/// Milliseconds stay below 1e14 until the year 5138.
///
/// # Errors
/// [`TimeError`] for anything else, including out-of-range fields.
pub fn parse_timestamp(s: &str) -> Result<i64, TimeError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return epoch_integer_to_ms(s.parse().map_err(|_| TimeError)?);
    }
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let (date, clock) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let days = parse_date(date)?;
    let ms_of_day = match clock {
        Some(c) => parse_clock(c)?,
        None => 0,
    };
    Ok(days * 86_400_000 + ms_of_day)
}

/// Converts an epoch integer of unknown unit to milliseconds (see
/// [`parse_timestamp`] for the rule).
///
/// # Errors
/// [`TimeError`] for a negative value or one past 1e17.
pub fn epoch_integer_to_ms(v: i64) -> Result<i64, TimeError> {
    match v {
        v if v < 0 => Err(TimeError),
        v if v >= 100_000_000_000_000_000 => Err(TimeError),
        v if v >= 100_000_000_000_000 => Ok(v / 1_000),
        v if v >= 100_000_000_000 => Ok(v),
        v => Ok(v * 1_000),
    }
}

fn parse_date(s: &str) -> Result<i64, TimeError> {
    let mut it = s.splitn(3, '-');
    let y: i64 = num(it.next(), 4)?;
    let m: i64 = num(it.next(), 2)?;
    let d: i64 = num(it.next(), 2)?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(TimeError);
    }
    Ok(days_from_civil(y, m, d))
}

fn parse_clock(s: &str) -> Result<i64, TimeError> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut it = hms.splitn(3, ':');
    let h: i64 = num(it.next(), 2)?;
    let mi: i64 = num(it.next(), 2)?;
    let se: i64 = match it.next() {
        Some(x) => num(Some(x), 2)?,
        None => 0,
    };
    if h > 23 || mi > 59 || se > 59 {
        return Err(TimeError);
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let mut digits = f
                .bytes()
                .take(3)
                .map(|b| i64::from(b - b'0'))
                .collect::<Vec<_>>();
            digits.resize(3, 0);
            digits[0] * 100 + digits[1] * 10 + digits[2]
        }
        Some(_) => return Err(TimeError),
    };
    Ok(((h * 60 + mi) * 60 + se) * 1_000 + ms)
}

fn num(part: Option<&str>, width: usize) -> Result<i64, TimeError> {
    match part {
        Some(p) if p.len() == width && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| TimeError)
        }
        _ => Err(TimeError),
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_market_files_use() {
        assert_eq!(parse_timestamp("1970-01-01"), Ok(0));
        assert_eq!(
            parse_timestamp("2017-04-19 09:00:00"),
            Ok(1_492_592_400_000)
        );
        assert_eq!(
            parse_timestamp("2017-04-19T09:00:00Z"),
            Ok(1_492_592_400_000)
        );
        assert_eq!(
            parse_timestamp("2017-04-19 09:00:00.250"),
            Ok(1_492_592_400_250)
        );
        assert_eq!(parse_timestamp("2004-08-19"), Ok(1_092_873_600_000));
        assert_eq!(parse_timestamp("1492592400"), Ok(1_492_592_400_000));
        assert_eq!(parse_timestamp("1492592400000"), Ok(1_492_592_400_000));
        assert_eq!(parse_timestamp("1735689600000000"), Ok(1_735_689_600_000));
    }

    #[test]
    fn refuses_impossible_dates() {
        for bad in [
            "2017-02-30",
            "2017-13-01",
            "2017-04-19 24:00:00",
            "19-04-2017",
            "",
            "abc",
        ] {
            assert_eq!(parse_timestamp(bad), Err(TimeError), "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_ms(1_492_592_400_000), "2017-04-19 09:00:00");
    }
}
