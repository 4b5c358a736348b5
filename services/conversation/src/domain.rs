//! The rules of conversations (`api.md`): one direct conversation per pair,
//! groups and rooms with admins, and 404 (never 403) for whatever the caller
//! takes no part in.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatterbox_errors::Error;
use chatterbox_events::EventBus;
use chatterbox_identity::Actor;
use chatterbox_store::StoreError;
use chatterbox_types::{ConversationId, Description, DisplayName, Timestamp, UserId};

use crate::activity::Activity;
use crate::announce::Announcer;
use crate::directory::UserDirectory;
use crate::store::{
    ActivityCursor, Block, BlockCursor, Conversation, ConversationRef, ConversationStore, Kind, NameCursor, Rename,
};

/// Most participants a group may be created with (rooms grow by joining).
pub const MAX_GROUP_SIZE: usize = 1000;
/// Conversations one `private_among` may name (a presence audience's bound).
pub const MAX_PRIVATE_AMONG: usize = 10_000;

/// A page of conversations (or of references to them).
#[derive(Debug, Clone)]
pub struct Page<T = Conversation> {
    /// The conversations.
    pub items: Vec<T>,
    /// Where the next page starts, if any.
    pub next_cursor: Option<String>,
}

/// A participant's place in a conversation, as the message and media
/// services are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The conversation's kind.
    pub kind: Kind,
    /// Whether they administer it.
    pub admin: bool,
    /// A direct conversation whose pair is separated by a block, either way
    /// round: readable, but nobody may write in it.
    pub blocked: bool,
}

/// Most conversation ids [`Conversations::ids`] answers.
pub const MOST_IDS: u32 = 10_000;

/// Most usernames one mention lookup may name.
pub const MOST_MENTIONS: usize = 100;

/// What a send or a new direct conversation between a blocker and the
/// user blocked gets, whichever of them asks.
pub fn blocked() -> Error {
    Error::permission_denied("one of you has blocked the other")
}

/// The conversation domain.
#[derive(Debug, Clone)]
pub struct Conversations {
    store: Arc<dyn ConversationStore>,
    users: Arc<dyn UserDirectory>,
    /// Tells participants, and services that cache membership, of changes.
    announce: Announcer,
    /// Last activity, noted by sends and written in batches.
    activity: Arc<Activity>,
}

/// What a conversation the caller takes no part in (or that does not
/// exist, or whose id is malformed) gets: the same 404 whichever.
pub(crate) fn not_found() -> Error {
    Error::not_found("conversation not found")
}

/// What a user who does not exist (or whose id is malformed) gets.
pub(crate) fn no_such_user(id: impl std::fmt::Display) -> Error {
    Error::not_found(format!("user {id} not found"))
}

fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

fn decode_cursor(cursor: &str) -> Result<Option<Vec<String>>, Error> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| Error::invalid("invalid cursor"))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::invalid("invalid cursor"))?;
    Ok(Some(text.split('\n').map(str::to_owned).collect()))
}

/// A page of at most `limit` of `items` (read one beyond it to know
/// whether more follow), with the cursor after its last item.
fn activity_page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> (Timestamp, ConversationId)) -> Page<T> {
    let next_cursor = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        let (last_activity, id) = key(&items[items.len() - 1]);
        encode_cursor(&[&last_activity.millis().to_string(), &id.to_string()])
    });
    Page { items, next_cursor }
}

fn activity_cursor(cursor: &str) -> Result<Option<ActivityCursor>, Error> {
    let Some(parts) = decode_cursor(cursor)? else { return Ok(None) };
    match parts.as_slice() {
        [at, id] => Ok(Some(ActivityCursor {
            last_activity: Timestamp::from_millis(at.parse().map_err(|_| Error::invalid("invalid cursor"))?),
            id: ConversationId::parse(id).map_err(|_| Error::invalid("invalid cursor"))?,
        })),
        _ => Err(Error::invalid("invalid cursor")),
    }
}

fn name_cursor(cursor: &str) -> Result<Option<NameCursor>, Error> {
    let Some(parts) = decode_cursor(cursor)? else { return Ok(None) };
    match parts.as_slice() {
        [key, id] => Ok(Some(NameCursor {
            name_key: key.clone(),
            id: ConversationId::parse(id).map_err(|_| Error::invalid("invalid cursor"))?,
        })),
        _ => Err(Error::invalid("invalid cursor")),
    }
}

