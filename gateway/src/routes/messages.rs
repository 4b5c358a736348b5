//! Messages: send, history, edit, delete, read.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chatterbox_errors::Error;
use chatterbox_proto::message::v1::{
    DeleteMessageRequest, EditMessageRequest, ListMentionsRequest, ListMessagesRequest, ListPinsRequest,
    ListRepliesRequest, MarkReadRequest, PinRequest, ReactRequest, SearchMessagesRequest, SendMessageRequest,
};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::history_cache::PageKey;
use crate::routes::PageQuery;
use crate::state::GatewayState;
use crate::views::{ListView, MessageView};

#[derive(Debug, Deserialize)]
pub(crate) struct SendBody {
    content: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    attachments: Vec<String>,
    client_id: Option<String>,
    reply_to: Option<String>,
}

/// `POST /api/v1/conversations/{id}/messages` → 201, or 200 with the
/// original when `client_id` repeats.
pub(crate) async fn send(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(conversation_id): Path<String>,
    ApiJson(b): ApiJson<SendBody>,
) -> ApiResult<Response> {
    let admitted = match s.sends.admit() {
        Ok(admitted) => admitted,
        Err(overloaded) => return Ok(overloaded.into_response()),
    };
    let request = SendMessageRequest {
        conversation_id,
        content: b.content,
        r#type: b.kind,
        attachment_ids: b.attachments,
        client_id: b.client_id,
        reply_to: b.reply_to,
    };
    let sent = s.message_api.send_message(&user.actor(), request).await?;
    drop(admitted);
    let message = sent.message.ok_or_else(|| Error::invariant("SendMessage answered without a message"))?;
    let status = if sent.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(MessageView::from(message))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/conversations/{id}/messages?before=&after=&limit=`, ascending `seq`.
///
/// Where the message service can give the conversation's history version,
/// a page rendered at that version is answered again as it was.
pub(crate) async fn history(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(conversation_id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let limit = crate::routes::checked_limit(q.limit)?;
    let actor = user.actor();
    // Taken (with the access check) before the page is read.
    let version = s.message_api.history_version(&actor, &conversation_id).await?;
    let shared =
        PageKey { conversation: conversation_id.clone(), before: q.before, after: q.after, limit, reader: None };
    let own = PageKey { reader: Some(actor.id), ..shared.clone() };
    if let Some(version) = version
        && let Some(body) = s.history_pages.get(&shared, version).or_else(|| s.history_pages.get(&own, version))
    {
        return Ok(json_body(body));
    }
    let request = ListMessagesRequest { conversation_id, before: q.before, after: q.after, limit };
    let page = s.message_api.list_messages(&actor, request).await?;
    let personal = page.items.iter().any(|m| !m.reactions.is_empty());
    // Paging is by `seq` (before/after), so there is no opaque cursor.
    let view = ListView { items: page.items.into_iter().map(MessageView::from).collect(), next_cursor: None };
    let body = Bytes::from(serde_json::to_vec(&view).map_err(Error::internal)?);
    if let Some(version) = version {
        s.history_pages.put(if personal { own } else { shared }, version, body.clone());
    }
    Ok(json_body(body))
}

/// A rendered JSON body, as [`Json`] would answer it.
fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditBody {
    content: String,
}

/// `PATCH /api/v1/messages/{id}` (the sender).
pub(crate) async fn edit(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(message_id): Path<String>,
    ApiJson(b): ApiJson<EditBody>,
) -> ApiResult<Json<MessageView>> {
    let request = user.request(EditMessageRequest { message_id, content: b.content })?;
    Ok(Json(s.messages.clone().edit_message(request).await?.into_inner().into()))
}

/// `DELETE /api/v1/messages/{id}` (the sender or an admin) → 204.
pub(crate) async fn delete(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.messages.clone().delete_message(user.request(DeleteMessageRequest { message_id })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReadBody {
    seq: u64,
}

/// `GET /api/v1/messages/{id}/replies?limit=&cursor=`: the replies, ascending `seq`.
pub(crate) async fn replies(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(message_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListView<MessageView>>> {
    let request = user.request(ListRepliesRequest { message_id, limit: q.limit()?, cursor: q.cursor.clone() })?;
    let page = s.messages.clone().list_replies(request).await?.into_inner();
    Ok(Json(ListView::messages(page.items, page.next_cursor)))
}

/// `POST /api/v1/messages/{id}/pin` → 204 (idempotent).
pub(crate) async fn pin(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.messages.clone().pin(user.request(PinRequest { message_id, pin: true })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/messages/{id}/pin` → 204 (idempotent).
pub(crate) async fn unpin(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.messages.clone().pin(user.request(PinRequest { message_id, pin: false })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/conversations/{id}/pins?limit=&cursor=`: most recently pinned first.
pub(crate) async fn pins(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(conversation_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListView<MessageView>>> {
    let request = user.request(ListPinsRequest { conversation_id, limit: q.limit()?, cursor: q.cursor.clone() })?;
    let page = s.messages.clone().list_pins(request).await?.into_inner();
    Ok(Json(ListView::messages(page.items, page.next_cursor)))
}

/// `GET /api/v1/mentions`: messages that mention the caller, in
/// conversations the caller is still in, newest first.
pub(crate) async fn mentions(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListView<MessageView>>> {
    let request = user.request(ListMentionsRequest { limit: q.limit()?, cursor: q.cursor.clone() })?;
    let page = s.messages.clone().list_mentions(request).await?.into_inner();
    Ok(Json(ListView::messages(page.items, page.next_cursor)))
}

/// `q`, `conversation_id`, `limit` and `cursor` of a message search.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
    conversation_id: Option<String>,
    limit: Option<u32>,
    #[serde(default)]
    cursor: String,
}

/// `GET /api/v1/search/messages?q=&conversation_id=&limit=&cursor=`:
/// messages of the caller's conversations matching `q`, newest first.
pub(crate) async fn search(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<ListView<MessageView>>> {
    let limit = crate::routes::checked_limit(q.limit)?;
    let request =
        user.request(SearchMessagesRequest { q: q.q, conversation_id: q.conversation_id, limit, cursor: q.cursor })?;
    let page = s.messages.clone().search_messages(request).await?.into_inner();
    Ok(Json(ListView::messages(page.items, page.next_cursor)))
}

/// `PUT /api/v1/messages/{id}/reactions/{emoji}` → 204 (idempotent).
pub(crate) async fn react(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path((message_id, emoji)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.messages.clone().react(user.request(ReactRequest { message_id, emoji, add: true })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/messages/{id}/reactions/{emoji}` → 204 (idempotent).
pub(crate) async fn unreact(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path((message_id, emoji)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.messages.clone().react(user.request(ReactRequest { message_id, emoji, add: false })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/conversations/{id}/read` `{seq}` → 204.
pub(crate) async fn read(
    State(s): State<GatewayState>,
    user: CurrentUser,
    Path(conversation_id): Path<String>,
    ApiJson(b): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    s.messages.clone().mark_read(user.request(MarkReadRequest { conversation_id, seq: b.seq })?).await?;
    Ok(StatusCode::NO_CONTENT)
}
