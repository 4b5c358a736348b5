//! Characters that change how text looks without being seen. Names refuse
//! them (a room "General" and a room "General" with a zero-width space are
//! two rooms a reader cannot tell apart); message text loses the bidi
//! controls that reorder what follows them; and names are compared by a key
//! that folds look-alike forms together (NFKC, lower case).

use unicode_normalization::UnicodeNormalization as _;

/// Bidirectional embeddings, overrides and isolates: they reorder the text
/// after them (U+202E shows `txt.exe` as `exe.txt`).
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Bidi marks: invisible, they only nudge neutral characters.
fn is_bidi_mark(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
}

/// Characters that take no visible room: zero-width spaces, invisible
/// fillers, the soft hyphen, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2064}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
    )
}

/// Joiners and variation selectors: emoji and some scripts need them, so
/// names may hold them, but they never make two names different.
fn is_joiner_or_selector(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}' | '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}')
        || ('\u{E0100}'..='\u{E01EF}').contains(&c)
}

/// Why a name cannot be used as it is, if it cannot.
pub(crate) fn hidden_in_name(s: &str) -> Option<&'static str> {
    if s.chars().any(|c| is_bidi_override(c) || is_bidi_mark(c)) {
        return Some("name may not contain text-direction controls");
    }
    if s.chars().any(is_invisible) {
        return Some("name may not contain invisible characters");
    }
    None
}

/// What names are compared by: compatibility forms folded (NFKC: full-width
/// letters, ligatures, composed and decomposed accents), lower case, joiners
/// and selectors dropped, runs of white space made one space.
pub fn name_key(s: &str) -> String {
    let folded: String = s.nfkc().flat_map(char::to_lowercase).filter(|c| !is_joiner_or_selector(*c)).collect();
    // Lower-casing can leave a form NFKC would change again.
    let folded: String = folded.nfkc().collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Message text without the bidi embeddings, overrides and isolates that
/// would reorder what follows them (marks, which cannot, are kept).
pub fn without_bidi_overrides(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(is_bidi_override) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !is_bidi_override(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_names_share_a_key() {
        let general = name_key("General");
        for same in ["general", "ＧＥＮＥＲＡＬ", "  General  ", "GENERAL"] {
            assert_eq!(name_key(same), general, "{same}");
        }
        assert_eq!(name_key("Café"), name_key("Cafe\u{301}"), "composed and decomposed accents");
        assert_eq!(name_key("ﬁre drill"), name_key("fire  drill"), "a ligature, and doubled spaces");
        assert_eq!(name_key("I \u{2764}\u{FE0F} Rust"), name_key("i \u{2764} rust"), "a variation selector");
        assert_ne!(name_key("General"), name_key("Generals"));
    }

    #[test]
    fn names_with_hidden_characters_are_refused() {
        for hidden in
            ["General\u{200B}", "\u{FEFF}General", "Gen\u{00AD}eral", "abc\u{202E}txt", "\u{2067}x", "a\u{200F}b"]
        {
            assert!(hidden_in_name(hidden).is_some(), "{hidden:?}");
        }
        // Emoji sequences and scripts that need joiners are fine.
        for fine in
            ["Family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", "\u{2764}\u{FE0F} fans", "می\u{200C}خواهم", "Café"]
        {
            assert_eq!(hidden_in_name(fine), None, "{fine:?}");
        }
    }

    #[test]
    fn message_text_loses_only_the_reordering_controls() {
        assert_eq!(without_bidi_overrides("see \u{202E}fdp.exe"), "see fdp.exe");
        assert_eq!(without_bidi_overrides("\u{2066}a\u{2069} b"), "a b");
        assert_eq!(without_bidi_overrides("a\u{200F}b"), "a\u{200F}b");
        assert!(matches!(without_bidi_overrides("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
