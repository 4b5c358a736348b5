//! How a part calls another: over gRPC, or, when both run in this process,
//! straight into the callee's handlers (the trait tonic generates for it,
//! which its gRPC server implements): no socket, no HTTP/2, no protobuf
//! encoding, no routing. A direct call keeps what a call through the
//! server has: its span (a child of the caller's), its deadline, a panic
//! answered INTERNAL instead of unwinding into the caller, and the per-call
//! metrics under the same method path.
//!
//! One type per service ([`ConversationCalls`], ...), used by the gateway and
//! by the services calling each other, with one method per unary RPC taking
//! and answering what the tonic client does, so a call site reads the same
//! in both modes. Media uploads and downloads stream: they keep the channel.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tracing::Instrument as _;

use crate::GrpcChannel;

/// Runs `call`, a direct call of the handler of `path`, as the server would.
pub async fn local_call<T>(
    path: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let started = Instant::now();
    let span = tracing::info_span!("grpc", path);
    let outcome = async move {
        match tokio::time::timeout(timeout, AssertUnwindSafe(call).catch_unwind()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => {
                tracing::error!("a local gRPC call panicked");
                Err(tonic::Status::internal("internal error"))
            }
            Err(_) => Err(tonic::Status::deadline_exceeded("deadline exceeded")),
        }
    }
    .instrument(span)
    .await;
    let code = outcome.as_ref().map_or_else(|status| status.code(), |_| tonic::Code::Ok);
    chatterbox_telemetry::record_grpc_call(path, code_label(code), started.elapsed());
    outcome
}

/// A status code as the metrics label it (its number, as on the wire).
fn code_label(code: tonic::Code) -> &'static str {
    const LABELS: [&str; 17] =
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"];
    LABELS.get(code as usize).copied().unwrap_or("2")
}

/// The media service's handlers as a trait object (its download stream boxed).
pub type MediaHandlers = dyn chatterbox_proto::media::v1::media_service_server::MediaService<
        DownloadStream = std::pin::Pin<
            Box<
                dyn futures::Stream<Item = Result<chatterbox_proto::media::v1::DownloadResponse, tonic::Status>> + Send,
            >,
        >,
    >;

/// Declares the calls of one service: its channel, and its handlers once a
/// server of this process offers them, with one method per unary RPC.
macro_rules! service_calls {
    (
        $(#[$doc:meta])*
        $name:ident, $module:ident, $client_mod:ident::$client:ident, $handlers:ty, $full:literal, {
            $($method:ident / $Method:ident : $req:ident => $resp:ident;)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            /// Over gRPC (a network channel, or the in-process one): for the
            /// calls while there are no handlers here, and for health checks.
            channel: GrpcChannel,
            /// The service's handlers in this process, once attached (parts
            /// call each other in a cycle, so callers exist before servers).
            local: Arc<OnceLock<Arc<$handlers>>>,
            /// Each direct call's deadline.
            timeout: Duration,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("local", &self.is_local()).finish()
            }
        }

        impl $name {
            /// Calls over `channel`, always (no deadline of its own: the
            /// channel has one, so handlers are never attached to these).
            pub fn remote(channel: GrpcChannel) -> Self {
                Self::pending(channel, Duration::ZERO)
            }

            /// Calls over `channel` until handlers are attached, then those
            /// directly, each call within `timeout`.
            pub fn pending(channel: GrpcChannel, timeout: Duration) -> Self {
                Self { channel, local: Arc::default(), timeout }
            }

            /// Calls the handlers `server` offers directly from now on
            /// (every clone of these calls); false if it offers none.
            pub fn attach_handlers(&self, server: &crate::GrpcServer) -> bool {
                if self.timeout.is_zero() {
                    return false;
                }
                match server.handlers::<Arc<$handlers>>() {
                    Some(handlers) => self.local.set(handlers).is_ok(),
                    None => false,
                }
            }

            /// The channel to the service (health checks go over it).
            pub fn channel(&self) -> &GrpcChannel {
                &self.channel
            }

            /// Whether calls go straight to handlers in this process.
            pub fn is_local(&self) -> bool {
                self.local.get().is_some()
            }

            $(
                #[doc = concat!("`", stringify!($Method), "`.")]
                pub async fn $method(
                    &self,
                    request: impl tonic::IntoRequest<chatterbox_proto::$module::v1::$req>,
                ) -> Result<tonic::Response<chatterbox_proto::$module::v1::$resp>, tonic::Status> {
                    match self.local.get() {
                        None => {
                            let mut client = chatterbox_proto::$module::v1::$client_mod::$client::new(self.channel.clone());
                            client.$method(request).await
                        }
                        Some(handlers) => {
                            let path = concat!("/", $full, "/", stringify!($Method));
                            local_call(path, self.timeout, handlers.$method(request.into_request())).await
                        }
                    }
                }
            )*
        }
    };
}

