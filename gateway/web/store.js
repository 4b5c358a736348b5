// What the page knows: conversations, the messages loaded of each, users,
// presence, typing and read watermarks. Events from the socket and answers
// from the API both land here; views subscribe to `changed`.

import { query } from './api.js';

const PAGE = 50;
const TYPING_SHOWN_MS = 6000;

export class Store extends EventTarget {
  constructor(api, me) {
    super();
    this.api = api;
    this.me = me;
    this.conversations = new Map();
    this.listCursor = null;
    /** conversation id → {bySeq: Map, oldest, newest, hasOlder, loading} */
    this.timelines = new Map();
    this.users = new Map([[me.id, me]]);
    this.userRequests = new Map();
    this.presence = new Map();
    /** conversation id → Map(user id → expiry ms) */
    this.typing = new Map();
    /** conversation id → Map(user id → highest seq read) */
    this.reads = new Map();
    /** client_id → message not yet acknowledged */
    this.outbox = new Map();
    this.openId = null;
  }

  changed(what, id) {
    this.dispatchEvent(new CustomEvent('changed', { detail: { what, id } }));
  }

  // ---- conversations ----

  async loadConversations() {
    const page = await this.api.get(`/api/v1/conversations${query({ limit: 100 })}`);
    for (const c of page.items) this.conversations.set(c.id, c);
    this.listCursor = page.next_cursor;
    this.#watchPresence();
    this.changed('conversations');
  }

  async loadMoreConversations() {
    if (!this.listCursor) return;
    const page = await this.api.get(`/api/v1/conversations${query({ limit: 100, cursor: this.listCursor })}`);
    for (const c of page.items) this.conversations.set(c.id, c);
    this.listCursor = page.next_cursor;
    this.changed('conversations');
  }

  /** Most recent activity first. */
  sortedConversations() {
    const at = (c) => c.last_message?.created_at || c.updated_at || c.created_at;
    return [...this.conversations.values()].sort((a, b) => (at(a) < at(b) ? 1 : at(a) > at(b) ? -1 : 0));
  }

  async fetchConversation(id) {
    const c = await this.api.get(`/api/v1/conversations/${encodeURIComponent(id)}`);
    this.putConversation(c);
    return c;
  }

  putConversation(c) {
    const old = this.conversations.get(c.id);
    // Events carry the conversation as everyone sees it: keep my own counts.
    if (old && c.unread_count === undefined) c.unread_count = old.unread_count;
    this.conversations.set(c.id, c);
    this.#watchPresence();
    this.changed('conversation', c.id);
  }

  removeConversation(id) {
    this.conversations.delete(id);
    this.timelines.delete(id);
    if (this.openId === id) this.openId = null;
    this.changed('conversations');
  }

  /** The other user of a direct conversation. */
  partnerOf(c) {
    if (c?.type !== 'direct') return null;
    return c.participants.find((p) => p !== this.me.id) || this.me.id;
  }

  /** The name to show: the group's or room's, or the partner's username. */
  title(c) {
    if (!c) return '';
    if (c.type === 'direct') return this.userName(this.partnerOf(c));
    return c.name || 'Unnamed';
  }

  isAdmin(c) {
    return !!c?.admins?.includes(this.me.id);
  }

  // ---- users and presence ----

  userName(id) {
    const user = this.users.get(id);
    if (user) return user.username;
    this.loadUser(id);
    return '…';
  }

  loadUser(id) {
    if (!id || this.users.has(id)) return Promise.resolve(this.users.get(id));
    if (!this.userRequests.has(id)) {
      const request = this.api.get(`/api/v1/users/${encodeURIComponent(id)}`).then((user) => {
        this.users.set(id, user);
        if (!this.presence.has(id)) this.presence.set(id, { status: user.status, last_seen: user.last_seen });
        this.changed('user', id);
        return user;
      }).catch(() => {
        this.users.set(id, { id, username: 'unknown user' });
        this.changed('user', id);
      }).finally(() => this.userRequests.delete(id));
      this.userRequests.set(id, request);
    }
    return this.userRequests.get(id);
  }

  putUser(user) {
    this.users.set(user.id, { ...this.users.get(user.id), ...user });
  }

