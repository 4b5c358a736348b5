// What the socket's events do to the store: new, edited and deleted
// messages (and the unread and mention counts they change), reactions, read
// marks (mine from another device too), typing, presence and membership. Live events may arrive before, after or twice with what an
// answer of the API said; each case below keeps the newer of the two.

const TYPING_SHOWN_MS = 6000;

/** Who is typing where, until when (a `start` shows for a few seconds). */
export class Typing {
  constructor(changed) {
    this.changed = changed;
    /** conversation id → Map(user id → expiry ms) */
    this.byConversation = new Map();
  }

  start(conversationId, userId) {
    let typing = this.byConversation.get(conversationId);
    if (!typing) this.byConversation.set(conversationId, (typing = new Map()));
    typing.set(userId, Date.now() + TYPING_SHOWN_MS);
    setTimeout(() => this.changed('typing', conversationId), TYPING_SHOWN_MS + 50);
    this.changed('typing', conversationId);
  }

  stop(conversationId, userId) {
    this.byConversation.get(conversationId)?.delete(userId);
    this.changed('typing', conversationId);
  }

  /** Users typing now in a conversation, but `me`. */
  in(conversationId, me) {
    const typing = this.byConversation.get(conversationId);
    if (!typing) return [];
    const now = Date.now();
    return [...typing].filter(([user, until]) => until > now && user !== me).map(([user]) => user);
  }
}

/** Applies one event frame to `store`. */
export async function applyFrame(store, frame) {
  const me = store.me.id;
  switch (frame.type) {
    case 'message.new': {
      const m = frame.message;
      if (!store.conversations.has(m.conversation_id)) {
        // A conversation I did not know: its count already includes this message.
        await store.fetchConversation(m.conversation_id).catch(() => {});
        store.arrived(m);
        break;
      }
      const c = store.conversations.get(m.conversation_id);
      const t = store.timelines.get(m.conversation_id);
      const isNew = !t?.bySeq.has(m.seq) && !(c.last_message && c.last_message.seq >= m.seq);
      if (isNew && m.sender_id !== me && m.seq > store.myRead(m.conversation_id)) {
        c.unread_count = (c.unread_count || 0) + 1;
        if (m.mentions?.includes(me)) c.mention_count = (c.mention_count || 0) + 1;
      }
      store.arrived(m);
      store.typing.stop(m.conversation_id, m.sender_id);
      break;
    }
    case 'message.updated': {
      const m = frame.message;
      const c = store.conversations.get(m.conversation_id);
      // An edit may name me, or no longer (known when the message is shown or the latest).
      const before = store.timelines.get(m.conversation_id)?.bySeq.get(m.seq)
        || (c?.last_message?.seq === m.seq ? c.last_message : null);
      if (before?.id === m.id) store.mentionChanged(before, m);
      store.timelines.get(m.conversation_id)?.replace(m);
      store.quotedChanged(m.conversation_id, m.id, m.content);
      if (c?.last_message?.seq === m.seq) c.last_message = m;
      store.changed('messages', m.conversation_id);
      store.changed('conversations');
      break;
    }
    case 'reaction': {
      // Only the change travels: applied to the copy shown (a message not
      // loaded gets its reactions with its page).
      const t = store.timelines.get(frame.conversation_id);
      const m = t?.bySeq.get(frame.seq);
      if (!m || m.id !== frame.message_id || m.deleted) break;
      const mine = frame.user_id === me;
      const reactions = (m.reactions || []).map((r) => ({ ...r }));
      let r = reactions.find((x) => x.emoji === frame.emoji);
      if (frame.action === 'added') {
        // My own reaction already shown (its page was read after it): not twice.
        if (r && mine && r.me) break;
        if (!r) reactions.push((r = { emoji: frame.emoji, count: 0, me: false }));
        r.count += 1;
        if (mine) r.me = true;
      } else if (r) {
        if (mine && !r.me) break;
        r.count -= 1;
        if (mine) r.me = false;
      }
      t.bySeq.set(frame.seq, { ...m, reactions: reactions.filter((x) => x.count > 0) });
      store.changed('messages', frame.conversation_id);
      break;
    }
    case 'message.deleted': {
      const gone = (m) => ({ ...m, content: '', attachments: [], reactions: [], mentions: [], pinned: false, deleted: true });
      const t = store.timelines.get(frame.conversation_id);
      const m = t?.bySeq.get(frame.seq);
      const c = store.conversations.get(frame.conversation_id);
      const before = m || (c?.last_message?.seq === frame.seq ? c.last_message : null);
      if (before?.id === frame.message_id && !before.deleted) store.mentionChanged(before, null);
      if (m) t.bySeq.set(frame.seq, gone(m));
      store.quotedChanged(frame.conversation_id, frame.message_id, '');
      if (c?.last_message?.seq === frame.seq) c.last_message = gone(c.last_message);
      store.changed('messages', frame.conversation_id);
      store.changed('conversations');
      break;
    }
    case 'read': {
      if (frame.user_id === me) {
        // Read on another device (or my own read coming back).
        if (frame.seq <= store.myRead(frame.conversation_id)) break;
        store.noteRead(frame.conversation_id, frame.user_id, frame.seq);
        const c = store.conversations.get(frame.conversation_id);
        const t = store.timelines.get(frame.conversation_id);
        if (c && t?.loaded && t.oldest !== null && t.oldest <= frame.seq) {
          c.unread_count = t.othersAbove(me, frame.seq);
          c.mention_count = t.mentionsAbove(me, frame.seq);
        } else if (c) {
          await store.fetchConversation(frame.conversation_id).catch(() => {});
        }
        store.changed('conversations');
      } else {
        store.noteRead(frame.conversation_id, frame.user_id, frame.seq);
      }
      store.changed('reads', frame.conversation_id);
      break;
    }
    case 'typing':
      if (frame.state === 'start') store.typing.start(frame.conversation_id, frame.user_id);
      else store.typing.stop(frame.conversation_id, frame.user_id);
      break;
    case 'presence':
      store.users.setPresence(frame.user_id, frame.status, frame.last_seen);
      break;
    case 'conversation.joined':
      await store.fetchConversation(frame.conversation.id).catch(() => store.putConversation(frame.conversation));
      store.changed('conversations');
      break;
    case 'conversation.updated':
      await store.mergeConversation(frame.conversation);
      break;
    case 'conversation.left':
      store.removeConversation(frame.conversation_id);
      break;
    default:
      break;
  }
}
