//! The presence rule: what a user's live connections and their own choice
//! say about them.

use crate::store::{Connection, UserRecord};

/// What others see of a user.
pub use chatterbox_types::PresenceStatus as Status;

/// The status of a user with `live` connections (expired ones already left
/// out) and `record`, at `now_ms`, when a connection unused for `idle_ms`
/// counts as idle.
pub fn decide(live: &[Connection], record: &UserRecord, now_ms: i64, idle_ms: i64) -> Status {
    if live.is_empty() {
        return Status::Offline;
    }
    match record.chosen {
        Some(Status::Away) => Status::Away,
        Some(Status::Offline) => Status::Offline,
        Some(Status::Online) | None => {
            if live.iter().any(|c| now_ms - c.active_at_ms < idle_ms) {
                Status::Online
            } else {
                Status::Away
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(active_at_ms: i64) -> Connection {
        Connection { id: "c".into(), active_at_ms, expires_at_ms: i64::MAX }
    }

    #[test]
    fn no_live_connection_is_offline_whatever_was_chosen() {
        let away = UserRecord { chosen: Some(Status::Away), ..UserRecord::default() };
        assert_eq!(decide(&[], &away, 0, 1000), Status::Offline);
        assert_eq!(decide(&[], &UserRecord::default(), 0, 1000), Status::Offline);
    }

    #[test]
    fn one_active_connection_is_enough_to_be_online() {
        let record = UserRecord::default();
        assert_eq!(decide(&[connection(0), connection(9_500)], &record, 10_000, 1000), Status::Online);
        assert_eq!(decide(&[connection(0), connection(8_000)], &record, 10_000, 1000), Status::Away);
    }

    #[test]
    fn a_choice_overrides_activity() {
        let live = [connection(10_000)];
        for (chosen, status) in
            [(Status::Away, Status::Away), (Status::Offline, Status::Offline), (Status::Online, Status::Online)]
        {
            let record = UserRecord { chosen: Some(chosen), ..UserRecord::default() };
            assert_eq!(decide(&live, &record, 10_000, 1000), status);
        }
    }
}