  /** Presence of direct partners, fetched in one call. */
  async #watchPresence() {
    const ids = [...new Set([...this.conversations.values()].map((c) => this.partnerOf(c)).filter(
      (id) => id && id !== this.me.id && !this.presence.has(id),
    ))].slice(0, 100);
    if (ids.length === 0) return;
    for (const id of ids) this.presence.set(id, { status: 'offline', last_seen: null });
    try {
      const answer = await this.api.get(`/api/v1/presence${query({ user_ids: ids.join(',') })}`);
      for (const p of answer.items) this.presence.set(p.user_id, { status: p.status, last_seen: p.last_seen });
      this.changed('presence');
    } catch { /* dots stay grey; events will correct them */ }
  }

  async watchPresenceOf(ids) {
    const wanted = ids.filter((id) => id !== this.me.id && !this.presence.has(id)).slice(0, 100);
    if (wanted.length === 0) return;
    try {
      const answer = await this.api.get(`/api/v1/presence${query({ user_ids: wanted.join(',') })}`);
      for (const p of answer.items) this.presence.set(p.user_id, { status: p.status, last_seen: p.last_seen });
      this.changed('presence');
    } catch { /* best effort */ }
  }

  presenceOf(id) {
    return this.presence.get(id) || { status: 'offline', last_seen: null };
  }

  // ---- messages ----

  timeline(id) {
    let t = this.timelines.get(id);
    if (!t) {
      t = { bySeq: new Map(), oldest: null, newest: 0, hasOlder: true, loaded: false, loading: false };
      this.timelines.set(id, t);
    }
    return t;
  }

  /** The newest page, the first time a conversation opens. */
  async loadLatest(id) {
    const t = this.timeline(id);
    if (t.loaded || t.loading) return;
    t.loading = true;
    try {
      const page = await this.api.get(`/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ limit: PAGE })}`);
      t.hasOlder = page.items.length === PAGE;
      for (const m of page.items) this.#put(m, false);
      t.loaded = true;
    } finally {
      t.loading = false;
    }
    this.changed('messages', id);
  }

  /** The page before the oldest loaded message (scrolling up). */
  async loadOlder(id) {
    const t = this.timeline(id);
    if (!t.hasOlder || t.loading || t.oldest === null) return false;
    t.loading = true;
    try {
      const page = await this.api.get(
        `/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ before: t.oldest, limit: PAGE })}`,
      );
      t.hasOlder = page.items.length === PAGE;
      for (const m of page.items) this.#put(m, false);
    } finally {
      t.loading = false;
    }
    this.changed('older', id);
    return true;
  }

  /** Everything after the newest loaded message: fills a gap. */
  async loadNewer(id) {
    const t = this.timeline(id);
    if (!t.loaded) return;
    for (;;) {
      const page = await this.api.get(
        `/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ after: t.newest, limit: 100 })}`,
      );
      for (const m of page.items) this.#put(m, false);
      if (page.items.length < 100) break;
    }
    this.changed('messages', id);
  }

  /** Messages in ascending seq, then those still being sent. */
  messagesOf(id) {
    const t = this.timeline(id);
    const sent = [...t.bySeq.values()].sort((a, b) => a.seq - b.seq);
    const sending = [...this.outbox.values()].filter((m) => m.conversation_id === id);
    return sent.concat(sending);
  }

  /** What the socket's resume asks for: conversations whose messages are loaded. */
  positions() {
    const positions = {};
    for (const [id, t] of this.timelines) if (t.loaded) positions[id] = t.newest;
    return positions;
  }

  #put(m, live) {
    const t = this.timeline(m.conversation_id);
    const known = t.bySeq.get(m.seq);
    t.bySeq.set(m.seq, known && !live && known.edited_at && !m.edited_at ? known : m);
    if (t.oldest === null || m.seq < t.oldest) t.oldest = m.seq;
    if (m.seq > t.newest) t.newest = m.seq;
    if (m.client_id) this.outbox.delete(m.client_id);
    for (const r of m.read_by || []) this.#read(m.conversation_id, r.user_id, m.seq);
    return !known;
  }

  #read(conversationId, userId, seq) {
    let reads = this.reads.get(conversationId);
    if (!reads) this.reads.set(conversationId, (reads = new Map()));
    if ((reads.get(userId) || 0) < seq) reads.set(userId, seq);
  }

  /** Who (other than me) has read up to `seq`. */
  readersOf(conversationId, seq) {
    const reads = this.reads.get(conversationId);
    if (!reads) return [];
    return [...reads].filter(([user, upTo]) => user !== this.me.id && upTo >= seq).map(([user]) => user);
  }

  /** Queues a message for the socket; shown at once as "sending". */
  enqueue(conversationId, content, type = 'text', attachments = []) {
    const clientId = crypto.randomUUID();
    const pending = {
      id: null, client_id: clientId, conversation_id: conversationId, sender_id: this.me.id, type,
      content, attachments, pending: true, failed: false, created_at: new Date().toISOString(), read_by: [],
    };
    this.outbox.set(clientId, pending);
    this.changed('messages', conversationId);
    return pending;
  }

  acknowledged(message) {
    this.#put(message, true);
    this.#latest(message);
    this.changed('messages', message.conversation_id);
  }

  failed(clientId, error) {
    const pending = this.outbox.get(clientId);
    if (!pending) return;
    pending.failed = true;
    pending.error = error;
    this.changed('messages', pending.conversation_id);
  }

  #latest(m) {
    const c = this.conversations.get(m.conversation_id);
    if (c && (!c.last_message || c.last_message.seq <= m.seq)) {
      c.last_message = m;
      this.changed('conversations');
    }
  }

  // ---- events from the socket ----

  async apply(frame) {
    switch (frame.type) {
      case 'message.new': {
        const m = frame.message;
        if (!this.conversations.has(m.conversation_id)) {
          await this.fetchConversation(m.conversation_id).catch(() => {});
        }
        const t = this.timeline(m.conversation_id);
        const gap = t.loaded && m.seq > t.newest + 1;
        const fresh = this.#put(m, true);
        const c = this.conversations.get(m.conversation_id);
        if (fresh && c && m.sender_id !== this.me.id && !this.isRead(m)) c.unread_count = (c.unread_count || 0) + 1;
        this.#typingStopped(m.conversation_id, m.sender_id);
        this.#latest(m);
        this.changed('messages', m.conversation_id);
        if (gap) await this.loadNewer(m.conversation_id).catch(() => {});
        break;
      }
      case 'message.updated': {
        const m = frame.message;
        const t = this.timeline(m.conversation_id);
        if (t.bySeq.has(m.seq) || t.loaded) this.#put(m, true);
        const c = this.conversations.get(m.conversation_id);
        if (c?.last_message?.seq === m.seq) c.last_message = m;
        this.changed('messages', m.conversation_id);
        this.changed('conversations');
        break;
      }
      case 'message.deleted': {
        const t = this.timeline(frame.conversation_id);
        const m = t.bySeq.get(frame.seq);
        if (m) t.bySeq.set(frame.seq, { ...m, content: '', attachments: [], deleted: true });
        const c = this.conversations.get(frame.conversation_id);
        if (c?.last_message?.seq === frame.seq) c.last_message = { ...c.last_message, content: '', attachments: [], deleted: true };
        this.changed('messages', frame.conversation_id);
        this.changed('conversations');
        break;
      }
      case 'read':
        this.#read(frame.conversation_id, frame.user_id, frame.seq);
        if (frame.user_id === this.me.id) {
          // Read on another device: the exact count comes from the server.
          await this.fetchConversation(frame.conversation_id).catch(() => {});
        }
        this.changed('reads', frame.conversation_id);
        break;
      case 'typing': {
        let typing = this.typing.get(frame.conversation_id);
        if (!typing) this.typing.set(frame.conversation_id, (typing = new Map()));
        if (frame.state === 'start') {
          typing.set(frame.user_id, Date.now() + TYPING_SHOWN_MS);
          setTimeout(() => this.changed('typing', frame.conversation_id), TYPING_SHOWN_MS + 50);
        } else {
          typing.delete(frame.user_id);
        }
        this.changed('typing', frame.conversation_id);
        break;
      }
      case 'presence':
        this.presence.set(frame.user_id, { status: frame.status, last_seen: frame.last_seen });
        this.changed('presence', frame.user_id);
        break;
      case 'conversation.joined':
      case 'conversation.updated':
        this.putConversation(frame.conversation);
        if (frame.type === 'conversation.joined') this.changed('conversations');
        break;
      case 'conversation.left':
        this.removeConversation(frame.conversation_id);
        break;
      default:
        break;
    }
  }

  #typingStopped(conversationId, userId) {
    this.typing.get(conversationId)?.delete(userId);
  }

  /** Users typing now in a conversation (not me). */
  typingIn(id) {
    const typing = this.typing.get(id);
    if (!typing) return [];
    const now = Date.now();
    return [...typing].filter(([user, until]) => until > now && user !== this.me.id).map(([user]) => user);
  }

  /** Whether I have read `m` (my watermark is at or past it). */
  isRead(m) {
    return (this.reads.get(m.conversation_id)?.get(this.me.id) || 0) >= m.seq;
  }

  /** Marks the open conversation read up to its newest message. */
  markRead(id, socket) {
    const t = this.timeline(id);
    const mine = this.reads.get(id)?.get(this.me.id) || 0;
    const c = this.conversations.get(id);
    if (t.newest === 0 || (t.newest <= mine && !c?.unread_count)) return;
    this.#read(id, this.me.id, t.newest);
    if (c) c.unread_count = 0;
    if (socket.ready) socket.send({ type: 'read', conversation_id: id, seq: t.newest });
    else this.api.post(`/api/v1/conversations/${encodeURIComponent(id)}/read`, { seq: t.newest }).catch(() => {});
    this.changed('conversations');
  }

  /** After a reconnection: the list again (counts and latest messages of conversations not open). */
  async refreshAfterReconnect() {
    await this.loadConversations().catch(() => {});
  }
}
