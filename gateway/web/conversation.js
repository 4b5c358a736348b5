// The open conversation: history loaded as you scroll up, live messages,
// typing, read receipts, editing and deleting your own messages, mentions
// (marked in the text, `@` completion in the composer), jumping to a
// message, and sending text, images and files.

import { h, replace, reconcile, shortTime, ago, bytes, toast } from './dom.js';
import { MentionPicker, mentionedText, mentionsMe } from './mentions.js';

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const NEAR_TOP_PX = 80;
const NEAR_BOTTOM_PX = 60;
const THUMBNAIL_PX = 256;
/** How long a message jumped to stays highlighted. */
const HIGHLIGHT_MS = 2500;
const PHONE = window.matchMedia('(max-width: 720px)');
/** The reactions offered at one click (any emoji or :shortcode: works through the API). */
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

/** A dot for a user's presence. */
export function dot(store, userId) {
  const { status } = store.presenceOf(userId);
  return h('span', { class: 'dot', dataset: { status, user: userId }, title: status, 'aria-hidden': 'true' });
}

/** "online", "away", "last seen 5 min ago". */
export function presenceLine(store, userId) {
  const p = store.presenceOf(userId);
  if (p.status === 'online') return 'online';
  if (p.status === 'away') return 'away';
  return p.last_seen ? `last seen ${ago(p.last_seen)}` : 'offline';
}

