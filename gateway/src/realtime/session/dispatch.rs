//! The session's loop: what woke it (a frame, an event, an answer owed,
//! the heartbeat, a timer) and what it does about it.

use super::*;

impl Session {
    pub(super) async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let halt = self.registration.halt.clone();
        let period = self.rt.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        let mut steps_unflushed = 0;
        // Two timers kept across turns and moved only when their instant
        // changes (a fresh token, another hole), not made anew per event.
        let mut expiry_for = self.credentials.expires_at;
        let expiry = tokio::time::sleep_until(self.credentials.deadline());
        tokio::pin!(expiry);
        let mut repair_for = None;
        // Made when a hole first waits (rare): an idle session keeps one timer.
        let mut repair: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let tracks = &self.tracks;
            self.waiting.retain(|c| tracks.get(c).is_some_and(|t| t.repair_at().is_some()));
            let repair_at = self.waiting.iter().filter_map(|c| tracks.get(c)?.repair_at()).min().map(Instant::from_std);
            if self.credentials.expires_at != expiry_for {
                expiry_for = self.credentials.expires_at;
                expiry.as_mut().reset(self.credentials.deadline());
            }
            if let Some(at) = repair_at
                && repair_for != Some(at)
            {
                repair_for = Some(at);
                match repair.as_mut() {
                    Some(timer) => timer.as_mut().reset(at),
                    None => repair = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            // Outbound first: a session drains what it owes its client before
            // it reads more from it (frames are rate-limited; events are not),
            // and reads none while too many of its answers are still owed.
            let step = tokio::select! {
                biased;
                reason = halt.wait() => Step::Halt(reason),
                answer = self.owed.next(), if !self.owed.is_empty() => Step::Answer(answer),
                Some(event) = self.registration.mailbox.recv() => Step::Event(event),
                frame = socket.recv(), if !self.owed.is_full() => Step::Frame(frame),
                _ = heartbeat.tick() => Step::Heartbeat,
                () = &mut expiry => Step::Expired,
                () = fire(&mut repair), if repair_at.is_some() => Step::Repair,
            };
            let outcome = match step {
                Step::Frame(Some(Ok(message))) => {
                    self.last_heard = Instant::now();
                    Box::pin(self.on_message(socket, message)).await
                }
                Step::Frame(Some(Err(e))) if frame_too_big(&e) => Err(End::Close(close::TOO_BIG, "frame too large")),
                Step::Frame(_) => Err(End::Gone),
                Step::Event(event) => Box::pin(self.on_event(socket, event)).await,
                Step::Answer(Some(frame)) => send(socket, frame).await,
                Step::Answer(None) => Ok(()),
                Step::Halt(HaltReason::TooSlow) => {
                    Err(End::Close(close::TRY_AGAIN_LATER, "too slow: reconnect and resume"))
                }
                Step::Halt(HaltReason::SessionEnded) => {
                    let ended = Error::unauthenticated("this login session has ended: log in again");
                    let _ = Box::pin(send(socket, error(None, &ended))).await;
                    Err(End::Close(close::UNAUTHENTICATED, "login session ended"))
                }
                Step::Heartbeat => Box::pin(self.on_heartbeat(socket)).await,
                Step::Expired => {
                    let expired = Error::unauthenticated("access token expired: reconnect with a fresh one");
                    let _ = Box::pin(send(socket, error(None, &expired))).await;
                    Err(End::Close(close::UNAUTHENTICATED, "access token expired"))
                }
                Step::Repair => Box::pin(self.repair_holes(socket)).await,
            };
            if let Err(end) = outcome {
                return end;
            }
            // One write for everything the steps since the last flush
            // queued: once nothing more is ready, or after a bounded run.
            steps_unflushed += 1;
            if self.registration.mailbox.is_empty() || steps_unflushed >= STEPS_PER_FLUSH {
                steps_unflushed = 0;
                if let Err(end) = flush(socket).await {
                    return end;
                }
            }
        }
    }

    pub(super) async fn on_heartbeat(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        if self.owed.is_full() {
            // Not reading frames (answers are owed): silence proves nothing.
            self.last_heard = Instant::now();
        }
        if self.last_heard.elapsed() > self.rt.heartbeat * 2 {
            return Err(End::Gone);
        }
        if let Some(reporter) = &self.reporter {
            reporter.alive(std::mem::take(&mut self.active), &self.credentials.token);
        }
        match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    pub(super) async fn on_event(&mut self, socket: &mut WebSocket, event: Arc<Outbound>) -> Result<(), End> {
        match &event.kind {
            Kind::NewMessage { conversation, .. } | Kind::Changed { conversation, .. } => {
                let Some(track) = self.tracks.get_mut(conversation) else { return Ok(()) };
                let now = std::time::Instant::now();
                let ready = match &event.kind {
                    Kind::NewMessage { seq, .. } => track.live(*seq, event.clone(), now),
                    Kind::Changed { message, seq, change, .. } => {
                        track.live_change(message, *seq, *change, event.clone(), now)
                    }
                    // The outer arm admits only the two kinds above.
                    _ => Default::default(),
                };
                if track.backlog() > MAILBOX_CAPACITY {
                    return Err(End::Close(close::TRY_AGAIN_LATER, "too far behind: reconnect and resume"));
                }
                if track.repair_at().is_some() {
                    self.waiting.insert(*conversation);
                }
                for event in ready {
                    send(socket, event.text_for(self.me())).await?;
                }
                Ok(())
            }
            Kind::Typing { user } | Kind::MemberChanged { user } if *user == self.me() => Ok(()),
            Kind::Typing { .. } | Kind::MemberChanged { .. } | Kind::Plain => send(socket, event.text.clone()).await,
            Kind::Joined { conversation, room } => {
                self.joined(socket, *conversation, *room, Some(event.text.clone())).await
            }
            Kind::Presence { id } => {
                if self.presence_seen.contains(id) {
                    return Ok(());
                }
                if self.presence_seen.len() == PRESENCE_SEEN {
                    self.presence_seen.pop_front();
                }
                self.presence_seen.push_back(*id);
                send(socket, event.text.clone()).await
            }
            Kind::Left { conversation } => {
                let known = self.tracks.contains_key(conversation);
                self.unfollow(*conversation);
                if known { send(socket, event.text.clone()).await } else { Ok(()) }
            }
            Kind::Gap => self.after_gap(socket).await,
        }
    }
}
