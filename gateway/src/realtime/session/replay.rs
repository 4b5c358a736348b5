//! Replay: `resume`, holes that do not fill by themselves and bus gaps,
//! all answered by reading what follows the client's last position.

use super::*;

impl Session {
    /// Replays what the client missed in each named conversation, within
    /// bounds: at most [`MAX_RESUMED`] conversations per frame, and per
    /// conversation at most the gateway's reach of messages and changes;
    /// one further behind is named in `resumed.history` instead, for the
    /// client to reload from history (live events go on).
    pub(super) async fn resume(
        &mut self,
        socket: &mut WebSocket,
        id: Option<Value>,
        positions: BTreeMap<String, u64>,
    ) -> Result<(), Fail> {
        while !self.owed.is_empty() {
            if let Some(frame) = self.owed.next().await {
                send(socket, frame).await?;
            }
        }
        if positions.len() > MAX_RESUMED {
            let refused =
                Error::invalid(format!("at most {MAX_RESUMED} conversations per resume: send the rest in another"));
            send(socket, error(id, &refused)).await?;
            return Ok(());
        }
        let reach = self.rt.resume_reach;
        let followed: Vec<String> = positions.keys().filter(|c| self.followed(c).is_ok()).cloned().collect();
        let latest = self.latest(followed).await?;
        let mut reached = BTreeMap::new();
        let mut history = BTreeMap::new();
        for (conversation_id, from) in positions {
            let conversation = match self.followed(&conversation_id) {
                Ok(c) => c,
                Err(e) => {
                    send(socket, error(id.clone(), &e)).await?;
                    continue;
                }
            };
            let now = latest.get(&conversation_id).copied().unwrap_or(0);
            if now.saturating_sub(from) > reach {
                history.insert(conversation_id, now);
                continue;
            }
            match self.replay(socket, conversation, from, 0, reach).await {
                Ok(Some(position)) => {
                    reached.insert(conversation_id, position);
                }
                Ok(None) => {
                    history.insert(conversation_id, now);
                }
                Err(Fail::Api(e)) => send(socket, error(id.clone(), &e)).await?,
                Err(end) => return Err(end),
            }
        }
        if !history.is_empty() {
            metrics::counter!("ws_resumes_left_to_history_total").increment(history.len() as u64);
        }
        send(socket, ServerFrame::Resumed { id, positions: reached, history }.text()).await?;
        Ok(())
    }

    /// The latest `seq` of each conversation, in one call.
    pub(super) async fn latest(&self, conversation_ids: Vec<String>) -> Result<HashMap<String, u64>, Fail> {
        if conversation_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let request = self.request(GetPositionsRequest { conversation_ids })?;
        let positions = self.state.messages.clone().get_positions(request).await?.into_inner().positions;
        Ok(positions.into_iter().map(|p| (p.conversation_id, p.seq)).collect())
    }

    /// A conversation this session follows (the user is in it), else 404.
    pub(super) fn followed(&self, conversation_id: &str) -> Result<ConversationId, Error> {
        ConversationId::parse(conversation_id)
            .ok()
            .filter(|c| self.tracks.contains_key(c))
            .ok_or_else(|| Error::not_found("conversation not found"))
    }

