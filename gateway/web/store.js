// What the page knows, and the one place it changes: conversations, what is
// loaded of their messages (timeline.js), my messages on their way
// (outbox.js), users and presence (users.js), typing and read watermarks.
// Answers of the API land here, events of the socket through events.js;
// views subscribe to `changed`.

import { query } from './api.js';
import { Outbox } from './outbox.js';
import { Timeline } from './timeline.js';
import { Typing, applyFrame } from './events.js';
import { Users } from './users.js';

const PAGE = 50;
/** A jump to a message loads older pages of this size, at most JUMP_PAGES of them. */
const JUMP_PAGE = 100;
const JUMP_PAGES = 10;
/** Conversations one WebSocket `resume` may name (the server refuses more). */
const MAX_RESUMED = 100;
const READ_DELAY_MS = 400;

export class Store extends EventTarget {
  constructor(api, me) {
    super();
    this.api = api;
    this.me = me;
    this.conversations = new Map();
    this.listCursor = null;
    /** conversation id → Timeline */
    this.timelines = new Map();
    this.users = new Users(api, me, (what, id) => this.changed(what, id));
    this.typing = new Typing((what, id) => this.changed(what, id));
    /** conversation id → Map(user id → highest seq read) */
    this.reads = new Map();
    this.outbox = new Outbox();
    this.readTimers = new Map();
    this.openId = null;
  }

  changed(what, id) {
    this.dispatchEvent(new CustomEvent('changed', { detail: { what, id } }));
  }

  // ---- conversations ----

  /**
   * The first page of the list (again after a reconnection): news of
   * conversations not open. What arrived live meanwhile is kept when newer,
   * and conversations I am no longer in go when the list is complete.
   */
  async loadConversations() {
    // Only what was known before asking can be missing from the answer.
    const known = [...this.conversations.keys()];
    const page = await this.api.get(`/api/v1/conversations${query({ limit: 100 })}`);
    const listed = new Set();
    for (const c of page.items) {
      listed.add(c.id);
      const old = this.conversations.get(c.id);
      const merged = old?.last_message && (!c.last_message || old.last_message.seq > c.last_message.seq)
        ? { ...c, last_message: old.last_message, unread_count: old.unread_count, mention_count: old.mention_count }
        : c;
      // With every message from my watermark to the latest loaded here, the
      // count is known exactly (the answer may predate a read just sent).
      const t = this.timelines.get(c.id);
      const read = this.myRead(c.id);
      if (t?.loaded && merged.last_message && t.newest >= merged.last_message.seq && t.oldest <= read + 1) {
        merged.unread_count = t.othersAbove(this.me.id, read);
        merged.mention_count = t.mentionsAbove(this.me.id, read);
      }
      this.conversations.set(c.id, merged);
    }
    if (!page.next_cursor) {
      for (const id of known) {
        if (!listed.has(id)) {
          this.conversations.delete(id);
          this.timelines.delete(id);
        }
      }
    }
    this.listCursor = page.next_cursor;
    this.#watchPartners();
    this.changed('conversations');
  }

  async loadMoreConversations() {
    if (!this.listCursor) return;
    const page = await this.api.get(`/api/v1/conversations${query({ limit: 100, cursor: this.listCursor })}`);
    for (const c of page.items) this.conversations.set(c.id, c);
    this.listCursor = page.next_cursor;
    this.#watchPartners();
    this.changed('conversations');
  }

  /** Most recent activity first. */
  sortedConversations() {
    const at = (c) => c.last_message?.created_at || c.created_at;
    return [...this.conversations.values()].sort((a, b) => (at(a) < at(b) ? 1 : at(a) > at(b) ? -1 : 0));
  }

  /** The conversation as I see it (my unread count, its latest message). */
  async fetchConversation(id) {
    const c = await this.api.get(`/api/v1/conversations/${encodeURIComponent(id)}`);
    this.putConversation(c);
    return c;
  }

