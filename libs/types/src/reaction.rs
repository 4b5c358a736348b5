//! What a reaction is: one emoji, or a `:shortcode:` of the server's own.

use crate::InvalidValue;

/// Longest shortcode name (between the colons).
pub const MAX_SHORTCODE: usize = 32;

/// A reaction's emoji: one emoji (a single extended grapheme cluster that
/// is an emoji, kept in its fully qualified form so `❤` and `❤️` are one
/// reaction) or a shortcode `:name:` of 1–32 `[a-z0-9_+-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReactionEmoji(String);

impl ReactionEmoji {
    /// Checks and normalises what a client sent.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let refused = || {
            InvalidValue::new(format!(
                "a reaction is one emoji or a :shortcode: of 1 to {MAX_SHORTCODE} of a-z 0-9 _ + -"
            ))
        };
        if let Some(name) = s.strip_prefix(':').and_then(|rest| rest.strip_suffix(':')) {
            let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '+' | '-');
            if !name.is_empty() && name.len() <= MAX_SHORTCODE && name.chars().all(allowed) {
                return Ok(Self(s.to_owned()));
            }
            return Err(refused());
        }
        // A lookup of the whole text: two emoji, or an emoji with anything
        // around it, are not one (nor is a skin-tone modifier alone).
        match emojis::get(s) {
            Some(e) => Ok(Self(e.as_str().to_owned())),
            _ => Err(refused()),
        }
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReactionEmoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_emoji_or_a_shortcode_is_a_reaction() {
        for ok in ["👍", "🇫🇷", "👩🏽‍💻", "👨‍👩‍👧", "1️⃣", "🏳️‍🌈", ":party_parrot:", ":+1:", ":a:", ":x-y_z+1:"]
        {
            assert_eq!(ReactionEmoji::parse(ok).unwrap().as_str(), ok, "{ok}");
        }
        // The unqualified heart is the qualified one.
        assert_eq!(ReactionEmoji::parse("\u{2764}").unwrap().as_str(), "\u{2764}\u{fe0f}");
    }

    #[test]
    fn anything_else_is_refused() {
        let long = format!(":{}:", "a".repeat(MAX_SHORTCODE + 1));
        for bad in [
            "",
            "a",
            "👍👍",
            "👍 ",
            " 👍",
            "ok",
            "::",
            ":Big:",
            ":with space:",
            ":é:",
            ":a",
            "a:",
            &long,
            "🏻",
            "\u{200d}",
            "<script>",
        ] {
            assert!(ReactionEmoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