/// The unique key of the direct conversation of a pair, whoever asks.
fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("direct:{low}:{high}")
}

fn room_key(name: &DisplayName) -> String {
    format!("room:{}", name.key())
}

impl Conversations {
    /// The domain over a store and the user directory, announcing changes
    /// on `events` once they are committed.
    pub fn new(store: Arc<dyn ConversationStore>, users: Arc<dyn UserDirectory>, events: Arc<dyn EventBus>) -> Self {
        Self { activity: Activity::new(store.clone()), store, users, announce: Announcer::new(events) }
    }

    /// Writes the activity noted so far, so a read shows its order.
    async fn settled(&self) {
        self.activity.flush().await;
    }

    async fn require_user(&self, actor: &Actor, user: UserId) -> Result<(), Error> {
        if self.users.exists(&actor.token, user).await? { Ok(()) } else { Err(no_such_user(user)) }
    }

    /// A conversation the actor takes part in; 404 otherwise.
    async fn visible(&self, actor: &Actor, id: ConversationId) -> Result<Conversation, Error> {
        self.settled().await;
        match self.store.get(id).await.map_err(Error::from)? {
            Some(c) if c.has_participant(actor.id) => Ok(c),
            _ => Err(not_found()),
        }
    }

    /// A visible group or room the actor administers.
    async fn administered(&self, actor: &Actor, id: ConversationId) -> Result<Conversation, Error> {
        let c = self.visible(actor, id).await?;
        if c.kind == Kind::Direct {
            return Err(Error::invalid("a direct conversation has no admins, names or other participants"));
        }
        if !c.has_admin(actor.id) {
            return Err(Error::permission_denied("only admins may do this"));
        }
        Ok(c)
    }

