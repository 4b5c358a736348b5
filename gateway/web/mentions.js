// Mentions: `@username` in a message's text, shown marked for the people it
// names (the server resolves them into `message.mentions`), the composer's
// list of participants to name as you type `@`, and the "Mentions" dialog
// (messages that name me, newest first; a click opens one).

import { h, replace } from './dom.js';
import { query } from './api.js';
import { MessageResults } from './results.js';

/** Participants offered at once (rooms can be big). */
const OFFERED = 8;
/** Groups this small have every member's name looked up when the list opens. */
const LOOKED_UP_ALL = 50;
const LOOKUP_DELAY_MS = 250;
const EXCERPT_CHARS = 140;

/**
 * A mention as written (as the server reads it): `@` at the start or after a
 * character that cannot end a username, then 3–32 username characters.
 */
const WRITTEN = /(?<![A-Za-z0-9_.\-@])@([A-Za-z0-9_.-]+)/g;
/** `@` and what follows it up to the caret, while a name is being typed. */
const TYPING = /(?:^|[^A-Za-z0-9_.\-@])@([A-Za-z0-9_.-]{0,32})$/;

/** Whether `m` (someone else's) names me. */
export function mentionsMe(store, m) {
  return m.sender_id !== store.me.id && !m.deleted && !!m.mentions?.includes(store.me.id);
}

/**
 * The text of `m` as nodes: each `@name` of someone it mentions in a
 * `span.mention` (`mention mention-me` for me; `.me` is the sidebar's),
 * everything else as text. Names not known yet are looked up (the view
 * draws again when they arrive).
 */
export function mentionedText(store, m, text = m.content || '') {
  const byName = new Map();
  for (const id of m.mentions || []) {
    const user = store.users.known(id);
    if (user) byName.set(user.username.toLowerCase(), id);
    else store.loadUser(id);
  }
  if (byName.size === 0 || !text.includes('@')) return [text];
  const nodes = [];
  let from = 0;
  for (const match of text.matchAll(WRITTEN)) {
    const whole = match[1].toLowerCase();
    // `@bob.` names `bob.` if there is such a user, else `bob` (a sentence ends).
    const trimmed = whole.replace(/[.-]+$/, '');
    const name = byName.has(whole) ? whole : byName.has(trimmed) ? trimmed : null;
    if (!name) continue;
    const id = byName.get(name);
    const end = match.index + 1 + name.length;
    if (match.index > from) nodes.push(text.slice(from, match.index));
    nodes.push(h('span', { class: id === store.me.id ? 'mention mention-me' : 'mention', dataset: { user: id } }, text.slice(match.index, end)));
    from = end;
  }
  if (from < text.length) nodes.push(text.slice(from));
  return nodes;
}

/**
 * The composer's `@` list: participants of the open conversation whose
 * username starts with (then contains) what follows the `@` before the
 * caret, at most OFFERED. Names come from the profiles the page knows; in a
 * big room the user search fills in participants not known yet.
 * Arrows move, Enter or Tab (or a click) insert `@username `, Escape closes.
 */
export class MentionPicker {
  /** `input`: the composer's textarea; `conversationId()`: the open conversation; `onPicked()`: after an insert. */
  constructor(app, input, conversationId, onPicked) {
    this.app = app;
    this.store = app.store;
    this.input = input;
    this.conversationId = conversationId;
    this.onPicked = onPicked;
    this.list = h('ul', { class: 'mention-suggestions', id: 'mention-suggestions', role: 'listbox', 'aria-label': 'People to mention', hidden: true });
    this.offered = [];
    this.active = 0;
    /** Where the `@` being completed starts, and what follows it (lower case). */
    this.at = -1;
    this.prefix = '';
    /** User searches already asked, per conversation and prefix. */
    this.asked = new Set();
    this.timer = null;
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', this.list.id);
    input.addEventListener('blur', () => this.close());
  }

  get open() {
    return !this.list.hidden;
  }

  /** After typing or a caret move: opens, narrows or closes the list. */
  update() {
    const { input } = this;
    const caret = input.selectionStart;
    const typing = caret === input.selectionEnd ? TYPING.exec(input.value.slice(0, caret)) : null;
    const c = this.store.conversations.get(this.conversationId());
    if (!typing || !c) return this.close();
    const prefix = typing[1].toLowerCase();
    if (prefix !== this.prefix || this.at < 0) this.active = 0;
    this.at = caret - typing[1].length - 1;
    this.prefix = prefix;
    this.render(c);
    this.#lookUp(c);
    return undefined;
  }