export class ConversationView {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.store = app.store;
    this.id = null;
    /** media path → {url: Promise<string|null>, until, object} */
    this.media = new Map();
    this.attachments = [];
    this.typingSentAt = 0;
    this.typingTimer = null;
    this.editing = null;
    /** The conversation whose send is under way (an upload can take a while), if any. */
    this.sendingIn = null;
    /** The seq of the message jumped to, highlighted for a moment. */
    this.highlighted = null;
    this.highlightTimer = null;
    this.empty();
    document.addEventListener('visibilitychange', () => this.markRead());
    // "last seen 5 min ago" moves on.
    setInterval(() => this.renderHeader(), 30_000);
  }

  empty() {
    replace(this.root, h('div', { class: 'placeholder' }, h('p', {}, 'Choose a conversation, or start a new one.')));
  }

  close() {
    this.stopTyping();
    this.forgetMedia();
    this.id = null;
    this.store.openId = null;
    this.empty();
  }

  async open(id) {
    // The one already open keeps its draft, attachments and editor.
    if (this.id === id) return;
    this.stopTyping();
    this.forgetMedia();
    this.replying = null;
    clearTimeout(this.highlightTimer);
    this.highlighted = null;
    this.id = id;
    this.store.openId = id;
    this.editing = null;
    this.cancelEdit = null;
    this.clearAttachments();
    this.build();
    await this.loadLatest(id);
    if (this.id !== id) return;
    const c = this.store.conversations.get(id);
    if (c) this.store.watchPresenceOf(c.participants.slice(0, 100));
    this.renderMessages(true);
    // Someone who started typing while the history loaded keeps the focus
    // (taking it away would send their Enter nowhere). Otherwise: the
    // composer, but on a phone the history (focusing the composer would pop
    // the keyboard over what you came to read).
    if (document.activeElement === this.input) return;
    if (!PHONE.matches) this.input.focus();
    else this.scroller.focus();
  }

  async loadLatest(id) {
    try {
      await this.store.loadLatest(id);
    } catch (e) {
      toast(`Messages could not be loaded: ${e.message}`);
      if (this.id === id) this.renderMessages(false);
    }
  }

  build() {
    this.header = h('header', { class: 'conversation-header' });
    this.list = h('ol', { class: 'messages', 'aria-label': 'Message history' });
    this.scroller = h('div', { class: 'scroller', role: 'log', 'aria-live': 'polite', tabindex: '0', onscroll: () => this.scrolled() }, this.list);
    this.typing = h('div', { class: 'typing', 'aria-live': 'polite' });
    this.previews = h('ul', { class: 'attachment-previews', 'aria-label': 'Attachments to send' });
    this.file = h('input', { type: 'file', class: 'visually-hidden', multiple: true, onchange: () => this.pick() });
    this.input = h('textarea', {
      rows: 1, 'aria-label': 'Message', placeholder: 'Write a message', maxlength: 4000,
      onkeydown: (e) => {
        // The `@` list, when open, takes the arrows, Enter, Tab and Escape.
        if (this.mentionPicker.keydown(e)) return;
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          this.send();
        }
      },
      onkeyup: (e) => { if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) this.mentionPicker.update(); },
      onclick: () => this.mentionPicker.update(),
      oninput: () => {
        this.typed();
        this.mentionPicker.update();
      },
    });
    this.mentionPicker = new MentionPicker(this.app, this.input, () => this.id, () => this.typed());
    this.sendButton = h('button', { type: 'submit', class: 'primary send' }, 'Send');
    this.replyBar = h('div', { class: 'reply-bar', hidden: true });
    const composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.replyBar,
      this.previews,
      this.mentionPicker.list,
      h('div', { class: 'composer-row' },
        h('label', { class: 'attach', title: 'Attach images or files' },
          h('span', { 'aria-hidden': 'true' }, '+'), h('span', { class: 'visually-hidden' }, 'Attach files'), this.file),
        this.input, this.sendButton));
    replace(this.root, this.header, this.scroller, this.typing, composer);
    this.renderHeader();
  }

  renderHeader() {
    const c = this.store.conversations.get(this.id);
    if (!c || !this.header) return;
    const store = this.store;
    const partner = store.partnerOf(c);
    const blocked = partner && this.app.blocked?.has(partner);
    const subtitle = blocked
      ? h('span', { class: 'subtitle', dataset: { blocked: 'true' } }, 'Blocked by you')
      : partner
      ? h('span', { class: 'subtitle presence-text' }, presenceLine(store, partner))
      : h('span', { class: 'subtitle' }, `${c.member_count ?? c.participants.length} members${c.description ? ` · ${c.description}` : ''}`);
    replace(this.header,
      h('button', { type: 'button', class: 'quiet back', 'aria-label': 'Back to conversations', onclick: () => this.app.back() }, '←'),
      partner ? dot(store, partner) : null,
      h('div', { class: 'title' }, h('h2', {}, store.title(c)), subtitle),
      h('button', { type: 'button', class: 'quiet', onclick: () => this.pinsDialog() }, 'Pins'),
      h('button', { type: 'button', class: 'quiet', onclick: () => this.app.searchDialog('', true) }, 'Search'),
      c.type === 'direct'
        ? h('button', { type: 'button', class: 'quiet', onclick: () => this.app.profileDialog(partner) }, 'Profile')
        : h('button', { type: 'button', class: 'quiet', onclick: () => this.app.settingsDialog(c.id) }, 'Settings'));
  }

  changed(what, id) {
    if (!this.id) return;
    if (what === 'presence' || what === 'user' || (what === 'conversation' && id === this.id)) this.renderHeader();
    if ((what === 'messages' || what === 'reads') && id === this.id) this.renderMessages(false);
    if (what === 'user') this.renderMessages(false);
    if (what === 'older' && id === this.id) this.renderMessages(false, true);
    if (what === 'typing' && id === this.id) this.renderTyping();
    // The list came back (after a reconnection) still counting unread here: read it.
    if (what === 'conversations' && this.store.conversations.get(this.id)?.unread_count) this.markRead();
  }

  // ---- messages ----

  renderMessages(toBottom, keepFromBottom = false) {
    if (!this.scroller) return;
    const scroller = this.scroller;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const c = this.store.conversations.get(this.id);
    const t = this.store.timeline(this.id);
    const messages = this.store.messagesOf(this.id);
    const lastOwnSeen = this.lastOwnSeen(messages);
    const items = [];
    if (!t.loaded && !t.loading) {
      items.push({ key: 'failed', version: '', render: () => h('li', { class: 'older' }, 'Messages could not be loaded. ',
        h('button', { type: 'button', class: 'link', onclick: () => this.loadLatest(this.id) }, 'Try again')) });
    } else if (t.loaded && t.hasOlder) {
      const label = t.loading ? 'Loading…' : 'Load earlier messages';
      items.push({ key: 'older', version: label, render: () => h('li', { class: 'older' }, h('button', { type: 'button', class: 'quiet', onclick: () => this.older() }, label)) });
    } else if (t.loaded) {
      items.push({ key: 'start', version: '', render: () => h('li', { class: 'start' }, 'This is the start of the conversation.') });
    }
    for (const m of messages) {
      const key = m.id || m.client_id;
      // An open editor is not redrawn under the user.
      const version = key === this.editing ? this.list.querySelector(`[data-key="${CSS.escape(key)}"]`)?.dataset.version || '' : this.versionOf(c, m, m.seq === lastOwnSeen);
      items.push({ key, version, render: () => this.messageItem(c, m, m.seq === lastOwnSeen) });
    }
    reconcile(this.list, items);
    if (toBottom || (atBottom && !keepFromBottom)) scroller.scrollTop = scroller.scrollHeight;
    else if (keepFromBottom) scroller.scrollTop = scroller.scrollHeight - fromBottom;
    this.markRead();
  }

  /** Everything a message's element shows, as a string: a change redraws it. */
  versionOf(c, m, receipt) {
    const readers = receipt ? this.store.readersOf(this.id, m.seq).map((u) => this.store.userName(u)) : [];
    const sender = m.sender_id === this.store.me.id || c?.type === 'direct' ? '' : this.store.userName(m.sender_id);
    // (The names mentioned: a name looked up meanwhile marks its mention.)
    const mentioned = (m.mentions || []).map((u) => this.store.users.known(u)?.username || '');
    return JSON.stringify([m.seq, m.content, m.edited_at, m.deleted, m.pending, m.failed, m.error, readers, sender,
      (m.attachments || []).map((a) => a.id), m.reactions || [], this.picking === m.id, m.reply_to, m.reply_count, m.pinned,
      c?.type === 'direct' || this.store.isAdmin(c), mentioned, this.highlighted === m.seq]);
  }

  /** The seq of my newest message someone has read (receipts show there). */
  lastOwnSeen(messages) {
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const m = messages[i];
      if (m.sender_id === this.store.me.id && !m.pending && this.store.readersOf(this.id, m.seq).length > 0) return m.seq;
    }
    return null;
  }

  messageItem(c, m, receipt) {
    const store = this.store;
    const mine = m.sender_id === store.me.id;
    const classes = ['message', mine ? 'mine' : 'theirs', m.pending ? 'pending' : '', m.deleted ? 'deleted' : '',
      mentionsMe(store, m) ? 'mentions-me' : '', this.highlighted === m.seq ? 'highlight' : ''].filter(Boolean).join(' ');
    const body = m.deleted
      ? h('p', { class: 'content' }, 'This message was deleted.')
      : [this.attachmentsOf(m), m.content ? h('p', { class: 'content' }, mentionedText(store, m)) : null];
    let status = null;
    if (mine) {
      if (m.failed) {
        status = h('span', { class: 'status failed' }, `Not sent: ${m.error || 'failed'} `,
          h('button', { type: 'button', class: 'link', onclick: () => this.retry(m) }, 'Retry'));
      } else if (m.pending) {
        status = h('span', { class: 'status' }, 'Sending…');
      } else if (receipt) {
        const readers = store.readersOf(this.id, m.seq);
        status = h('span', { class: 'status seen', dataset: { receipt: 'seen' } },
          c?.type === 'direct' ? 'Seen' : `Seen by ${readers.map((u) => store.userName(u)).join(', ')}`);
      }
    }
    const reply = !m.deleted && !m.pending
      ? h('button', { type: 'button', class: 'quiet', 'aria-label': 'Reply to message', onclick: () => this.replyTo(m) }, 'Reply') : null;
    const thread = m.reply_count > 0
      ? h('button', { type: 'button', class: 'link replies-link', onclick: () => this.repliesDialog(m) },
        `${m.reply_count} ${m.reply_count === 1 ? 'reply' : 'replies'}`) : null;
    const mayPin = c?.type === 'direct' || store.isAdmin(c);
    const pin = !m.deleted && !m.pending && mayPin
      ? h('button', { type: 'button', class: 'quiet', 'aria-label': m.pinned ? 'Unpin message' : 'Pin message', onclick: () => this.pin(m, !m.pinned) }, m.pinned ? 'Unpin' : 'Pin') : null;
    const actions = !m.deleted && !m.pending ? h('span', { class: 'message-actions' }, reply, pin,
      mine && m.type === 'text' ? h('button', { type: 'button', class: 'quiet', 'aria-label': 'Edit message', onclick: () => this.edit(m) }, 'Edit') : null,
      mine ? h('button', { type: 'button', class: 'quiet', 'aria-label': 'Delete message', onclick: () => this.remove(m) }, 'Delete') : null) : null;
    return h('li', { class: classes, dataset: { seq: m.seq ?? '' } },
      !mine && c?.type !== 'direct' ? h('span', { class: 'sender' }, store.userName(m.sender_id)) : null,
      m.reply_to ? this.quoteOf(m.reply_to) : null,
      h('div', { class: 'bubble' }, body),
      m.deleted || m.pending ? null : this.reactionsOf(m),
      h('div', { class: 'meta' },
        h('time', { datetime: m.created_at, title: new Date(m.created_at).toLocaleString() }, shortTime(m.created_at)),
        m.edited_at && !m.deleted ? h('span', { class: 'edited' }, 'edited') : null,
        m.pinned && !m.deleted ? h('span', { class: 'pinned-tag', dataset: { pinned: 'true' } }, '📌 Pinned') : null,
        mentionsMe(store, m) ? h('span', { class: 'mention-tag', dataset: { mention: 'me' } }, '@ Mentions you') : null,
        status,
        thread,
        actions));
  }

  /** The message a reply answers, quoted above it (a click shows it). */
  quoteOf(ref) {
    // No text: deleted (when known here), or attachments without a caption.
    const parent = this.store.timelines.get(this.id)?.bySeq.get(ref.seq);
    const text = ref.excerpt || (parent?.deleted ? 'Deleted message' : 'Attachment');
    return h('button', {
      type: 'button', class: 'reply-quote', 'aria-label': `Replying to ${this.store.userName(ref.sender_id)}: ${text}`,
      onclick: () => this.jumpTo(ref.seq),
    }, h('strong', {}, this.store.userName(ref.sender_id)), h('span', { class: 'reply-excerpt' }, text));
  }

  /**
   * Shows message `seq` of the open conversation: loads it if it is further
   * back than what is loaded (older pages, so what is loaded stays one run),
   * scrolls to it and highlights it for a moment.
   */
  async jumpTo(seq) {
    const id = this.id;
    let reached = false;
    try {
      reached = await this.store.loadBackTo(id, seq);
    } catch (e) {
      toast(`Messages could not be loaded: ${e.message}`);
    }
    if (this.id !== id) return;
    clearTimeout(this.highlightTimer);
    this.highlighted = seq;
    this.renderMessages(false);
    const target = this.list.querySelector(`[data-seq="${seq}"]`);
    if (target) {
      target.scrollIntoView({ block: 'center' });
    } else if (!reached) {
      toast('That message is too far back to show here: scroll up to reach it.', 'info');
    }
    this.highlightTimer = setTimeout(() => {
      if (this.id !== id || this.highlighted !== seq) return;
      this.highlighted = null;
      this.renderMessages(false);
    }, HIGHLIGHT_MS);
  }

  /** Pins or unpins `m`; the `message.updated` that follows shows it. */
  async pin(m, pinned) {
    const path = `/api/v1/messages/${encodeURIComponent(m.id)}/pin`;
    try {
      await (pinned ? this.app.api.post(path) : this.app.api.delete(path));
    } catch (e) {
      toast(e.message);
    }
  }

  /** The conversation's pinned messages, most recently pinned first; a click shows one. */
  async pinsDialog() {
    const id = this.id;
    const list = h('ol', { class: 'messages pins', 'aria-label': 'Pinned messages' });
    const dlg = this.app.dialog('Pinned messages', list);
    const items = [];
    let cursor = null;
    do {
      const page = await this.app.api.get(`/api/v1/conversations/${encodeURIComponent(id)}/pins${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`)
        .catch((e) => { toast(e.message); return null; });
      if (!page) break;
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < 500);
    replace(list, items.length === 0 ? h('li', { class: 'empty' }, 'Nothing is pinned here.') : items.map((p) => h('li', { class: 'pinned-item' },
      h('button', {
        type: 'button', class: 'quiet pinned-jump',
        onclick: () => {
          dlg.close();
          this.jumpTo(p.seq);
        },
      }, h('strong', {}, this.store.userName(p.sender_id)), h('span', { class: 'pinned-text' }, p.content || 'Attachment')))));
  }

  /** Starts a reply to `m`: shown above the composer until sent or cancelled. */
  replyTo(m) {
    this.replying = { id: m.id, seq: m.seq, sender_id: m.sender_id, excerpt: [...(m.content || '')].slice(0, 100).join('') };
    this.renderReplying();
    this.input.focus();
  }

  renderReplying() {
    if (!this.replyBar) return;
    const r = this.replying;
    this.replyBar.hidden = !r;
    if (!r) return;
    replace(this.replyBar,
      h('span', { class: 'reply-to-label' }, `Replying to ${this.store.userName(r.sender_id)}: `, h('em', {}, r.excerpt)),
      h('button', { type: 'button', class: 'quiet', 'aria-label': 'Cancel the reply', onclick: () => { this.replying = null; this.renderReplying(); } }, '✕'));
  }

  /** The replies to `m`, oldest first, in a dialog. */
  async repliesDialog(m) {
    const list = h('ol', { class: 'messages replies', 'aria-label': 'Replies' });
    this.app.dialog('Replies', this.quoteOf({ id: m.id, seq: m.seq, sender_id: m.sender_id, excerpt: m.content }), list);
    const items = [];
    let cursor = null;
    do {
      const page = await this.app.api.get(`/api/v1/messages/${encodeURIComponent(m.id)}/replies${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`)
        .catch((e) => { toast(e.message); return null; });
      if (!page) break;
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < 500);
    const c = this.store.conversations.get(this.id);
    replace(list, items.map((r) => h('li', { class: `message ${r.sender_id === this.store.me.id ? 'mine' : 'theirs'}` },
      c?.type === 'direct' ? null : h('span', { class: 'sender' }, this.store.userName(r.sender_id)),
      h('div', { class: 'bubble' }, h('p', { class: 'content' }, r.deleted ? 'This message was deleted.' : mentionedText(this.store, r))),
      h('div', { class: 'meta' }, h('time', { datetime: r.created_at }, shortTime(r.created_at))))));
  }

  /** A message's reactions (each toggles mine), and a picker to add one. */
  reactionsOf(m) {
    const chips = (m.reactions || []).map((r) => h('button', {
      type: 'button', class: 'reaction', 'aria-pressed': String(r.me),
      'aria-label': `${r.emoji} ${r.count}${r.me ? ', yours: take it back' : ': add yours'}`,
      onclick: () => this.react(m, r.emoji, !r.me),
    }, h('span', { class: 'reaction-emoji' }, r.emoji), h('span', { class: 'reaction-count' }, String(r.count))));
    const picker = this.picking === m.id ? h('div', { class: 'reaction-picker', role: 'menu', 'aria-label': 'Pick a reaction' },
      QUICK_REACTIONS.map((emoji) => h('button', {
        type: 'button', role: 'menuitem', 'aria-label': `React with ${emoji}`,
        onclick: () => { this.picking = null; this.react(m, emoji, true); },
      }, emoji))) : null;
    const add = h('button', {
      type: 'button', class: 'quiet add-reaction', 'aria-label': 'Add a reaction', 'aria-expanded': String(this.picking === m.id),
      onclick: () => { this.picking = this.picking === m.id ? null : m.id; this.renderMessages(false); },
    }, '☺+');
    return h('div', { class: 'reactions' }, chips, add, picker);
  }

  /** Adds or takes back my reaction; the `reaction` event shows it. */
  async react(m, emoji, add) {
    const path = `/api/v1/messages/${encodeURIComponent(m.id)}/reactions/${encodeURIComponent(emoji)}`;
    try {
      await (add ? this.app.api.put(path) : this.app.api.delete(path));
    } catch (e) {
      toast(e.message);
    }
    this.renderMessages(false);
  }

  attachmentsOf(m) {
    if (!m.attachments?.length) return null;
    return h('div', { class: 'attachments' }, m.attachments.map((a) => {
      if (m.pending) return h('span', { class: 'file' }, a.filename);
      if (a.thumbnail_url) {
        // The thumbnail's size is known ahead: no jump when it arrives.
        const scale = a.width && a.height ? Math.min(1, THUMBNAIL_PX / Math.max(a.width, a.height)) : 1;
        const img = h('img', {
          alt: a.filename || 'image', class: 'thumbnail',
          width: a.width ? Math.round(a.width * scale) : undefined, height: a.height ? Math.round(a.height * scale) : undefined,
        });
        this.load(a.thumbnail_url).then((url) => { if (url) img.src = url; });
        return h('button', { type: 'button', class: 'image-link', 'aria-label': `Open image ${a.filename}`, onclick: () => this.view(a) }, img);
      }
      return h('button', { type: 'button', class: 'file', onclick: () => this.download(a) }, `Download ${a.filename} (${bytes(a.size)})`);
    }));
  }

  /**
   * A URL an <img> or a link can use: with S3 a signed URL (asked for as
   * JSON, since a page cannot follow a redirect with its token), on disk an
   * object URL of the bytes.
   */
  load(path) {
    const cached = this.media.get(path);
    if (cached && cached.until > Date.now()) return cached.url;
    const entry = { until: Infinity, object: null };
    entry.url = (async () => {
      try {
        const response = await this.app.api.raw(path, { Accept: 'application/json' });
        if (response.headers.get('Content-Type')?.startsWith('application/json')) {
          const link = await response.json();
          entry.until = Date.now() + (link.expires_in || 60) * 800;
          return link.url;
        }
        const blob = await response.blob();
        // Forgotten meanwhile (the conversation was left): nothing to keep.
        if (this.media.get(path) !== entry) return null;
        entry.object = URL.createObjectURL(blob);
        return entry.object;
      } catch (e) {
        if (this.media.get(path) === entry) this.media.delete(path);
        return null;
      }
    })();
    this.media.set(path, entry);
    return entry.url;
  }

  /** Lets go of the object URLs of the conversation being left. */
  forgetMedia() {
    for (const entry of this.media.values()) if (entry.object) URL.revokeObjectURL(entry.object);
    this.media.clear();
  }

  async view(a) {
    const url = await this.load(a.url);
    if (!url) return toast('This image cannot be loaded.');
    const dlg = h('dialog', { class: 'dialog viewer', 'aria-label': a.filename },
      h('img', { src: url, alt: a.filename }),
      h('form', { method: 'dialog' }, h('button', { class: 'primary' }, 'Close')));
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    return undefined;
  }

  async download(a) {
    const url = await this.load(a.url);
    if (!url) return toast('This file cannot be downloaded.');
    const link = h('a', { href: url, download: a.filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    return undefined;
  }

  scrolled() {
    if (this.scroller.scrollTop < NEAR_TOP_PX) this.older();
    this.markRead();
  }

  async older() {
    try {
      await this.store.loadOlder(this.id);
    } catch (e) {
      toast(e.message);
    }
  }

  markRead() {
    if (!this.id || !this.scroller || document.visibilityState !== 'visible') return;
    const s = this.scroller;
    if (s.scrollHeight - s.scrollTop - s.clientHeight > NEAR_BOTTOM_PX) return;
    this.store.markRead(this.id, this.app.socket);
  }

  // ---- typing ----

  typed() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
    if (!this.input.value.trim()) return this.stopTyping();
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_EVERY_MS) {
      if (this.app.socket.send({ type: 'typing', conversation_id: this.id, state: 'start' })) this.typingSentAt = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    return undefined;
  }

  /** Says "stopped typing" (not needed after a send: the message ends it for everyone). */
  stopTyping(announce = true) {
    clearTimeout(this.typingTimer);
    if (announce && this.typingSentAt && this.id) this.app.socket.send({ type: 'typing', conversation_id: this.id, state: 'stop' });
    this.typingSentAt = 0;
  }

  renderTyping() {
    const users = this.store.typingIn(this.id);
    this.typing.textContent = users.length === 0 ? ''
      : users.length === 1 ? `${this.store.userName(users[0])} is typing…`
        : `${users.map((u) => this.store.userName(u)).join(', ')} are typing…`;
  }

  // ---- sending ----

  pick() {
    for (const file of this.file.files) {
      const entry = { file, preview: file.type.startsWith('image/') ? URL.createObjectURL(file) : null };
      this.attachments.push(entry);
    }
    this.file.value = '';
    this.renderPreviews();
  }

  renderPreviews() {
    replace(this.previews, this.attachments.map((entry, i) => h('li', { class: 'attachment-preview' },
      entry.preview ? h('img', { src: entry.preview, alt: `Preview of ${entry.file.name}` }) : h('span', { class: 'file' }, entry.file.name),
      h('span', { class: 'size' }, bytes(entry.file.size)),
      h('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${entry.file.name}`, onclick: () => { this.dropAttachment(i); } }, '✕'))));
  }

  dropAttachment(i) {
    const [entry] = this.attachments.splice(i, 1);
    if (entry?.preview) URL.revokeObjectURL(entry.preview);
    this.renderPreviews();
  }

  clearAttachments() {
    for (const entry of this.attachments) if (entry.preview) URL.revokeObjectURL(entry.preview);
    this.attachments = [];
    if (this.previews) this.renderPreviews();
  }

  async send() {
    const content = this.input.value.trim();
    const files = this.attachments;
    if (!content && files.length === 0) return undefined;
    if (this.sendingIn === this.id) {
      // A message of this conversation is still uploading: this one would
      // overtake it. Said, not swallowed; the text stays in the composer.
      return toast('Wait for the upload to finish, then send.');
    }
    if ([...content].length > 4000) return toast('Messages are limited to 4000 characters.');
    // Taken off the composer at once: a second Enter cannot send them twice.
    this.sendingIn = this.id;
    const replying = this.replying;
    this.replying = null;
    this.renderReplying();
    this.attachments = [];
    this.renderPreviews();
    this.input.value = '';
    this.input.style.height = 'auto';
    this.mentionPicker.close();
    this.stopTyping(false);
    const id = this.id;
    this.sendButton.disabled = true;
    try {
      let attachments = [];
      let type = 'text';
      if (files.length) {
        this.sendButton.textContent = 'Uploading…';
        for (const entry of files) {
          const form = new FormData();
          form.append('file', entry.file, entry.file.name);
          attachments.push(await this.app.api.post('/api/v1/media', form));
        }
        type = attachments.every((a) => a.content_type.startsWith('image/')) ? 'image' : 'file';
        for (const entry of files) if (entry.preview) URL.revokeObjectURL(entry.preview);
      }
      const pending = this.store.enqueue(id, content, type, attachments, replying);
      this.app.deliver(pending);
    } catch (e) {
      // Nothing was sent: the text and files go back where they were.
      toast(e.message);
      if (this.id === id) {
        if (!this.input.value) this.input.value = content;
        if (!this.replying) this.replying = replying;
        this.renderReplying();
        this.attachments = files.concat(this.attachments);
        this.renderPreviews();
      } else {
        for (const entry of files) if (entry.preview) URL.revokeObjectURL(entry.preview);
      }
    } finally {
      if (this.sendingIn === id) this.sendingIn = null;
      if (this.id === id) {
        this.sendButton.disabled = false;
        this.sendButton.textContent = 'Send';
        if (!PHONE.matches) this.input.focus();
      }
    }
    return undefined;
  }

  retry(m) {
    m.failed = false;
    m.tries = 0;
    this.store.changed('messages', m.conversation_id);
    this.app.deliver(m);
  }

  edit(m) {
    // One editor at a time.
    this.cancelEdit?.();
    const item = this.list.querySelector(`[data-key="${CSS.escape(m.id)}"] .bubble`);
    if (!item) return;
    const text = h('textarea', { 'aria-label': 'Edit message', rows: 2, maxlength: 4000 }, m.content);
    const done = () => {
      if (this.editing !== m.id) return;
      this.editing = null;
      this.cancelEdit = null;
      // Drawn afresh (the editor is not part of any version).
      this.list.querySelector(`[data-key="${CSS.escape(m.id)}"]`)?.setAttribute('data-version', '');
      this.renderMessages(false);
    };
    const save = async () => {
      const content = text.value.trim();
      if (!content) return toast('A message cannot be empty; delete it instead.');
      try {
        const updated = await this.app.api.patch(`/api/v1/messages/${encodeURIComponent(m.id)}`, { content });
        done();
        this.store.acknowledged(updated);
      } catch (e) {
        toast(e.message);
      }
      return undefined;
    };
    text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
      if (e.key === 'Escape') { e.preventDefault(); done(); }
    });
    this.editing = m.id;
    this.cancelEdit = done;
    replace(item, text, h('div', { class: 'edit-actions' },
      h('button', { type: 'button', class: 'primary', onclick: save }, 'Save'),
      h('button', { type: 'button', class: 'quiet', onclick: done }, 'Cancel')));
    text.focus();
  }

  async remove(m) {
    if (!window.confirm('Delete this message for everyone?')) return;
    try {
      await this.app.api.delete(`/api/v1/messages/${encodeURIComponent(m.id)}`);
      this.store.apply({ type: 'message.deleted', conversation_id: m.conversation_id, message_id: m.id, seq: m.seq });
    } catch (e) {
      toast(e.message);
    }
  }
}