service_calls! {
    /// The auth service's calls.
    AuthCalls, auth, auth_service_client::AuthServiceClient, dyn chatterbox_proto::auth::v1::auth_service_server::AuthService, "chatterbox.auth.v1.AuthService", {
        register / Register: RegisterRequest => Session;
        login / Login: LoginRequest => Session;
        refresh / Refresh: RefreshRequest => Tokens;
        logout / Logout: LogoutRequest => LogoutResponse;
        list_sessions / ListSessions: ListSessionsRequest => ListSessionsResponse;
        end_session / EndSession: EndSessionRequest => EndSessionResponse;
    }
}

service_calls! {
    /// The user service's calls.
    UserCalls, user, user_service_client::UserServiceClient, dyn chatterbox_proto::user::v1::user_service_server::UserService, "chatterbox.user.v1.UserService", {
        create_user / CreateUser: CreateUserRequest => User;
        delete_user / DeleteUser: DeleteUserRequest => DeleteUserResponse;
        get_me / GetMe: GetMeRequest => User;
        get_user / GetUser: GetUserRequest => User;
        search_users / SearchUsers: SearchUsersRequest => SearchUsersResponse;
        get_users_by_username / GetUsersByUsername: GetUsersByUsernameRequest => GetUsersByUsernameResponse;
        update_me / UpdateMe: UpdateMeRequest => User;
        set_presence / SetPresence: SetPresenceRequest => User;
    }
}

service_calls! {
    /// The conversation service's calls.
    ConversationCalls, conversation, conversation_service_client::ConversationServiceClient, dyn chatterbox_proto::conversation::v1::conversation_service_server::ConversationService, "chatterbox.conversation.v1.ConversationService", {
        create_direct / CreateDirect: CreateDirectRequest => CreateDirectResponse;
        create_group / CreateGroup: CreateGroupRequest => Conversation;
        create_room / CreateRoom: CreateRoomRequest => Conversation;
        get_conversation / GetConversation: GetConversationRequest => Conversation;
        list_conversations / ListConversations: ListConversationsRequest => ConversationPage;
        list_conversation_refs / ListConversationRefs: ListConversationsRequest => ConversationRefPage;
        update_conversation / UpdateConversation: UpdateConversationRequest => Conversation;
        add_participant / AddParticipant: ParticipantRequest => Conversation;
        remove_participant / RemoveParticipant: ParticipantRequest => RemoveParticipantResponse;
        add_admin / AddAdmin: ParticipantRequest => Conversation;
        list_rooms / ListRooms: ListRoomsRequest => ConversationPage;
        join_room / JoinRoom: RoomRequest => Conversation;
        leave_room / LeaveRoom: RoomRequest => LeaveRoomResponse;
        check_access / CheckAccess: CheckAccessRequest => Access;
        record_activity / RecordActivity: RecordActivityRequest => RecordActivityResponse;
        private_among / PrivateAmong: PrivateAmongRequest => PrivateAmongResponse;
        block / Block: BlockRequest => BlockResponse;
        unblock / Unblock: BlockRequest => BlockResponse;
        list_blocks / ListBlocks: ListBlocksRequest => BlockPage;
        resolve_mentions / ResolveMentions: ResolveMentionsRequest => ResolveMentionsResponse;
        list_conversation_ids / ListConversationIds: ListConversationIdsRequest => ConversationIds;
    }
}