    /// Sends what followed `from` in `conversation`: edits and deletions of
    /// messages up to `from` after change `after_change`, then every newer
    /// message this session has not sent yet. Returns the position reached,
    /// or `None` once more than `reach` changes came up (the rest is left to
    /// history; what was sent is current, and no message was replayed).
    pub(super) async fn replay(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        from: u64,
        after_change: u64,
        reach: u64,
    ) -> Result<Option<u64>, Fail> {
        let client = self.state.messages.clone();
        let conversation_id = conversation.to_string();
        if let Some(track) = self.tracks.get_mut(&conversation) {
            track.replay_begin();
        }
        if self.tracks.get(&conversation).is_some_and(|t| from > t.position()) {
            // Beyond what this session knows: ask where the conversation is now.
            let request = self.request(GetPositionsRequest { conversation_ids: vec![conversation_id.clone()] })?;
            let latest = client.get_positions(request).await?.into_inner().positions.first().map_or(0, |p| p.seq);
            if from > latest {
                return Err(Error::invalid(format!(
                    "position {from} is beyond the conversation's last message ({latest})"
                ))
                .into());
            }
        }
        let mut after_change = after_change;
        let mut changes: u64 = 0;
        loop {
            let request = self.request(ListChangesRequest {
                conversation_id: conversation_id.clone(),
                after_seq: from,
                after_change,
                limit: MAX_PAGE_LIMIT,
            })?;
            let page = client.list_changes(request).await?.into_inner();
            for m in page.items {
                if changes >= reach {
                    return Ok(None);
                }
                after_change = m.change_seq;
                if let Some(track) = self.tracks.get_mut(&conversation) {
                    track.replayed_change(&m.id, m.change_seq);
                }
                changes += 1;
                send(socket, message_changed(m)).await?;
            }
            if !page.has_more {
                break;
            }
        }
        let mut after = from;
        loop {
            let request = self.request(ListMessagesRequest {
                conversation_id: conversation_id.clone(),
                before: None,
                after: Some(after),
                limit: MAX_PAGE_LIMIT,
            })?;
            let items = client.list_messages(request).await?.into_inner().items;
            let full = items.len() >= MAX_PAGE_LIMIT as usize;
            for m in items {
                after = m.seq;
                let fresh = match self.tracks.get_mut(&conversation) {
                    Some(track) => track.replayed(&m.id, m.seq, m.change_seq),
                    None => Some(Default::default()),
                };
                if let Some(newer_changes) = fresh {
                    send(socket, message_new(m)).await?;
                    for event in newer_changes {
                        send(socket, event.text_for(self.me())).await?;
                    }
                }
            }
            if !full {
                break;
            }
        }
        let Some(track) = self.tracks.get_mut(&conversation) else { return Ok(Some(after)) };
        let waiting = track.replay_done(from);
        let position = track.position();
        for event in waiting {
            send(socket, event.text_for(self.me())).await?;
        }
        Ok(Some(position))
    }

    /// Reads the holes that did not fill by themselves from history.
    pub(super) async fn repair_holes(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        let now = std::time::Instant::now();
        let due: Vec<(ConversationId, u64, u64)> = self
            .waiting
            .iter()
            .filter_map(|c| self.tracks.get(c).map(|t| (c, t)))
            .filter(|(_, t)| t.repair_at().is_some_and(|at| at <= now))
            .map(|(c, t)| (*c, t.position(), t.change_mark()))
            .collect();
        for (conversation, position, change) in due {
            metrics::counter!("ws_repairs_total").increment(1);
            if !self.catch_up(socket, conversation, position, change).await?
                && let Some(track) = self.tracks.get_mut(&conversation)
            {
                // Try again later rather than on every turn of the loop.
                track.postpone(std::time::Instant::now());
            }
        }
        Ok(())
    }

    /// A replay on the session's own initiative: failures are logged, not
    /// sent; returns whether it succeeded.
    pub(super) async fn catch_up(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        from: u64,
        after_change: u64,
    ) -> Result<bool, End> {
        // A hole is bounded by the session's backlog: no reach applies.
        match self.replay(socket, conversation, from, after_change, u64::MAX).await {
            Ok(_) => Ok(true),
            Err(Fail::End(end)) => Err(end),
            Err(Fail::Api(e)) => {
                tracing::warn!(%conversation, error = %e, "could not catch up from history");
                Ok(false)
            }
        }
    }

    /// The bus may have lost events: catch up on membership and on every
    /// conversation from where this session stands.
    pub(super) async fn after_gap(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        match self.conversation_ids().await {
            Ok(now) => {
                let gone: Vec<ConversationId> =
                    self.tracks.keys().filter(|c| !now.iter().any(|(id, _)| id == *c)).copied().collect();
                for conversation in gone {
                    let left = ServerFrame::ConversationLeft { conversation_id: &conversation.to_string() }.text();
                    self.unfollow(conversation);
                    send(socket, left).await?;
                }
                let fresh: Vec<(ConversationId, bool)> =
                    now.into_iter().filter(|(c, _)| !self.tracks.contains_key(c)).collect();
                for (conversation, room) in fresh {
                    self.joined(socket, conversation, room, None).await?;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not re-read conversations after a gap"),
        }
        let positions: Vec<(ConversationId, u64, u64)> =
            self.tracks.iter().map(|(c, t)| (*c, t.position(), t.change_mark())).collect();
        for (conversation, position, change) in positions {
            self.catch_up(socket, conversation, position, change).await?;
        }
        Ok(())
    }
}
