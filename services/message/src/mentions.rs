//! `@username` in message text: finding the names written, and choosing,
//! once the conversation service has said which are participants, who is
//! mentioned.
//!
//! A mention is `@` at the start of the text or after a character that
//! cannot end a username (so `bob@example.com` mentions nobody), followed by
//! a username (3–32 of `[A-Za-z0-9_.-]`). Usernames may end in `.` or `-`,
//! but a sentence rarely means them to: `@bob.` names `bob.` if such a
//! participant exists, else `bob`.

use std::collections::HashMap;

use chatterbox_types::UserId;

/// Most distinct names looked up for one message; names past them mention
/// nobody (a message is at most 4,000 characters: some bound is needed).
pub const MOST_NAMES: usize = 50;

fn username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn plausible(name: &str) -> bool {
    (3..=32).contains(&name.len())
}

/// One `@name` as written: the whole run of username characters, and the
/// run without the punctuation that may end a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    whole: String,
    trimmed: String,
}

/// Every `@name` in `text`, in order, lower-cased (usernames are unique
/// case-insensitively).
fn written(text: &str) -> Vec<Written> {
    let mut found = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let starts = c == '@' && !previous.is_some_and(|p| username_char(p) || p == '@');
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let len = rest.find(|c: char| !username_char(c)).unwrap_or(rest.len());
        let whole = rest[..len].to_ascii_lowercase();
        let trimmed = whole.trim_end_matches(['.', '-']).to_owned();
        if plausible(&whole) || plausible(&trimmed) {
            found.push(Written { whole, trimmed });
        }
    }
    found
}

/// The distinct names to look up for `text` (both readings of each
/// `@name`), at most [`MOST_NAMES`] of them.
pub fn names_in(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for w in written(text) {
        for name in [w.whole, w.trimmed] {
            if plausible(&name) && !names.contains(&name) && names.len() < MOST_NAMES {
                names.push(name);
            }
        }
    }
    names
}

/// Who `text` mentions, given the participants among the names looked up
/// (`participants`: username, in any case, to user): each once, in the
/// order first mentioned.
pub fn chosen(text: &str, participants: &[(String, UserId)]) -> Vec<UserId> {
    let by_key: HashMap<String, UserId> =
        participants.iter().map(|(name, user)| (name.to_ascii_lowercase(), *user)).collect();
    let mut mentioned = Vec::new();
    for w in written(text) {
        let user = by_key.get(&w.whole).or_else(|| by_key.get(&w.trimmed));
        if let Some(user) = user
            && !mentioned.contains(user)
        {
            mentioned.push(*user);
        }
    }
    mentioned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_where_a_mention_can_start() {
        assert_eq!(names_in("hi @Alice and @bob_2!"), ["alice", "bob_2"]);
        assert_eq!(names_in("@carol: look"), ["carol"]);
        assert_eq!(names_in("(@dave)"), ["dave"]);
        assert!(names_in("mail bob@example.com").is_empty(), "an address mentions nobody");
        assert!(names_in("@@eve").is_empty());
        assert!(names_in("@ab is too short, @ alone nothing").is_empty());
        assert!(names_in(&format!("@{}", "x".repeat(33))).is_empty(), "longer than any username");
    }

    #[test]
    fn trailing_punctuation_gives_a_second_reading() {
        assert_eq!(names_in("thanks @bob."), ["bob.", "bob"]);
        assert_eq!(names_in("@a.b-"), ["a.b-", "a.b"]);
        assert_eq!(names_in("@bob--"), ["bob--", "bob"]);
    }

    #[test]
    fn names_are_bounded_and_distinct() {
        let text: String = (0..200).map(|i| format!("@user{i} @USER{i} ")).collect();
        let names = names_in(&text);
        assert_eq!(names.len(), MOST_NAMES);
        assert_eq!(names[0], "user0");
        assert_eq!(names[1], "user1", "one name however it is cased");
    }

    #[test]
    fn the_longest_participant_name_wins_and_each_user_counts_once() {
        let (bob, bob_dot, carol) = (UserId::generate(), UserId::generate(), UserId::generate());
        let only_bob = [("Bob".to_owned(), bob), ("carol".to_owned(), carol)];
        assert_eq!(chosen("@bob. then @CAROL and @bob again", &only_bob), [bob, carol]);
        let both = [("bob".to_owned(), bob), ("bob.".to_owned(), bob_dot)];
        assert_eq!(chosen("@bob.", &both), [bob_dot]);
        assert!(chosen("@mallory", &only_bob).is_empty(), "not a participant");
    }
}
