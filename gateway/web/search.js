// Searching messages: the dialog that asks `GET /search/messages` (in every
// conversation, or only the open one) and lists what it finds, newest
// first, with the words searched for marked; a click opens the
// conversation at that message.

import { h } from './dom.js';
import { query } from './api.js';
import { MessageResults } from './results.js';

const EXCERPT_CHARS = 140;
/** Characters shown before the first match when the text is cut. */
const LEAD_CHARS = 30;

/** A character as search compares it: without accents, in lower case. */
function fold(char) {
  return char.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * A message's text as nodes, the words of `q` in it marked (`<mark>`,
 * compared without case or accents, as the server does), cut to an excerpt
 * around the first of them.
 */
export function emphasised(m, q) {
  if (!m.content) return m.attachments?.length ? 'Attachment' : '';
  const chars = [...m.content];
  // The folded text, and for each of its code units the character it came from.
  let folded = '';
  const from = [];
  chars.forEach((char, i) => {
    const f = fold(char);
    folded += f;
    for (let k = 0; k < f.length; k += 1) from.push(i);
  });
  const marked = new Array(chars.length).fill(false);
  for (const term of new Set(q.split(/\s+/).map((w) => [...w].map(fold).join('')).filter(Boolean))) {
    for (let at = folded.indexOf(term); at >= 0; at = folded.indexOf(term, at + term.length)) {
      for (let i = from[at]; i <= from[at + term.length - 1]; i += 1) marked[i] = true;
    }
  }
  let start = 0;
  let end = chars.length;
  if (chars.length > EXCERPT_CHARS) {
    const first = marked.indexOf(true);
    start = Math.max(0, Math.min(first < 0 ? 0 : first - LEAD_CHARS, chars.length - EXCERPT_CHARS));
    end = start + EXCERPT_CHARS;
  }
  const nodes = [];
  if (start > 0) nodes.push('…');
  for (let i = start; i < end;) {
    let j = i;
    while (j < end && marked[j] === marked[i]) j += 1;
    const text = chars.slice(i, j).join('');
    nodes.push(marked[i] ? h('mark', {}, text) : text);
    i = j;
  }
  if (end < chars.length) nodes.push('…');
  return nodes;
}

/**
 * The search dialog, searching for `q` at once if given; `scoped` ticks "In
 * this conversation" (offered while a conversation is open). The server's
 * refusal (a query too long, say) shows in the dialog.
 */
export function searchDialog(app, { q = '', scoped = false } = {}) {
  const store = app.store;
  const c = store.conversations.get(app.conversation.id);
  const input = h('input', {
    type: 'search', 'aria-label': 'Search for', placeholder: 'Words to find', value: q, maxlength: 200, autocomplete: 'off',
  });
  const scope = c ? h('input', { type: 'checkbox', checked: scoped, onchange: () => run() }) : null;
  const error = h('p', { class: 'form-error', role: 'alert' });
  let dlg = null;
  let searched = '';
  const results = new MessageResults(app, {
    label: 'Messages found',
    empty: 'No messages match.',
    excerpt: (m) => emphasised(m, searched),
    onPick: (m) => {
      dlg.close();
      app.openAt(m.conversation_id, m.seq);
    },
    onError: (e) => { error.textContent = e.message || 'The search failed.'; },
  });
  const run = () => {
    const text = input.value.trim();
    error.textContent = '';
    if (!text) {
      results.clear();
      input.focus();
      return;
    }
    searched = text;
    const conversationId = scope?.checked ? c.id : undefined;
    results.show((cursor) => app.api.get(
      `/api/v1/search/messages${query({ q: text, conversation_id: conversationId, limit: 20, cursor })}`,
    ));
  };
  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
    h('div', { class: 'search-row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Search')),
    scope ? h('label', { class: 'check' }, scope, 'In this conversation', h('span', { class: 'hint' }, ` (${store.title(c)})`)) : null);
  dlg = app.dialog('Search results', form, error, results.element);
  if (q.trim()) run();
  else input.focus();
}
