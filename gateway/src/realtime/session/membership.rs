//! Which conversations a session follows: the user's at the start, those
//! joined and left while it runs, and who hears the user's presence.

use super::*;

impl Session {
    /// Follows the user and every conversation they are in, then tells
    /// the presence service the connection is open.
    pub(super) async fn open(&mut self) -> Result<(), Error> {
        // The user's own topic first: a conversation joined while the list
        // is read is then announced rather than missed.
        self.registration.subscribe(&[Topic::User(self.me())]).await.map_err(Error::unavailable)?;
        let listed = self.conversation_ids().await?;
        let conversations: Vec<ConversationId> = listed.iter().map(|(id, _)| *id).collect();
        self.follow(&conversations).await?;
        let tracks = &self.tracks;
        self.audience =
            listed.into_iter().filter(|(id, room)| !room && tracks.contains_key(id)).map(|(id, _)| id).collect();
        let audience = self.audience.iter().map(ToString::to_string).collect();
        let state = self.state.clone();
        self.reporter =
            Some(Reporter::start(state, self.connection_id.clone(), audience, &self.credentials.token).await);
        Ok(())
    }

    /// Tells presence who hears about the user now that `audience` changed.
    pub(super) fn audience_changed(&self) {
        if let Some(reporter) = &self.reporter {
            reporter.audience(self.audience.iter().map(ToString::to_string).collect(), &self.credentials.token);
        }
    }

    /// Every conversation the user is in, page by page, and whether each is a public room.
    pub(super) async fn conversation_ids(&self) -> Result<Vec<(ConversationId, bool)>, Error> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let request = self.request(ListConversationsRequest { limit: MAX_PAGE_LIMIT, cursor })?;
            let page = self.state.conversations.clone().list_conversation_refs(request).await?.into_inner();
            ids.extend(
                page.items
                    .iter()
                    .filter_map(|c| Some((ConversationId::parse(&c.id).ok()?, c.r#type() == ConversationType::Room))),
            );
            if page.next_cursor.is_empty() {
                return Ok(ids);
            }
            cursor = page.next_cursor;
        }
    }

    /// Subscribes `conversations`, then reads where each stands: the
    /// subscription comes first so nothing committed after the read is lost.
    pub(super) async fn follow(&mut self, conversations: &[ConversationId]) -> Result<(), Error> {
        if conversations.is_empty() {
            return Ok(());
        }
        let topics: Vec<Topic> = conversations.iter().copied().map(Topic::Conversation).collect();
        self.registration.subscribe(&topics).await.map_err(Error::unavailable)?;
        for chunk in conversations.chunks(MAX_PAGE_LIMIT as usize) {
            let conversation_ids = chunk.iter().map(ToString::to_string).collect();
            let request = self.request(GetPositionsRequest { conversation_ids })?;
            let positions = match self.state.messages.clone().get_positions(request).await {
                Ok(answer) => answer.into_inner().positions,
                Err(status) => {
                    // Keep what is followed already; drop the rest.
                    self.unsubscribe_untracked(conversations);
                    return Err(status.into());
                }
            };
            for p in positions {
                if let Ok(id) = ConversationId::parse(&p.conversation_id) {
                    self.tracks.entry(id).or_insert_with(|| Track::new(p.seq));
                }
            }
        }
        // Left in the meantime: no position, so no events either.
        self.unsubscribe_untracked(conversations);
        Ok(())
    }

    /// Unsubscribes those of `conversations` that have no track.
    pub(super) fn unsubscribe_untracked(&self, conversations: &[ConversationId]) {
        let untracked: Vec<Topic> =
            conversations.iter().filter(|c| !self.tracks.contains_key(c)).copied().map(Topic::Conversation).collect();
        if !untracked.is_empty() {
            self.registration.unsubscribe(&untracked);
        }
    }

    /// Stops following `conversation`.
    pub(super) fn unfollow(&mut self, conversation: ConversationId) {
        self.tracks.remove(&conversation);
        self.registration.unsubscribe(&[Topic::Conversation(conversation)]);
        if self.audience.remove(&conversation) {
            self.audience_changed();
        }
    }

    /// The user is in `conversation` (a public room or not) now: follow it,
    /// then say so.
    pub(super) async fn joined(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        room: bool,
        frame: Option<Utf8Bytes>,
    ) -> Result<(), End> {
        if self.tracks.contains_key(&conversation) {
            return Ok(());
        }
        if let Err(e) = self.follow(&[conversation]).await {
            // Announcing a conversation whose messages would not arrive is
            // worse than a reconnect, which starts from a consistent state.
            tracing::warn!(%conversation, error = %e, "could not follow a joined conversation");
            return Err(End::Close(close::INTERNAL, "could not follow a joined conversation: reconnect"));
        }
        if !self.tracks.contains_key(&conversation) {
            // Gone again before we could follow it.
            return Ok(());
        }
        if !room && self.audience.insert(conversation) {
            self.audience_changed();
        }
        let frame = match frame {
            Some(frame) => frame,
            None => match self.conversation_frame(conversation).await {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        send(socket, frame).await
    }

    /// `conversation.joined` for a conversation found after a gap.
    pub(super) async fn conversation_frame(&self, conversation: ConversationId) -> Option<Utf8Bytes> {
        let request = self
            .request(chatterbox_proto::conversation::v1::GetConversationRequest { id: conversation.to_string() })
            .ok()?;
        let c = self.state.conversations.clone().get_conversation(request).await.ok()?.into_inner();
        Some(ServerFrame::ConversationJoined { conversation: crate::realtime::frames::conversation_view(c) }.text())
    }
}
