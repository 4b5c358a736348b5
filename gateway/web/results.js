// Messages from across conversations (mentions, search results): one row
// each with its sender, conversation, an excerpt and the time, a page at a
// time with "More"; a click on one opens its conversation at that message.

import { h, replace, shortTime, toast } from './dom.js';

/** Conversations not in the list yet, looked up per page (the rest show without a name). */
const LOOKED_UP = 10;

export class MessageResults {
  /**
   * `label` names the list, `empty` says there is nothing, `excerpt(m)` gives
   * a message's text as nodes, `onPick(m)` opens one, `onError(e)` shows
   * why a page could not be loaded (a toast if not given).
   */
  constructor(app, { label, empty, excerpt, onPick, onError }) {
    this.app = app;
    this.empty = empty;
    this.excerpt = excerpt;
    this.onPick = onPick;
    this.onError = onError || ((e) => toast(e.message || 'Something went wrong.'));
    this.list = h('ol', { class: 'results', 'aria-label': label });
    this.moreButton = h('button', { type: 'button', class: 'quiet results-more', hidden: true, onclick: () => this.more() }, 'More');
    this.element = h('div', { class: 'results-box' }, this.list, this.moreButton);
    this.load = null;
    this.cursor = null;
    /** Counts what was asked: an answer to an older question is dropped. */
    this.asked = 0;
  }

  /** Shows the first page `load(cursor)` gives (and later ones on "More"). */
  show(load) {
    this.asked += 1;
    this.load = load;
    this.cursor = null;
    this.moreButton.hidden = true;
    replace(this.list, h('li', { class: 'empty', role: 'status' }, 'Loading…'));
    return this.#page(this.asked, null);
  }

  /** Empties the list (nothing asked). */
  clear() {
    this.asked += 1;
    this.cursor = null;
    this.moreButton.hidden = true;
    replace(this.list);
  }

  more() {
    if (!this.cursor || this.moreButton.disabled) return Promise.resolve();
    this.moreButton.disabled = true;
    return this.#page(this.asked, this.cursor).finally(() => { this.moreButton.disabled = false; });
  }

  async #page(asked, cursor) {
    let page;
    try {
      page = await this.load(cursor);
      await this.#names(page.items);
    } catch (e) {
      if (asked !== this.asked) return;
      if (!cursor) replace(this.list);
      this.onError(e);
      return;
    }
    if (asked !== this.asked) return;
    if (!cursor) replace(this.list);
    if (!cursor && page.items.length === 0) this.list.append(h('li', { class: 'empty' }, this.empty));
    this.list.append(...page.items.map((m) => this.row(m)));
    this.cursor = page.next_cursor;
    this.moreButton.hidden = !this.cursor;
  }

  /** Looks up, before the rows are drawn, the senders and conversations they name. */
  async #names(items) {
    const store = this.app.store;
    const unknown = [...new Set(items.map((m) => m.conversation_id))].filter((id) => !store.conversations.has(id));
    await Promise.all(unknown.slice(0, LOOKED_UP).map((id) => store.fetchConversation(id).catch(() => null)));
    const users = new Set(items.map((m) => m.sender_id));
    for (const m of items) {
      const partner = store.partnerOf(store.conversations.get(m.conversation_id));
      if (partner) users.add(partner);
    }
    await Promise.all([...users].map((id) => store.loadUser(id)));
  }

  row(m) {
    const store = this.app.store;
    const c = store.conversations.get(m.conversation_id);
    const sender = m.sender_id === store.me.id ? 'You' : store.userName(m.sender_id);
    return h('li', { class: 'result' },
      h('button', {
        type: 'button', class: 'result-item', dataset: { conversation: m.conversation_id, seq: m.seq },
        onclick: () => this.onPick(m),
      },
      h('span', { class: 'result-head' },
        h('strong', { class: 'result-sender' }, sender),
        h('span', { class: 'result-conversation' }, c ? `${c.type === 'room' ? '# ' : ''}${store.title(c)}` : 'Another conversation'),
        h('time', { datetime: m.created_at, title: new Date(m.created_at).toLocaleString() }, shortTime(m.created_at))),
      h('span', { class: 'result-excerpt' }, this.excerpt(m))));
  }
}