    /// The direct conversation with `other`, and whether it was just created.
    pub async fn create_direct(&self, actor: &Actor, other: UserId) -> Result<(Conversation, bool), Error> {
        if other == actor.id {
            return Err(Error::invalid("a direct conversation needs another user"));
        }
        let key = direct_key(actor.id, other);
        if let Some(existing) = self.store.get_by_unique_key(&key).await.map_err(Error::from)? {
            // One made before a block stays readable (sending in it is refused).
            return Ok((existing, false));
        }
        self.require_user(actor, other).await?;
        if self.store.blocked_between(actor.id, other).await.map_err(Error::from)? {
            return Err(blocked());
        }
        let now = Timestamp::now();
        let c = Conversation {
            id: ConversationId::generate(),
            kind: Kind::Direct,
            name: String::new(),
            description: String::new(),
            unique_key: key.clone(),
            name_key: String::new(),
            participants: vec![actor.id, other],
            admins: Vec::new(),
            created_by: actor.id,
            created_at: now,
            updated_at: now,
            last_activity: now,
        };
        match self.store.create(&c).await {
            Ok(()) => {
                self.announce.created(&c).await;
                Ok((c, true))
            }
            // Someone created it between our look and our write: theirs wins.
            Err(StoreError::Duplicate(_)) => {
                let existing = self.store.get_by_unique_key(&key).await.map_err(Error::from)?;
                Ok((
                    existing.ok_or_else(|| {
                        Error::invariant("a direct conversation vanished after a duplicate-key clash")
                    })?,
                    false,
                ))
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    /// A group of the actor and `participants`; the actor administers it.
    pub async fn create_group(
        &self,
        actor: &Actor,
        name: DisplayName,
        description: Description,
        participants: &[UserId],
    ) -> Result<Conversation, Error> {
        let mut members = vec![actor.id];
        let mut seen = HashSet::from([actor.id]);
        for user in participants {
            if seen.insert(*user) {
                members.push(*user);
            }
        }
        if members.len() < 2 {
            return Err(Error::invalid("a group needs at least one other participant"));
        }
        if members.len() > MAX_GROUP_SIZE {
            return Err(Error::invalid(format!("a group starts with at most {MAX_GROUP_SIZE} participants")));
        }
        for user in &members[1..] {
            self.require_user(actor, *user).await?;
        }
        let id = ConversationId::generate();
        let now = Timestamp::now();
        let c = Conversation {
            id,
            kind: Kind::Group,
            name: name.to_string(),
            description: description.as_str().to_owned(),
            unique_key: format!("group:{id}"),
            name_key: name.key(),
            participants: members,
            admins: vec![actor.id],
            created_by: actor.id,
            created_at: now,
            updated_at: now,
            last_activity: now,
        };
        self.store.create(&c).await.map_err(Error::from)?;
        self.announce.created(&c).await;
        Ok(c)
    }

    /// A public room with a unique name; the actor administers it.
    pub async fn create_room(
        &self,
        actor: &Actor,
        name: DisplayName,
        description: Description,
    ) -> Result<Conversation, Error> {
        let now = Timestamp::now();
        let c = Conversation {
            id: ConversationId::generate(),
            kind: Kind::Room,
            name: name.to_string(),
            description: description.as_str().to_owned(),
            unique_key: room_key(&name),
            name_key: name.key(),
            participants: vec![actor.id],
            admins: vec![actor.id],
            created_by: actor.id,
            created_at: now,
            updated_at: now,
            last_activity: now,
        };
        self.store.create(&c).await.map_err(|e| match e {
            StoreError::Duplicate(_) => Error::already_exists("a room with this name exists"),
            e => Error::from(e),
        })?;
        self.announce.created(&c).await;
        Ok(c)
    }

    /// A conversation the actor takes part in.
    pub async fn get(&self, actor: &Actor, id: ConversationId) -> Result<Conversation, Error> {
        self.visible(actor, id).await
    }

    /// The actor's place in a conversation they take part in (404 otherwise):
    /// one lookup, whatever the number of participants (a direct
    /// conversation, of two, also asks whether a block separates them).
    pub async fn access(&self, actor: &Actor, id: ConversationId) -> Result<Place, Error> {
        let member = self.store.membership(id, actor.id).await.map_err(Error::from)?.ok_or_else(not_found)?;
        let blocked = member.kind == Kind::Direct && self.direct_blocked(actor, id).await?;
        Ok(Place { kind: member.kind, admin: member.admin, blocked })
    }

    /// Which of `usernames` (at most [`MOST_MENTIONS`]; matched
    /// case-insensitively) belong to participants of a conversation the
    /// actor takes part in (404 otherwise): each with the username as its
    /// owner spells it now.
    pub async fn resolve_mentions(
        &self,
        actor: &Actor,
        id: ConversationId,
        usernames: &[String],
    ) -> Result<Vec<(String, UserId)>, Error> {
        if usernames.len() > MOST_MENTIONS {
            return Err(Error::invalid(format!("at most {MOST_MENTIONS} usernames at once")));
        }
        self.store.membership(id, actor.id).await.map_err(Error::from)?.ok_or_else(not_found)?;
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let users = self.users.by_usernames(&actor.token, usernames).await?;
        // One key lookup per named user, whatever the conversation's size.
        let members = futures::future::try_join_all(users.into_iter().map(|(name, user)| async move {
            let member = self.store.membership(id, user).await.map_err(Error::from)?;
            Ok::<_, Error>(member.map(|_| (name, user)))
        }))
        .await?;
        Ok(members.into_iter().flatten().collect())
    }

    /// Whether a block separates the two of direct conversation `id`, which
    /// the actor is one of.
    async fn direct_blocked(&self, actor: &Actor, id: ConversationId) -> Result<bool, Error> {
        let c = self.store.get(id).await.map_err(Error::from)?.ok_or_else(not_found)?;
        let Some(other) = c.participants.iter().copied().find(|u| *u != actor.id) else { return Ok(false) };
        self.store.blocked_between(actor.id, other).await.map_err(Error::from)
    }

    /// The actor blocks `user` (idempotent): from now on neither may start
    /// a direct conversation with the other or write in theirs. Answers
    /// whether it changed anything.
    pub async fn block(&self, actor: &Actor, user: UserId) -> Result<bool, Error> {
        if user == actor.id {
            return Err(Error::invalid("you cannot block yourself"));
        }
        self.require_user(actor, user).await?;
        let added = self.store.block(actor.id, user, Timestamp::now()).await.map_err(Error::from)?;
        self.standing_changed(actor.id, user).await?;
        Ok(added)
    }

    /// The actor lifts a block of `user` (idempotent).
    pub async fn unblock(&self, actor: &Actor, user: UserId) -> Result<bool, Error> {
        if user == actor.id {
            return Err(Error::invalid("you cannot block yourself"));
        }
        let removed = self.store.unblock(actor.id, user).await.map_err(Error::from)?;
        self.standing_changed(actor.id, user).await?;
        Ok(removed)
    }

    /// Tells services that keep standings that the pair's direct
    /// conversation (if they have one) changed. Said on a repeated request
    /// too: a service that missed it hears it.
    async fn standing_changed(&self, a: UserId, b: UserId) -> Result<(), Error> {
        if let Some(c) = self.store.get_by_unique_key(&direct_key(a, b)).await.map_err(Error::from)? {
            self.announce.access_changed(c.id).await;
        }
        Ok(())
    }

    /// The users the actor blocks, most recently blocked first.
    pub async fn blocks(&self, actor: &Actor, limit: u32, cursor: &str) -> Result<Page<Block>, Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        let after = match decode_cursor(cursor)?.as_deref() {
            None => None,
            Some([at, user]) => Some(BlockCursor {
                at: Timestamp::from_millis(at.parse().map_err(|_| Error::invalid("invalid cursor"))?),
                blocked: UserId::parse(user).map_err(|_| Error::invalid("invalid cursor"))?,
            }),
            Some(_) => return Err(Error::invalid("invalid cursor")),
        };
        let mut items = self.store.blocks_of(actor.id, after.as_ref(), limit + 1).await.map_err(Error::from)?;
        let next_cursor = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            let last = &items[items.len() - 1];
            encode_cursor(&[&last.at.millis().to_string(), &last.blocked.to_string()])
        });
        Ok(Page { items, next_cursor })
    }