service_calls! {
    /// The message service's calls.
    MessageCalls, message, message_service_client::MessageServiceClient, dyn chatterbox_proto::message::v1::message_service_server::MessageService, "chatterbox.message.v1.MessageService", {
        send_message / SendMessage: SendMessageRequest => SendMessageResponse;
        list_messages / ListMessages: ListMessagesRequest => MessagePage;
        edit_message / EditMessage: EditMessageRequest => Message;
        delete_message / DeleteMessage: DeleteMessageRequest => DeleteMessageResponse;
        mark_read / MarkRead: MarkReadRequest => MarkReadResponse;
        get_summaries / GetSummaries: GetSummariesRequest => GetSummariesResponse;
        list_changes / ListChanges: ListChangesRequest => ListChangesResponse;
        get_positions / GetPositions: GetPositionsRequest => GetPositionsResponse;
        react / React: ReactRequest => ReactResponse;
        list_replies / ListReplies: ListRepliesRequest => ReplyPage;
        pin / Pin: PinRequest => PinResponse;
        list_pins / ListPins: ListPinsRequest => PinPage;
        list_mentions / ListMentions: ListMentionsRequest => MentionPage;
        search_messages / SearchMessages: SearchMessagesRequest => SearchPage;
    }
}

service_calls! {
    /// The presence service's calls.
    PresenceCalls, presence, presence_service_client::PresenceServiceClient, dyn chatterbox_proto::presence::v1::presence_service_server::PresenceService, "chatterbox.presence.v1.PresenceService", {
        connection_opened / ConnectionOpened: ConnectionOpenedRequest => PresenceState;
        connection_alive / ConnectionAlive: ConnectionAliveRequest => PresenceState;
        connection_closed / ConnectionClosed: ConnectionClosedRequest => PresenceState;
        set_status / SetStatus: SetStatusRequest => PresenceState;
        get_presence / GetPresence: GetPresenceRequest => GetPresenceResponse;
    }
}

service_calls! {
    /// The media service's unary calls (uploads and downloads stream over the channel).
    MediaCalls, media, media_service_client::MediaServiceClient, MediaHandlers, "chatterbox.media.v1.MediaService", {
        attach / Attach: AttachRequest => AttachResponse;
        detach / Detach: DetachRequest => DetachResponse;
        use_as_avatar / UseAsAvatar: UseAsAvatarRequest => Media;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(code: Option<tonic::Code>) -> Result<tonic::Response<u8>, tonic::Status> {
        match code {
            None => Ok(tonic::Response::new(7)),
            Some(code) => Err(tonic::Status::new(code, "refused")),
        }
    }

    #[tokio::test]
    async fn a_direct_call_answers_as_the_server_would_and_is_counted_under_its_path() {
        chatterbox_telemetry::install_metrics();
        let second = Duration::from_secs(1);
        let path = "/chatterbox.test.v1.TestService/DirectCallForLabelTest";
        assert_eq!(local_call(path, second, answer(None)).await.unwrap().into_inner(), 7);
        let refused = local_call(path, second, answer(Some(tonic::Code::NotFound))).await.unwrap_err();
        assert_eq!((refused.code(), refused.message()), (tonic::Code::NotFound, "refused"));

        let panics = async {
            if true {
                panic!("a bug in a handler");
            }
            answer(None).await
        };
        assert_eq!(local_call(path, second, panics).await.unwrap_err().code(), tonic::Code::Internal);

        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            answer(None).await
        };
        let late = local_call(path, Duration::from_millis(50), slow).await.unwrap_err();
        assert_eq!(late.code(), tonic::Code::DeadlineExceeded);

        let text = chatterbox_telemetry::prometheus_text();
        for code in ["\"0\"", "\"5\"", "\"13\"", "\"4\""] {
            let counted = text.lines().any(|l| l.contains("DirectCallForLabelTest") && l.contains(code));
            assert!(counted, "calls answered {code} are counted: {text}");
        }
    }

    #[test]
    fn a_server_offers_its_handlers_by_type() {
        let server = crate::GrpcServer::new(tonic::service::Routes::default(), vec![]);
        assert!(server.handlers::<Arc<str>>().is_none());
        let server = server.with_handlers::<Arc<str>>(Arc::from("handlers"));
        assert_eq!(server.handlers::<Arc<str>>().as_deref(), Some("handlers"));
        assert!(server.handlers::<Arc<String>>().is_none(), "asked as another type: none");
    }
}
