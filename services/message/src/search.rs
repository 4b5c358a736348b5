//! What message search matches, the same in both stores: text is cut into
//! *terms*, each store keeps every live message's terms in an index
//! (SQLite: an FTS5 table; MongoDB: an array field with a multikey index),
//! and a query finds the messages holding all of its terms.
//!
//! - **Words** (runs of letters and digits) are folded: compatibility forms
//!   (NFKC: full-width letters, ligatures), then accents dropped (NFD
//!   without combining marks) and lower case, so `cafe` finds `Café` and
//!   `ＡＢＣ` finds `abc`. A word matches whole words.
//! - **Text written without spaces** (Han, Hiragana, Katakana) is indexed as
//!   each character and each pair of neighbours, so any run of one or more
//!   characters can be looked up (`東京` finds `東京タワー`). A query run of
//!   three or more needs all its pairs, then the message text is checked for
//!   the run itself (pairs alone could come from different places).

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// Longest term kept, in bytes: a longer word is cut there (on a character
/// boundary), in the index and in queries alike.
const MAX_TERM_BYTES: usize = 64;

/// Scripts written without spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{309F}' // Hiragana
        | '\u{30A0}'..='\u{30FF}' // Katakana
        | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{20000}'..='\u{3134F}' // CJK extensions B to G
    )
}

/// Hangul syllables: words with spaces between them, kept whole (NFD would
/// split them into letters).
fn hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7AF}')
}

/// `text` folded for matching: NFKC, then, outside unspaced scripts and
/// Hangul, accents dropped and lower case.
pub fn folded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkc() {
        if unspaced(c) || hangul(c) {
            out.push(c);
        } else {
            for d in std::iter::once(c).nfd().filter(|d| !is_combining_mark(*d)) {
                out.extend(d.to_lowercase());
            }
        }
    }
    out
}

/// A piece of folded text.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Word(&'a str),
    Unspaced(&'a str),
}

/// The words and unspaced runs of folded text, in order.
fn pieces(folded: &str) -> Vec<Piece<'_>> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Word,
        Unspaced,
        Other,
    }
    let class = |c: char| {
        if unspaced(c) {
            Class::Unspaced
        } else if c.is_alphanumeric() {
            Class::Word
        } else {
            Class::Other
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut current = Class::Other;
    for (i, c) in folded.char_indices().chain(std::iter::once((folded.len(), ' '))) {
        let now = class(c);
        if now != current {
            match current {
                Class::Word => out.push(Piece::Word(&folded[start..i])),
                Class::Unspaced => out.push(Piece::Unspaced(&folded[start..i])),
                Class::Other => {}
            }
            start = i;
            current = now;
        }
    }
    out
}

fn cut(word: &str) -> &str {
    if word.len() <= MAX_TERM_BYTES {
        return word;
    }
    let mut end = MAX_TERM_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

fn push_distinct(terms: &mut Vec<String>, term: &str) {
    if !terms.iter().any(|t| t == term) {
        terms.push(term.to_owned());
    }
}

/// Every term of `text`, each once: what an index keeps for a message.
pub fn terms(text: &str) -> Vec<String> {
    let folded = folded(text);
    let mut terms = Vec::new();
    for piece in pieces(&folded) {
        match piece {
            Piece::Word(w) => push_distinct(&mut terms, cut(w)),
            Piece::Unspaced(run) => {
                let chars: Vec<(usize, char)> = run.char_indices().collect();
                for (n, (at, c)) in chars.iter().enumerate() {
                    push_distinct(&mut terms, &run[*at..*at + c.len_utf8()]);
                    if let Some((next, d)) = chars.get(n + 1) {
                        push_distinct(&mut terms, &run[*at..*next + d.len_utf8()]);
                    }
                }
            }
        }
    }
    terms
}

/// A search: the terms a message must all hold, and the unspaced runs of
/// three or more characters its text must hold as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Each once.
    pub terms: Vec<String>,
    runs: Vec<String>,
}

impl SearchQuery {
    /// The query for what a user typed.
    pub fn parse(q: &str) -> Self {
        let folded = folded(q);
        let mut terms = Vec::new();
        let mut runs = Vec::new();
        for piece in pieces(&folded) {
            match piece {
                Piece::Word(w) => push_distinct(&mut terms, cut(w)),
                Piece::Unspaced(run) => {
                    let chars: Vec<(usize, char)> = run.char_indices().collect();
                    if chars.len() == 1 {
                        push_distinct(&mut terms, run);
                    }
                    for pair in chars.windows(2) {
                        let (at, _) = pair[0];
                        let (next, d) = pair[1];
                        push_distinct(&mut terms, &run[at..next + d.len_utf8()]);
                    }
                    if chars.len() >= 3 {
                        runs.push(run.to_owned());
                    }
                }
            }
        }
        Self { terms, runs }
    }

    /// Whether nothing in it can be searched for (only punctuation, say).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether a message found by its terms really matches: its text holds
    /// each long unspaced run as written.
    pub fn confirms(&self, content: &str) -> bool {
        if self.runs.is_empty() {
            return true;
        }
        let folded = folded(content);
        self.runs.iter().all(|run| folded.contains(run.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_accents_and_compatibility_forms() {
        assert_eq!(terms("Café CRÈME, naïve ＡＢＣ ﬁne"), ["cafe", "creme", "naive", "abc", "fine"]);
        assert_eq!(SearchQuery::parse("cafe").terms, terms("Café"));
        assert_eq!(terms("Straße Ελληνικά"), ["straße", "ελληνικα"]);
        assert_eq!(terms("don't stop-2-go"), ["don", "t", "stop", "2", "go"]);
    }

    #[test]
    fn unspaced_text_is_indexed_by_characters_and_pairs() {
        assert_eq!(terms("東京タ"), ["東", "東京", "京", "京タ", "タ"]);
        // Kana keep their voicing marks (NFD would split が into か and a mark).
        assert_eq!(terms("が"), ["が"]);
        // Mixed with words.
        assert_eq!(terms("Tokyo東京!"), ["tokyo", "東", "東京", "京"]);
        // Hangul stays whole words.
        assert_eq!(terms("안녕 하세요"), ["안녕", "하세요"]);
    }

    #[test]
    fn a_query_needs_every_term_and_long_runs_as_written() {
        let q = SearchQuery::parse("東京");
        assert_eq!(q.terms, ["東京"]);
        let indexed = terms("東京タワーに行こう");
        assert!(q.terms.iter().all(|t| indexed.contains(t)) && q.confirms("東京タワーに行こう"));

        let q = SearchQuery::parse("京タワ");
        assert_eq!(q.terms, ["京タ", "タワ"]);
        assert!(q.confirms("東京タワー"));
        // Both pairs, but not together.
        assert!(!q.confirms("京タ and タワ"));

        assert_eq!(SearchQuery::parse("東").terms, ["東"]);
        assert!(SearchQuery::parse("?!").is_empty());
    }

    #[test]
    fn very_long_words_are_cut_alike_in_index_and_query() {
        let long = "é".repeat(100);
        let indexed = terms(&long);
        assert!(indexed[0].len() <= MAX_TERM_BYTES);
        assert_eq!(SearchQuery::parse(&long).terms, indexed);
    }
}
