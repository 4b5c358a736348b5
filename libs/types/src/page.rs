//! Page sizes of list calls: `limit` defaults to 50, at most 100 (`api.md`).

use crate::InvalidValue;

/// Page size when the caller gives none.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// Largest page.
pub const MAX_PAGE_LIMIT: u32 = 100;

/// A requested page size as it travels over gRPC (0 = none given), checked.
pub fn page_limit(requested: u32) -> Result<u32, InvalidValue> {
    match requested {
        0 => Ok(DEFAULT_PAGE_LIMIT),
        1..=MAX_PAGE_LIMIT => Ok(requested),
        _ => Err(InvalidValue::new(format!("limit must be between 1 and {MAX_PAGE_LIMIT}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_default_and_the_cap_holds() {
        assert_eq!(page_limit(0), Ok(50));
        assert_eq!(page_limit(100), Ok(100));
        assert!(page_limit(101).is_err());
    }
}
