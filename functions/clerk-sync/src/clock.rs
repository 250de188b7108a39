//! The one reading of the wall clock. The domain takes times as arguments; the functions read
//! them here.

/// Now, in Unix milliseconds (0 on a clock before 1970).
pub fn now_ms() -> i64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_this_code_was_written_and_in_milliseconds() {
        let now = super::now_ms();
        assert!(now > 1_790_000_000_000, "{now}");
        assert!(now < 10_000_000_000_000, "{now}");
    }
}
