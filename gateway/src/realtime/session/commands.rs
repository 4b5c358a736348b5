//! The client's frames: parsed, rate limited, carried out, answered.

use super::*;
use tracing::Instrument as _;

impl Session {
    /// Takes in one frame; its answer joins those owed.
    pub(super) async fn on_message(&mut self, socket: &mut WebSocket, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.owed.push_ready(error(None, &Error::invalid("frames are JSON text, not binary")));
                return Ok(());
            }
            // Pongs prove liveness (already noted); pings are answered by
            // the WebSocket layer; a close is answered likewise, and the
            // next read ends the session.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(()),
        };
        if let Some(retry_after) = self.rate_limited().await {
            let frame = ServerFrame::Error {
                id: parse(&text).ok().and_then(|i| i.id),
                code: chatterbox_errors::Code::RateLimited.as_str(),
                message: "too many frames: slow down",
                retry_after_ms: Some(retry_after.as_millis().try_into().unwrap_or(u64::MAX).max(1)),
            };
            self.owed.push_ready(frame.text());
            return Ok(());
        }
        match parse(&text) {
            Ok(Incoming { id, frame }) => match self.on_frame(socket, id.clone(), frame).await {
                Ok(()) => {}
                Err(Fail::Api(e)) => self.owed.push_ready(error(id, &e)),
                Err(Fail::End(end)) => return Err(end),
            },
            Err((id, e)) => self.owed.push_ready(error(id, &e)),
        }
        Ok(())
    }

    /// `Some(wait)` when the user is over their frame rate.
    pub(super) async fn rate_limited(&self) -> Option<Duration> {
        let limiter = self.rt.limiter.as_ref()?;
        match limiter.acquire(&self.me().to_string()).await {
            Ok(decision) if !decision.allowed => Some(decision.retry_after),
            Ok(_) => None,
            Err(e) => {
                // A limiter outage must not take chat down with it.
                tracing::warn!(error = %e, "WebSocket rate limiter unavailable; frame allowed");
                None
            }
        }
    }

    /// Acts on one frame. What waits on a service is owed (answered later,
    /// in order) rather than awaited here; only `resume`, which writes
    /// history straight to the socket, runs in the loop, once every earlier
    /// answer is out.
    pub(super) async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        id: Option<Value>,
        frame: ClientFrame,
    ) -> Result<(), Fail> {
        // What a person does, as opposed to what a client does by itself.
        if matches!(
            frame,
            ClientFrame::Send { .. }
                | ClientFrame::Read { .. }
                | ClientFrame::Typing { .. }
                | ClientFrame::PresenceSet { .. }
        ) {
            self.active = true;
        }
        match frame {
            ClientFrame::Ping => self.owed.push_ready(ServerFrame::Pong { id }.text()),
            ClientFrame::Auth { access_token } => {
                let fresh = Credentials::verify(&self.state, &access_token)?;
                if fresh.user != self.me() {
                    return Err(Error::permission_denied("a session cannot change user").into());
                }
                if fresh.login != self.credentials.login {
                    self.registration.relogin(fresh.login);
                }
                self.credentials = fresh;
                self.owed.push_ready(ServerFrame::Ack { id, message: None }.text());
            }
            ClientFrame::Send { conversation_id, content, message_type, attachments, client_id, reply_to } => {
                let request = SendMessageRequest {
                    conversation_id,
                    content,
                    r#type: message_type,
                    attachment_ids: attachments,
                    client_id: Some(client_id),
                    reply_to,
                };
                let caller = self.credentials.actor()?;
                let (admission, api) = (self.state.sends.clone(), self.state.message_api.clone());
                // The root of the send's trace: the services' spans hang below it.
                let span = tracing::info_span!("ws.send", conversation = ?request.conversation_id);
                self.owed.push(Box::pin(
                    async move {
                        // Admitted when its turn comes: a queued send holds no slot.
                        let admitted = match admission.admit() {
                            Ok(admitted) => admitted,
                            Err(overloaded) => {
                                let e = overloaded.error();
                                let frame = ServerFrame::Error {
                                    id,
                                    code: e.code().as_str(),
                                    message: e.message(),
                                    retry_after_ms: Some(overloaded.retry_after_ms()),
                                };
                                return Some(frame.text());
                            }
                        };
                        let sent = api.send_message(&caller, request).await;
                        drop(admitted);
                        let message = sent.and_then(|sent| {
                            sent.message.ok_or_else(|| Error::invariant("SendMessage answered without a message"))
                        });
                        Some(match message {
                            Ok(message) => ServerFrame::Ack { id, message: Some(MessageView::from(message)) }.text(),
                            Err(e) => error(id, &e),
                        })
                    }
                    .instrument(span),
                ));
            }
            ClientFrame::Read { conversation_id, seq } => {
                let request = self.request(MarkReadRequest { conversation_id, seq })?;
                let messages = self.state.messages.clone();
                let span = tracing::info_span!("ws.read");
                self.owed.push(Box::pin(async move { answer(id, messages.mark_read(request).await) }.instrument(span)));
            }
            ClientFrame::Typing { conversation_id, state } => {
                let conversation = self.followed(&conversation_id)?;
                let event = Event::Typing(Typing {
                    conversation_id,
                    user_id: self.me().to_string(),
                    state: state.as_str().to_owned(),
                });
                let bus = self.rt.bus.clone();
                self.owed.push(Box::pin(async move {
                    let topics = [Topic::Conversation(conversation)];
                    publish_after_commit(bus.as_ref(), &topics, &envelope(event, Timestamp::now())).await;
                    ack(id)
                }));
            }
            ClientFrame::PresenceSet { status } => {
                let request = self.request(SetStatusRequest { status })?;
                let presence = self.state.presence.clone();
                let span = tracing::info_span!("ws.presence");
                self.owed
                    .push(Box::pin(async move { answer(id, presence.set_status(request).await) }.instrument(span)));
            }
            ClientFrame::Resume { positions } => Box::pin(self.resume(socket, id, positions)).await?,
        }
        Ok(())
    }
}

/// `ack` for a frame that carried an `id`; nothing for one that did not.
pub(super) fn ack(id: Option<Value>) -> Option<Utf8Bytes> {
    id.is_some().then(|| ServerFrame::Ack { id, message: None }.text())
}

/// The answer to a frame a service call carried out: [`ack`], or `error`.
pub(super) fn answer<T>(id: Option<Value>, outcome: Result<T, tonic::Status>) -> Option<Utf8Bytes> {
    match outcome {
        Ok(_) => ack(id),
        Err(status) => Some(error(id, &status.into())),
    }
}

/// Whether a read failed because a frame exceeded the size cap.
pub(crate) fn frame_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}