    /// Of `ids`, the direct and group conversations the actor takes part in:
    /// whose members may hear the actor's presence. Unknown ones are left
    /// out.
    pub async fn private_among(&self, actor: &Actor, ids: &[ConversationId]) -> Result<Vec<ConversationId>, Error> {
        if ids.len() > MAX_PRIVATE_AMONG {
            return Err(Error::invalid(format!("at most {MAX_PRIVATE_AMONG} conversations at once")));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.store.private_among(actor.id, ids).await.map_err(Error::from)
    }

    /// The actor's conversations, most recent activity first.
    pub async fn list(&self, actor: &Actor, limit: u32, cursor: &str) -> Result<Page, Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        let after = activity_cursor(cursor)?;
        self.settled().await;
        let items = self.store.list_for_user(actor.id, after.as_ref(), limit + 1).await.map_err(Error::from)?;
        Ok(activity_page(items, limit, |c| (c.last_activity, c.id)))
    }

    /// The same list as [`Conversations::list`] (same order, same cursors)
    /// as ids and kinds only: what a session needs to follow them, at a
    /// cost that does not grow with the participants of each.
    pub async fn list_refs(&self, actor: &Actor, limit: u32, cursor: &str) -> Result<Page<ConversationRef>, Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        let after = activity_cursor(cursor)?;
        self.settled().await;
        let items = self.store.list_refs_for_user(actor.id, after.as_ref(), limit + 1).await.map_err(Error::from)?;
        Ok(activity_page(items, limit, |c| (c.last_activity, c.id)))
    }

    /// Every conversation the actor takes part in (at most [`MOST_IDS`]),
    /// in no particular order: one indexed read (what a search is scoped by).
    pub async fn ids(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error> {
        self.store.conversation_ids_of(actor.id, MOST_IDS).await.map_err(Error::from)
    }

    /// Renames or re-describes a group or room.
    pub async fn update(
        &self,
        actor: &Actor,
        id: ConversationId,
        name: Option<DisplayName>,
        description: Option<Description>,
    ) -> Result<Conversation, Error> {
        let c = self.administered(actor, id).await?;
        let rename = name.map(|n| Rename {
            unique_key: if c.kind == Kind::Room { room_key(&n) } else { c.unique_key.clone() },
            name_key: n.key(),
            name: n.to_string(),
        });
        let updated = self
            .store
            .update_details(c.id, rename.as_ref(), description.as_ref().map(Description::as_str), Timestamp::now())
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => Error::already_exists("a room with this name exists"),
                e => Error::from(e),
            })?
            .ok_or_else(not_found)?;
        self.announce.updated(&updated).await;
        Ok(updated)
    }

    /// Adds a user to a group or room (admins).
    pub async fn add_participant(
        &self,
        actor: &Actor,
        id: ConversationId,
        user: UserId,
    ) -> Result<Conversation, Error> {
        let c = self.administered(actor, id).await?;
        if c.has_participant(user) {
            // Said again: a client that missed the first announcement hears it.
            self.announce.joined(&c, user).await;
            return Ok(c);
        }
        self.require_user(actor, user).await?;
        let joined = self
            .store
            .add_participant(c.id, user, Timestamp::now())
            .await
            .map_err(Error::from)?
            .ok_or_else(not_found)?;
        self.announce.joined(&joined, user).await;
        Ok(joined)
    }

    /// Removes a participant (admins), or the actor leaving.
    pub async fn remove_participant(
        &self,
        actor: &Actor,
        id: ConversationId,
        user: UserId,
    ) -> Result<Conversation, Error> {
        let c = self.visible(actor, id).await?;
        if c.kind == Kind::Direct {
            return Err(Error::invalid("nobody can leave or be removed from a direct conversation"));
        }
        if user != actor.id && !c.has_admin(actor.id) {
            return Err(Error::permission_denied("only admins may remove others"));
        }
        if !c.has_participant(user) {
            return Err(Error::not_found("not a participant"));
        }
        self.leave(c.id, user).await
    }

    /// Makes a participant an admin (admins).
    pub async fn add_admin(&self, actor: &Actor, id: ConversationId, user: UserId) -> Result<Conversation, Error> {
        let c = self.administered(actor, id).await?;
        if !c.has_participant(user) {
            return Err(Error::invalid("only participants can become admins"));
        }
        let updated =
            self.store.add_admin(c.id, user, Timestamp::now()).await.map_err(Error::from)?.ok_or_else(not_found)?;
        if !updated.has_admin(user) {
            // They left between our check and the write.
            return Err(Error::invalid("only participants can become admins"));
        }
        self.announce.updated(&updated).await;
        Ok(updated)
    }

    /// The room directory: rooms whose name starts with `search`.
    pub async fn list_rooms(&self, search: &str, limit: u32, cursor: &str) -> Result<Page, Error> {
        let limit = chatterbox_types::page_limit(limit)?;
        if search.chars().count() > 100 {
            return Err(Error::invalid("search is at most 100 characters"));
        }
        // Folded as names are, so a look-alike spelling finds them.
        let prefix = chatterbox_types::name_key(search);
        let after = name_cursor(cursor)?;
        self.settled().await;
        let mut items = self.store.list_rooms(&prefix, after.as_ref(), limit + 1).await.map_err(Error::from)?;
        let next_cursor = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            let last = &items[items.len() - 1];
            encode_cursor(&[&last.name_key, &last.id.to_string()])
        });
        Ok(Page { items, next_cursor })
    }

    async fn room(&self, id: ConversationId) -> Result<Conversation, Error> {
        match self.store.get(id).await.map_err(Error::from)? {
            Some(c) if c.kind == Kind::Room => Ok(c),
            _ => Err(not_found()),
        }
    }

    /// Joins a public room (idempotent).
    pub async fn join_room(&self, actor: &Actor, id: ConversationId) -> Result<Conversation, Error> {
        let mut room = self.room(id).await?;
        if !room.has_participant(actor.id) {
            room = self
                .store
                .add_participant(room.id, actor.id, Timestamp::now())
                .await
                .map_err(Error::from)?
                .ok_or_else(not_found)?;
        }
        // Said on a repeated join too: a client that missed it hears it.
        self.announce.joined(&room, actor.id).await;
        Ok(room)
    }

    /// Leaves a room the actor is in.
    pub async fn leave_room(&self, actor: &Actor, id: ConversationId) -> Result<Conversation, Error> {
        let room = self.room(id).await?;
        if !room.has_participant(actor.id) {
            return Err(not_found());
        }
        self.leave(room.id, actor.id).await
    }

    /// Removes `user`; if that took the last admin of a non-empty
    /// conversation, the longest-standing participant becomes admin. Returns
    /// the conversation as it is afterwards, once the departure is announced.
    async fn leave(&self, id: ConversationId, user: UserId) -> Result<Conversation, Error> {
        let now = Timestamp::now();
        let mut after =
            self.store.remove_participant(id, user, now).await.map_err(Error::from)?.ok_or_else(not_found)?;
        if after.admins.is_empty()
            && let Some(heir) = after.participants.first()
        {
            after = self.store.add_admin(id, *heir, now).await.map_err(Error::from)?.ok_or_else(not_found)?;
        }
        self.announce.left(&after, user).await;
        Ok(after)
    }

    /// Moves the last activity of a conversation the actor is in forward.
    ///
    /// Noted now, written with others within [`crate::activity::BATCH_WINDOW`]
    /// (see [`crate::activity`]): a send does not wait for a second commit.
    pub async fn record_activity(&self, actor: &Actor, id: ConversationId, at: Timestamp) -> Result<(), Error> {
        // Never later than now: a time from the future would pin the
        // conversation to the top of every list until that time came.
        let at = at.min(Timestamp::now());
        // Written as one conditional write: only a participant's note moves it.
        self.activity.note(id, actor.id, at);
        Ok(())
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever a client sends as a cursor is a page start or a clear 400.
        #[test]
        fn any_cursor_is_a_start_or_a_refusal(cursor in ".{0,80}") {
            for outcome in [activity_cursor(&cursor).map(|_| ()), name_cursor(&cursor).map(|_| ())] {
                if let Err(e) = outcome {
                    prop_assert_eq!(e.code(), chatterbox_errors::Code::InvalidArgument);
                }
            }
        }

        /// And what the server hands out reads back as it was.
        #[test]
        fn handed_out_cursors_read_back(at in any::<i64>(), name in "[^\\p{Cc}]{1,100}") {
            let id = ConversationId::generate();
            let key = DisplayName::parse(&name).map(|n| n.key()).unwrap_or_else(|_| "room".into());
            let by_activity = activity_cursor(&encode_cursor(&[&at.to_string(), &id.to_string()])).map_err(fail)?;
            prop_assert_eq!(by_activity, Some(ActivityCursor { last_activity: Timestamp::from_millis(at), id }));
            let by_name = name_cursor(&encode_cursor(&[&key, &id.to_string()])).map_err(fail)?;
            prop_assert_eq!(by_name, Some(NameCursor { name_key: key, id }));
        }
    }

    fn fail(e: Error) -> TestCaseError {
        TestCaseError::fail(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every user exists.
    #[derive(Debug)]
    struct Everyone;

    #[async_trait::async_trait]
    impl UserDirectory for Everyone {
        async fn exists(&self, _token: &str, _user: UserId) -> Result<bool, Error> {
            Ok(true)
        }

        async fn by_usernames(&self, _token: &str, _usernames: &[String]) -> Result<Vec<(String, UserId)>, Error> {
            Err(Error::unavailable(anyhow::anyhow!("this directory knows no usernames")))
        }
    }

    #[tokio::test]
    async fn activity_from_the_future_counts_as_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteConversationStore::open(&dir.path().join("conversation.sqlite3")).unwrap();
        let events = Arc::new(chatterbox_events::MemoryBus::new());
        let conversations = Conversations::new(Arc::new(store), Arc::new(Everyone), events);
        let actor = Actor { id: UserId::generate(), token: String::new() };
        let (created, _) = conversations.create_direct(&actor, UserId::generate()).await.unwrap();

        conversations.record_activity(&actor, created.id, Timestamp::from_millis(i64::MAX)).await.unwrap();
        let after = Timestamp::now();
        let page = conversations.list(&actor, 10, "").await.unwrap();
        let listed = page.items.iter().find(|c| c.id == created.id).unwrap();
        assert!(listed.last_activity >= created.last_activity, "the note counted");
        assert!(listed.last_activity <= after, "but not as a time to come: {:?}", listed.last_activity);
    }
}