  /** Participants (not me) matching the prefix, known by name: those starting with it first. */
  candidates(c) {
    const starting = [];
    const containing = [];
    for (const id of c.participants) {
      if (id === this.store.me.id) continue;
      const user = this.store.users.known(id);
      if (!user) continue;
      const name = user.username.toLowerCase();
      if (name.startsWith(this.prefix)) starting.push(user);
      else if (this.prefix && name.includes(this.prefix)) containing.push(user);
    }
    const byName = (a, b) => a.username.localeCompare(b.username);
    return starting.sort(byName).concat(containing.sort(byName)).slice(0, OFFERED);
  }

  render(c = this.store.conversations.get(this.conversationId())) {
    if (!c || this.at < 0) return;
    this.offered = this.candidates(c);
    if (this.offered.length === 0) {
      this.list.hidden = true;
      this.input.removeAttribute('aria-activedescendant');
      return;
    }
    this.active = Math.min(this.active, this.offered.length - 1);
    replace(this.list, this.offered.map((user, i) => h('li', {
      role: 'option', id: `mention-option-${i}`, class: 'mention-option', 'aria-selected': String(i === this.active),
      dataset: { user: user.id },
      // The composer keeps the focus (and the caret) through the click.
      onmousedown: (e) => e.preventDefault(),
      onclick: () => this.pick(user),
    }, user.username)));
    this.list.hidden = false;
    this.input.setAttribute('aria-activedescendant', `mention-option-${this.active}`);
  }

  /** Names of participants not known here: all of them in a small group, else a user search by the prefix. */
  #lookUp(c) {
    const unknown = c.participants.filter((id) => !this.store.users.known(id));
    if (unknown.length === 0) return;
    if (c.participants.length <= LOOKED_UP_ALL) {
      const key = `${c.id} all`;
      if (this.asked.has(key)) return;
      this.asked.add(key);
      Promise.all(unknown.map((id) => this.store.loadUser(id))).then(() => { if (this.open || this.at >= 0) this.render(); });
      return;
    }
    if (!this.prefix || this.offered.length >= OFFERED) return;
    clearTimeout(this.timer);
    const prefix = this.prefix;
    const key = `${c.id} ${prefix}`;
    if (this.asked.has(key)) return;
    this.timer = setTimeout(async () => {
      this.asked.add(key);
      let page;
      try {
        page = await this.app.api.get(`/api/v1/users${query({ search: prefix, limit: 20 })}`);
      } catch {
        this.asked.delete(key);
        return;
      }
      const now = this.store.conversations.get(c.id);
      if (!now) return;
      const members = new Set(now.participants);
      for (const user of page.items) if (members.has(user.id)) this.store.putUser(user);
      if (this.at >= 0 && this.prefix.startsWith(prefix) && this.conversationId() === c.id) this.render(now);
    }, LOOKUP_DELAY_MS);
  }

  /** The composer's keys while the list is open; true when one was used here. */
  keydown(e) {
    if (!this.open || e.isComposing) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      const n = this.offered.length;
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.render();
    } else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
      this.pick(this.offered[this.active]);
    } else if (e.key === 'Escape') {
      this.close();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  /** Replaces the `@prefix` being typed with `@username `. */
  pick(user) {
    if (!user || this.at < 0) return;
    const { input } = this;
    const before = input.value.slice(0, this.at);
    const after = input.value.slice(input.selectionEnd);
    const inserted = `@${user.username} `;
    input.value = before + inserted + after.replace(/^ /, '');
    const caret = before.length + inserted.length;
    input.setSelectionRange(caret, caret);
    this.close();
    input.focus();
    this.onPicked();
  }

  close() {
    clearTimeout(this.timer);
    this.at = -1;
    this.prefix = '';
    this.offered = [];
    this.list.hidden = true;
    this.input.removeAttribute('aria-activedescendant');
  }
}

/** The text of a mention, cut to an excerpt, with the mentions marked. */
function excerptOf(store, m) {
  if (!m.content) return m.attachments?.length ? 'Attachment' : '';
  const chars = [...m.content];
  const text = chars.length > EXCERPT_CHARS ? `${chars.slice(0, EXCERPT_CHARS - 1).join('')}…` : m.content;
  return mentionedText(store, m, text);
}

/** Messages that mention me, newest first, paged; a click opens the conversation at one. */
export function mentionsDialog(app) {
  let dlg = null;
  const results = new MessageResults(app, {
    label: 'Messages that mention you',
    empty: 'Nobody has mentioned you yet.',
    excerpt: (m) => excerptOf(app.store, m),
    onPick: (m) => {
      dlg.close();
      app.openAt(m.conversation_id, m.seq);
    },
  });
  dlg = app.dialog('Mentions', results.element);
  results.show((cursor) => app.api.get(`/api/v1/mentions${query({ limit: 20, cursor })}`));
}
