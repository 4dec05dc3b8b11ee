//! Dates as Nix prints them (`lastModifiedDate` = `%Y%m%d%H%M%S` in UTC), without a time
//! crate: days from the civil calendar (Howard Hinnant's algorithm).

/// (year, month, day, hour, minute, second) in UTC of a Unix time.
#[must_use]
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

/// `lastModifiedDate`: `%Y%m%d%H%M%S` (UTC).
#[must_use]
pub fn last_modified_date(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_nix() {
        assert_eq!(last_modified_date(1_704_067_200), "20240101000000");
        assert_eq!(last_modified_date(1_706_832_000), "20240202000000");
        assert_eq!(last_modified_date(0), "19700101000000");
        assert_eq!(last_modified_date(951_782_400 + 3_661), "20000229010101");
        assert_eq!(last_modified_date(1_795_671_779), "20261126054259");
    }
}