  /**
   * A conversation from an event: events carry it as everyone sees it
   * (no unread or mention count or latest message of mine), so those are kept.
   */
  mergeConversation(c) {
    const old = this.conversations.get(c.id);
    if (!old) return this.fetchConversation(c.id).catch(() => {});
    this.conversations.set(c.id, {
      ...c, unread_count: old.unread_count, mention_count: old.mention_count, last_message: old.last_message,
    });
    this.changed('conversation', c.id);
    return Promise.resolve();
  }

  /** A conversation I just created or joined (an answer of mine: my view). */
  putConversation(c) {
    this.conversations.set(c.id, c);
    this.#watchPartners();
    this.changed('conversation', c.id);
  }

  removeConversation(id) {
    this.conversations.delete(id);
    this.timelines.delete(id);
    this.changed('conversations', id);
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
    return this.users.name(id);
  }

  loadUser(id) {
    return this.users.load(id);
  }

  putUser(user) {
    this.users.put(user);
  }

  /** Presence of every direct partner. */
  #watchPartners() {
    const partners = [...this.conversations.values()].map((c) => this.partnerOf(c)).filter(Boolean);
    return this.users.watchPresenceOf(partners);
  }

  watchPresenceOf(ids, again = false) {
    return this.users.watchPresenceOf(ids, again);
  }

  presenceOf(id) {
    return this.users.presenceOf(id);
  }

  // ---- messages ----

  timeline(id) {
    let t = this.timelines.get(id);
    if (!t) {
      t = new Timeline();
      this.timelines.set(id, t);
    }
    return t;
  }

  /** The newest page, the first time a conversation opens. */
  loadLatest(id) {
    const t = this.timeline(id);
    if (t.loaded) return Promise.resolve();
    if (!t.loading) {
      t.loading = (async () => {
        const page = await this.api.get(`/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ limit: PAGE })}`);
        t.hasOlder = page.items.length === PAGE;
        for (const m of page.items) this.#put(t, m);
        t.loaded = true;
        this.changed('messages', id);
      })().finally(() => { t.loading = null; });
    }
    return t.loading;
  }

  /** The page before the oldest loaded message (scrolling up). */
  async loadOlder(id, limit = PAGE) {
    const t = this.timeline(id);
    if (!t.loaded || !t.hasOlder || t.loading || t.oldest === null) return;
    t.loading = (async () => {
      const page = await this.api.get(
        `/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ before: t.oldest, limit })}`,
      );
      t.hasOlder = page.items.length === limit;
      for (const m of page.items) this.#put(t, m);
    })().finally(() => { t.loading = null; });
    await t.loading;
    this.changed('older', id);
  }

  /**
   * Loads a conversation down to message `seq` (a jump to it from a
   * mention, a search result or a pin): the newest page, then older pages
   * until it is there, so what is loaded stays one run up to the newest.
   * False when it is further back than a jump loads.
   */
  async loadBackTo(id, seq) {
    for (let pages = 0; ; pages += 1) {
      // (Fetched each time: a resume too far behind starts the timeline afresh.)
      const t = this.timeline(id);
      if (t.loading) await t.loading;
      if (!t.loaded) {
        if (pages > JUMP_PAGES) return false;
        await this.loadLatest(id);
      } else if (t.oldest === null || t.oldest <= seq || !t.hasOlder) {
        return true;
      } else if (pages > JUMP_PAGES) {
        return false;
      } else {
        await this.loadOlder(id, JUMP_PAGE);
      }
    }
  }

  /** Everything after `after` (a hole below a live message). */
  async #fill(id, after) {
    const t = this.timeline(id);
    let from = after;
    for (;;) {
      const page = await this.api.get(
        `/api/v1/conversations/${encodeURIComponent(id)}/messages${query({ after: from, limit: 100 })}`,
      );
      for (const m of page.items) this.#put(t, m);
      if (page.items.length < 100) break;
      from = page.items[page.items.length - 1].seq;
    }
    this.changed('messages', id);
  }

  /** Messages in ascending seq, then those still being sent. */
  messagesOf(id) {
    return this.timeline(id).sorted().concat(this.outbox.of(id));
  }

  /**
   * What the socket's resume asks for: conversations whose messages are
   * loaded, at most as many as one resume may name (the open one first);
   * the others are forgotten and load afresh when opened.
   */
  positions() {
    const loaded = [...this.timelines].filter(([, t]) => t.loaded);
    loaded.sort(([a], [b]) => (b === this.openId) - (a === this.openId));
    for (const [id] of loaded.slice(MAX_RESUMED)) this.timelines.delete(id);
    return Object.fromEntries(loaded.slice(0, MAX_RESUMED).map(([id, t]) => [id, t.newest]));
  }

  /** Forgets what is loaded of `ids` (too far behind to replay); the open one loads its newest page again. */
  reloadHistory(ids) {
    for (const id of ids) {
      this.timelines.delete(id);
      if (id === this.openId) this.loadLatest(id).catch(() => {});
      this.changed('messages', id);
    }
  }

  /** Adds or replaces a message of a timeline (and what it says of reads); true when it was new. */
  #put(t, m) {
    const fresh = t.put(m);
    if (m.client_id) this.outbox.delete(m.client_id);
    for (const r of m.read_by || []) this.noteRead(m.conversation_id, r.user_id, m.seq);
    return fresh;
  }

  /**
   * A message I had not read was edited or deleted (`after` null): my
   * mention count follows when it starts or stops mentioning me.
   */
  mentionChanged(before, after) {
    const c = this.conversations.get(before.conversation_id);
    if (!c || before.sender_id === this.me.id || before.seq <= this.myRead(before.conversation_id)) return;
    const mentioned = (m) => !!m && !m.deleted && !!m.mentions?.includes(this.me.id);
    const change = mentioned(after) - mentioned(before);
    if (change) c.mention_count = Math.max(0, (c.mention_count || 0) + change);
  }

  /** A message was edited or deleted: the replies shown quote it as it is now. */
  quotedChanged(conversationId, messageId, content) {
    const t = this.timelines.get(conversationId);
    if (!t) return;
    const excerpt = [...(content || '')].slice(0, 100).join('');
    for (const [seq, m] of t.bySeq) {
      if (m.reply_to?.id === messageId && m.reply_to.excerpt !== excerpt) {
        t.bySeq.set(seq, { ...m, reply_to: { ...m.reply_to, excerpt } });
      }
    }
  }

  /** Someone has read up to `seq` (watermarks only move up). */
  noteRead(conversationId, userId, seq) {
    let reads = this.reads.get(conversationId);
    if (!reads) this.reads.set(conversationId, (reads = new Map()));
    if ((reads.get(userId) || 0) < seq) reads.set(userId, seq);
  }

  /** My read watermark in a conversation. */
  myRead(id) {
    return this.reads.get(id)?.get(this.me.id) || 0;
  }

  /** Who (other than me) has read up to `seq`. */
  readersOf(conversationId, seq) {
    const reads = this.reads.get(conversationId);
    if (!reads) return [];
    return [...reads].filter(([user, upTo]) => user !== this.me.id && upTo >= seq).map(([user]) => user);
  }

  /** Queues a message for the socket; shown at once as "sending". */
  enqueue(conversationId, content, type = 'text', attachments = [], replyTo = null) {
    const pending = this.outbox.add(conversationId, this.me.id, content, type, attachments, replyTo);
    this.changed('messages', conversationId);
    return pending;
  }

  /** My message as the server acknowledged it (a send or an edit). */
  acknowledged(message) {
    this.outbox.delete(message.client_id);
    this.arrived(message);
  }

  failed(clientId, error) {
    const pending = this.outbox.fail(clientId, error);
    if (pending) this.changed('messages', pending.conversation_id);
  }

  /** A message that exists on the server now: into its timeline (if one is shown), preview. */
  arrived(m) {
    const t = this.timelines.get(m.conversation_id);
    let fresh = true;
    if (t && (t.loaded || t.loading)) {
      const gapAfter = t.loaded && m.seq > t.newest + 1 ? t.newest : null;
      fresh = this.#put(t, m);
      if (gapAfter !== null) {
        // Not contiguous past the hole until it is filled (a failed fill
        // leaves the resume position below it); one fill at a time.
        t.newest = gapAfter;
        if (!t.filling) {
          t.filling = this.#fill(m.conversation_id, gapAfter).catch(() => {}).finally(() => { t.filling = null; });
        }
      }
    } else if (t && m.sender_id === this.me.id) {
      // My own message in a conversation whose history failed to load: kept
      // (the newest page, once loaded, contains it).
      fresh = this.#put(t, m);
    }
    // A reply new here: the message it answers, if shown, counts it.
    const parent = fresh && m.reply_to && t ? t.bySeq.get(m.reply_to.seq) : null;
    if (parent && parent.id === m.reply_to.id) {
      t.bySeq.set(parent.seq, { ...parent, reply_count: (parent.reply_count || 0) + 1 });
    }
    const c = this.conversations.get(m.conversation_id);
    if (c && (!c.last_message || c.last_message.seq <= m.seq)) c.last_message = m;
    this.changed('messages', m.conversation_id);
    this.changed('conversations');
    return fresh;
  }

  // ---- events from the socket ----

  /** Applies an event frame (events.js). */
  apply(frame) {
    return applyFrame(this, frame);
  }

  /** Users typing now in a conversation (not me). */
  typingIn(id) {
    return this.typing.in(id, this.me.id);
  }

  /**
   * Marks the open conversation read, shortly (one frame for a burst), and
   * only when someone else's message is above my watermark.
   */
  markRead(id, socket) {
    if (this.readTimers.has(id)) return;
    this.readTimers.set(id, setTimeout(async () => {
      const t = this.timelines.get(id);
      const c = this.conversations.get(id);
      const theirs = t ? t.newestOfOthers(this.me.id) : 0;
      // (Armed while the conversation was shown: it counts as read even if left since.)
      if (!t?.loaded || (theirs <= this.myRead(id) && !c?.unread_count)) {
        this.readTimers.delete(id);
        return;
      }
      // The highest seq shown (a read mark needs no contiguity).
      const seq = t.highestShown();
      if (seq < 1) {
        this.readTimers.delete(id);
        return;
      }
      const others = (above) => t.othersAbove(this.me.id, above);
      let retryIn = 0;
      try {
        // Acknowledged, so a read the server refused as too fast is sent again.
        await socket.request({ type: 'read', conversation_id: id, seq });
        this.noteRead(id, this.me.id, seq);
        const now = this.conversations.get(id);
        if (now) {
          now.unread_count = others(seq);
          now.mention_count = t.mentionsAbove(this.me.id, seq);
        }
        this.changed('conversations');
      } catch (e) {
        // Too fast: after the wait. Offline: when the socket is back (the
        // view reads again after every resume). Refused: not again.
        if (e.code === 'rate_limited') retryIn = e.retryAfterMs || 1000;
      }
      setTimeout(() => {
        this.readTimers.delete(id);
        if (retryIn) this.markRead(id, socket);
        // What arrived while this read was on its way: the view reads it (if still shown).
        else if (others(this.myRead(id)) > 0) this.changed('reads', id);
      }, retryIn);
    }, READ_DELAY_MS));
  }

  /** After a reconnection: the list again (news of conversations not open), presence again. */
  async refreshAfterReconnect() {
    await this.loadConversations().catch(() => {});
    await this.users.refreshPresence();
    // An open conversation whose history did not load: once more.
    if (this.openId && !this.timeline(this.openId).loaded) {
      await this.loadLatest(this.openId).catch(() => {});
    }
  }
}
