// The screens: signing in, the sidebar (conversations and rooms, unread and
// mention badges, the message search box), dialogs for new chats, groups,
// conversation settings, profiles (block, unblock) and the blocked users.
// The open conversation itself is in conversation.js; the Mentions dialog in
// mentions.js, the search results in search.js.

import { ago, h, replace, reconcile, shortTime, toast } from './dom.js';
import { query } from './api.js';
import { ConversationView, dot, presenceLine } from './conversation.js';
import { mentionsDialog } from './mentions.js';
import { searchDialog } from './search.js';

/** A short name for a browser or client from its `User-Agent`. */
function deviceName(userAgent) {
  if (!userAgent) return 'Unknown device';
  const browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox'
    : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome' : /Safari\//.test(userAgent) ? 'Safari' : null;
  const system = /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS'
    : /Windows/.test(userAgent) ? 'Windows' : /Mac OS X/.test(userAgent) ? 'macOS' : /Linux/.test(userAgent) ? 'Linux' : null;
  if (browser && system) return `${browser} on ${system}`;
  return userAgent.length > 60 ? `${userAgent.slice(0, 57)}…` : userAgent;
}

/** Shows an error the way users read it; true when there was one. */
export function report(error) {
  if (!error) return false;
  if (error.name === 'TimeoutError') toast('ChatterBox did not answer in time. Try again.');
  else if (error instanceof TypeError && /fetch/i.test(error.message)) toast('ChatterBox cannot be reached. Check your connection.');
  else toast(error.message || 'Something went wrong.');
  return true;
}

/** Runs `task`, showing its error; returns its result or undefined. */
export async function attempt(task) {
  try {
    return await task();
  } catch (e) {
    report(e);
    return undefined;
  }
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/** The sign-in / sign-up screen. Resolves once signed in. */
export function authScreen(root, session) {
  return new Promise((resolve) => {
    let mode = 'login';
    const error = h('p', { class: 'form-error', role: 'alert' });
    const username = h('input', { name: 'username', autocomplete: 'username', minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9_.\\-]+', required: true });
    const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true });
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', minlength: 8, maxlength: 128, required: true });
    const usernameField = field('Username', username);
    const submit = h('button', { type: 'submit', class: 'primary' });
    const heading = h('h1', {});
    const switcher = h('button', { type: 'button', class: 'link' });
    const render = () => {
      heading.textContent = mode === 'login' ? 'Sign in to ChatterBox' : 'Create your ChatterBox account';
      submit.textContent = mode === 'login' ? 'Sign in' : 'Sign up';
      switcher.textContent = mode === 'login' ? 'New here? Create an account' : 'Have an account? Sign in';
      usernameField.hidden = mode === 'login';
      username.required = mode === 'register';
      password.autocomplete = mode === 'login' ? 'current-password' : 'new-password';
      error.textContent = '';
    };
    switcher.addEventListener('click', () => {
      mode = mode === 'login' ? 'register' : 'login';
      render();
      (mode === 'login' ? email : username).focus();
    });
    const form = h('form', {
      class: 'auth-form',
      'aria-labelledby': 'auth-heading',
      async onsubmit(e) {
        e.preventDefault();
        submit.disabled = true;
        error.textContent = '';
        try {
          if (mode === 'login') await session.login(email.value.trim(), password.value);
          else await session.register(username.value.trim(), email.value.trim(), password.value);
          resolve();
        } catch (err) {
          error.textContent = err.message;
        } finally {
          submit.disabled = false;
        }
      },
    }, heading, usernameField, field('Email', email), field('Password', password), error, submit, switcher);
    heading.id = 'auth-heading';
    render();
    replace(root, h('main', { class: 'auth' }, h('div', { class: 'brand' }, h('img', { src: '/app/icon.svg', alt: '', width: 40, height: 40 }), 'ChatterBox'), form));
    email.focus();
  });
}

function preview(store, m) {
  if (!m) return 'No messages yet';
  const who = m.sender_id === store.me.id ? 'You: ' : '';
  if (m.deleted) return `${who}Message deleted`;
  if (m.type === 'image' && !m.content) return `${who}Photo`;
  if (m.type === 'file' && !m.content) return `${who}File: ${m.attachments?.[0]?.filename || 'attachment'}`;
  return who + m.content;
}

/** The signed-in application. */
export class App {
  constructor(root, { session, api, store, socket, onSignOut }) {
    this.root = root;
    this.session = session;
    this.api = api;
    this.store = store;
    this.socket = socket;
    this.onSignOut = onSignOut;
    this.tab = 'chats';
    this.roomSearch = '';
    this.roomQuery = 0;
    /** Conversations this user is leaving (their `conversation.left` is expected). */
    this.leaving = new Set();
    /** Whom I block (ids), once asked. */
    this.blocked = null;
    this.build();
    this.conversation = new ConversationView(this.pane, this);
    // Known before a direct chat is opened, so its header can say so.
    this.blockedUsers().then(() => this.conversation.renderHeader(), () => {});
    store.addEventListener('changed', (e) => this.changed(e.detail));
  }

  build() {
    const me = this.store.me;
    this.status = h('select', { 'aria-label': 'Your status', onchange: () => this.setStatus(this.status.value) },
      h('option', { value: 'online' }, 'Online'), h('option', { value: 'away' }, 'Away'), h('option', { value: 'offline' }, 'Appear offline'));

    this.chatsTab = h('button', { role: 'tab', id: 'tab-chats', 'aria-controls': 'sidebar-body', onclick: () => this.showTab('chats') }, 'Chats');
    this.roomsTab = h('button', { role: 'tab', id: 'tab-rooms', 'aria-controls': 'sidebar-body', onclick: () => this.showTab('rooms') }, 'Rooms');
    this.sidebarBody = h('div', { class: 'sidebar-body', id: 'sidebar-body', role: 'tabpanel' });
    this.list = h('ul', { class: 'conversation-list', 'aria-label': 'Conversations' });
    this.pane = h('main', { class: 'pane', 'aria-label': 'Conversation' });
    this.banner = h('div', { class: 'banner', role: 'status', hidden: true });
    this.searchInput = h('input', {
      type: 'search', 'aria-label': 'Search messages', placeholder: 'Search messages', maxlength: 200, autocomplete: 'off',
    });
    const search = h('form', {
      class: 'message-search', id: 'message-search', role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        if (this.searchInput.value.trim()) this.searchDialog(this.searchInput.value);
      },
    }, this.searchInput);
    this.shell = h('div', { class: 'shell', dataset: { view: 'list' } },
      h('aside', { class: 'sidebar', 'aria-label': 'Navigation' },
        h('header', { class: 'sidebar-header' },
          h('div', { class: 'me' }, h('img', { src: '/app/icon.svg', alt: '', width: 28, height: 28 }),
            h('span', { class: 'me-name', title: me.email || '' }, me.username)),
          this.status,
          h('button', { type: 'button', class: 'quiet', onclick: () => this.devicesDialog() }, 'Devices'),
          h('button', { type: 'button', class: 'quiet', onclick: () => this.mentionsDialog() }, 'Mentions'),
          h('button', { type: 'button', class: 'quiet', onclick: () => this.blockedDialog() }, 'Blocked'),
          h('button', { type: 'button', class: 'quiet', onclick: () => this.onSignOut() }, 'Sign out')),
        search,
        h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Sections' }, this.chatsTab, this.roomsTab),
        this.sidebarBody),
      this.pane, this.banner);
    replace(this.root, this.shell);
    this.showTab('chats');
  }

  /** What presence says of me once connected (a status chosen earlier stays chosen). */
  async syncStatus() {
    const me = this.store.me.id;
    const answer = await this.api.get(`/api/v1/presence?user_ids=${encodeURIComponent(me)}`).catch(() => null);
    const mine = answer?.items[0]?.status;
    if (mine && document.activeElement !== this.status) this.status.value = mine;
  }

  connection(state) {
    this.banner.hidden = state === 'online';
    this.banner.textContent = state === 'connecting' ? 'Connecting…' : 'Offline. Reconnecting…';
    this.shell.dataset.connection = state;
  }

  async setStatus(status) {
    await attempt(() => this.api.put('/api/v1/presence', { status }));
  }

  showTab(tab) {
    this.tab = tab;
    this.chatsTab.setAttribute('aria-selected', String(tab === 'chats'));
    this.roomsTab.setAttribute('aria-selected', String(tab === 'rooms'));
    this.sidebarBody.setAttribute('aria-labelledby', `tab-${tab}`);
    if (tab === 'chats') this.renderChats();
    else this.renderRooms();
  }

  changed({ what, id }) {
    if (['conversations', 'conversation', 'presence', 'user', 'messages', 'reads'].includes(what) && this.tab === 'chats') {
      this.renderList();
    }
    if (this.conversation.id && !this.store.conversations.has(this.conversation.id)) {
      // Removed by an admin (or left on another device): nothing more to say there.
      if (!this.leaving.has(this.conversation.id)) toast('You are no longer in that conversation.', 'info');
      this.back();
      return;
    }
    if (what === 'presence' && id === this.store.me.id && document.activeElement !== this.status) {
      this.status.value = this.store.presenceOf(id).status;
    }
    this.conversation.changed(what, id);
  }

  // ---- chats ----

  renderChats() {
    replace(this.sidebarBody,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => this.newChatDialog() }, 'New chat'),
        h('button', { type: 'button', onclick: () => this.newGroupDialog() }, 'New group')),
      this.list);
    this.renderList();
  }

  renderList() {
    const store = this.store;
    const items = store.sortedConversations().map((c) => {
      const partner = store.partnerOf(c);
      const unread = c.unread_count || 0;
      const mentions = c.mention_count || 0;
      const open = store.openId === c.id;
      const version = JSON.stringify([store.title(c), preview(store, c.last_message), c.last_message?.created_at, unread, mentions, open,
        partner && store.presenceOf(partner).status]);
      return { key: c.id, version, render: () => h('li', {},
        h('button', {
          type: 'button', class: `conversation-item${open ? ' open' : ''}`, 'aria-current': open ? 'true' : false,
          dataset: { conversation: c.id }, onclick: () => this.open(c.id),
        },
        partner ? dot(store, partner) : h('span', { class: `kind kind-${c.type}`, 'aria-hidden': 'true' }, c.type === 'room' ? '#' : '●●'),
        h('span', { class: 'item-main' },
          h('span', { class: 'item-title' }, store.title(c)),
          h('span', { class: 'item-preview' }, preview(store, c.last_message))),
        h('span', { class: 'item-side' },
          h('time', { datetime: c.last_message?.created_at || '' }, shortTime(c.last_message?.created_at)),
          h('span', { class: 'item-badges' },
            mentions > 0 ? h('span', { class: 'mention-badge', 'aria-label': mentions === 1 ? '1 mention' : `${mentions} mentions` },
              mentions === 1 ? '@' : `@${mentions > 99 ? '99+' : mentions}`) : null,
            unread > 0 ? h('span', { class: 'badge', 'aria-label': `${unread} unread` }, unread > 99 ? '99+' : unread) : null)))) };
    });
    if (items.length === 0) {
      items.push({ key: 'empty', version: '', render: () => h('li', { class: 'empty' }, 'No conversations yet. Start one with “New chat”, or join a room.') });
    }
    if (store.listCursor) {
      items.push({ key: 'more', version: '', render: () => h('li', {}, h('button', { type: 'button', class: 'quiet', onclick: () => attempt(() => store.loadMoreConversations()) }, 'More conversations')) });
    }
    reconcile(this.list, items);
  }

  async open(id) {
    // A room joined long ago may be past the first page of the list.
    if (!this.store.conversations.has(id) && !(await attempt(() => this.store.fetchConversation(id)))) return;
    this.shell.dataset.view = 'conversation';
    const opening = this.conversation.open(id);
    this.renderList();
    await opening;
  }

  /**
   * Opens a conversation at one of its messages (from a mention, a search
   * result): loaded down to it, scrolled to it and briefly highlighted.
   */
  async openAt(id, seq) {
    await this.open(id);
    if (this.conversation.id === id) await this.conversation.jumpTo(seq);
  }

  back() {
    this.shell.dataset.view = 'list';
    this.conversation.close();
    this.renderList();
  }

  // ---- dialogs ----

  dialog(title, ...content) {
    const close = h('button', { type: 'button', class: 'quiet close', 'aria-label': 'Close', onclick: () => dlg.close() }, '✕');
    const dlg = h('dialog', { class: 'dialog', 'aria-label': title }, h('header', {}, h('h2', {}, title), close), ...content);
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    return dlg;
  }

  /** Where this account is signed in; any other device can be signed out (its session ends everywhere at once). */
  async devicesDialog() {
    const list = h('ul', { class: 'session-list', 'aria-label': 'Signed-in devices' });
    this.dialog('Devices', h('p', { class: 'hint' }, 'Where you are signed in. Signing a device out ends its session at once.'), list);
    const render = async () => {
      const { items } = await this.api.get('/api/v1/auth/sessions');
      replace(list, ...items.map((s) => {
        const name = deviceName(s.user_agent);
        const end = async () => {
          await attempt(() => this.api.delete(`/api/v1/auth/sessions/${encodeURIComponent(s.id)}`));
          await attempt(render);
        };
        return h('li', { class: 'session-item', dataset: { current: String(s.current) } },
          h('div', { class: 'session-text' },
            h('strong', {}, name), s.current ? h('span', { class: 'badge' }, 'This device') : null,
            h('p', { class: 'hint' }, `${s.ip || 'unknown address'} · signed in ${ago(s.created_at)} · active ${ago(s.last_used_at)}`)),
          s.current ? null : h('button', { type: 'button', class: 'quiet', 'aria-label': `Sign out ${name}`, onclick: end }, 'Sign out'));
      }));
    };
    await attempt(render);
  }

  /** Messages that mention me (mentions.js). */
  mentionsDialog() {
    mentionsDialog(this);
  }

  /** Searches messages for `q` (search.js); `scoped`: in the open conversation only. */
  searchDialog(q = '', scoped = false) {
    searchDialog(this, { q, scoped });
  }

  /** Whom I block (every page, asked once per sign-in). */
  async blockedUsers() {
    if (!this.blocked) {
      // One request at a time: a change made meanwhile is not overwritten by a late answer.
      this.blockedLoad ||= this.fetchBlocked().finally(() => { this.blockedLoad = null; });
      const fresh = await this.blockedLoad;
      this.blocked ||= fresh;
    }
    return this.blocked;
  }

  /** Every page of `/users/me/blocks`, as a set of ids. */
  async fetchBlocked() {
    const ids = new Set();
    let cursor = null;
    do {
      const page = await this.api.get(`/api/v1/users/me/blocks${query({ limit: 100, cursor })}`);
      for (const u of page.items) {
        ids.add(u.id);
        this.store.putUser(u);
      }
      cursor = page.next_cursor;
    } while (cursor);
    return ids;
  }

  /** Blocks or unblocks a user; true once done. */
  async setBlocked(userId, block) {
    const path = `/api/v1/users/${encodeURIComponent(userId)}/block`;
    const done = await attempt(async () => {
      await (block ? this.api.post(path) : this.api.delete(path));
      return true;
    });
    if (!done) return false;
    const blocked = await attempt(() => this.blockedUsers());
    if (blocked) {
      if (block) blocked.add(userId);
      else blocked.delete(userId);
    }
    this.conversation.renderHeader();
    return true;
  }

  /** Someone's profile: name, presence, since when; block or unblock them. */
  profileDialog(userId) {
    const store = this.store;
    const body = h('div', { class: 'profile' });
    const dlg = this.dialog('Profile', body);
    const render = async () => {
      const user = await attempt(() => this.api.get(`/api/v1/users/${encodeURIComponent(userId)}`));
      if (!user) return dlg.close();
      store.putUser(user);
      await store.watchPresenceOf([userId]);
      const blocked = !!(await attempt(() => this.blockedUsers()))?.has(userId);
      const toggle = h('button', {
        type: 'button', class: blocked ? '' : 'danger',
        onclick: async () => {
          toggle.disabled = true;
          await this.setBlocked(userId, !blocked);
          await render();
        },
      }, blocked ? 'Unblock' : 'Block');
      return replace(body,
        h('p', { class: 'profile-name' }, dot(store, userId), h('strong', {}, user.username)),
        h('p', { class: 'hint presence-text' }, presenceLine(store, userId)),
        h('p', { class: 'hint' }, `Member since ${new Date(user.created_at).toLocaleDateString()}`),
        blocked
          ? h('p', { class: 'hint', dataset: { blocked: 'true' } }, 'Blocked: neither of you can start a direct chat or write in yours. Groups and rooms are unaffected.')
          : h('p', { class: 'hint' }, 'Blocking stops direct chats between you both ways; they are not told.'),
        userId === store.me.id ? null : toggle);
    };
    render();
  }

  /** The users I block, each with an Unblock button. */
  blockedDialog() {
    const list = h('ul', { class: 'members', 'aria-label': 'Blocked users' });
    this.dialog('Blocked users', list);
    const render = async () => {
      // Asked afresh (another device may have changed it); kept if that fails.
      const fresh = await attempt(() => this.fetchBlocked());
      if (fresh) this.blocked = fresh;
      const blocked = this.blocked;
      if (!blocked) return;
      replace(list, blocked.size === 0 ? h('li', { class: 'empty' }, 'You block nobody.') : [...blocked].map((id) =>
        h('li', { class: 'member' }, h('span', { class: 'member-name' }, this.store.userName(id)),
          h('button', {
            type: 'button', class: 'quiet', 'aria-label': `Unblock ${this.store.userName(id)}`,
            onclick: async () => { if (await this.setBlocked(id, false)) await render(); },
          }, 'Unblock'))));
    };
    render();
  }

  /** A username search: `pick(user)` for a chosen result. */
  userSearch(label, pick) {
    const results = h('ul', { class: 'search-results', 'aria-label': 'Matching users' });
    let timer = null;
    const input = h('input', {
      type: 'search', 'aria-label': label, placeholder: 'Search by username', autocomplete: 'off',
      // Enter picks nothing (and must not submit a surrounding form).
      onkeydown: (e) => { if (e.key === 'Enter') e.preventDefault(); },
      oninput: () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const prefix = input.value.trim();
          if (!prefix) return replace(results);
          const page = await attempt(() => this.api.get(`/api/v1/users${query({ search: prefix, limit: 10 })}`));
          if (!page || input.value.trim() !== prefix) return undefined;
          const others = page.items.filter((u) => u.id !== this.store.me.id);
          others.forEach((u) => this.store.putUser(u));
          return replace(results, others.length === 0 ? h('li', { class: 'empty' }, 'Nobody by that name.') : others.map((u) =>
            h('li', {}, h('button', { type: 'button', class: 'user-result', dataset: { user: u.id }, onclick: () => pick(u) }, u.username))));
        }, 250);
      },
    });
    return { element: h('div', { class: 'user-search' }, input, results), input };
  }

  newChatDialog() {
    const search = this.userSearch('Find a user', async (user) => {
      const c = await attempt(() => this.api.post('/api/v1/conversations', { type: 'direct', participant_ids: [user.id] }));
      if (!c) return;
      dlg.close();
      this.store.putConversation(c);
      this.showTab('chats');
      await this.open(c.id);
    });
    const dlg = this.dialog('New chat', h('p', {}, 'Start a direct conversation.'), search.element);
    search.input.focus();
  }

  newGroupDialog() {
    const chosen = new Map();
    const chips = h('ul', { class: 'chips', 'aria-label': 'Members to add' });
    const renderChips = () => replace(chips, [...chosen.values()].map((u) => h('li', {}, u.username,
      h('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${u.username}`, onclick: () => { chosen.delete(u.id); renderChips(); } }, '✕'))));
    const name = h('input', { required: true, maxlength: 100, autocomplete: 'off' });
    const search = this.userSearch('Add members', (u) => { chosen.set(u.id, u); renderChips(); });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create group');
    const form = h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        create.disabled = true;
        const c = await attempt(() => this.api.post('/api/v1/conversations', { type: 'group', name: name.value.trim(), participant_ids: [...chosen.keys()] }));
        create.disabled = false;
        if (!c) return;
        dlg.close();
        this.store.putConversation(c);
        await this.open(c.id);
      },
    }, field('Group name', name), search.element, chips, create);
    const dlg = this.dialog('New group', form);
    name.focus();
  }

  /** Name, description, members and admins of a group or room. */
  settingsDialog(id) {
    const store = this.store;
    const body = h('div', { class: 'settings' });
    const dlg = this.dialog('Conversation settings', body);
    const render = async () => {
      const c = store.conversations.get(id);
      if (!c) return dlg.close();
      const admin = store.isAdmin(c);
      const name = h('input', { value: c.name || '', maxlength: 100, disabled: !admin, required: true });
      const description = h('textarea', { rows: 2, maxlength: 500, disabled: !admin }, c.description || '');
      // The first 50 (lookups are one call each, a few at a time).
      const members = c.participants.slice(0, 50);
      await Promise.all(members.map((m) => store.loadUser(m)));
      await store.watchPresenceOf(members);
      const rows = members.map((m) => h('li', { class: 'member' }, dot(store, m),
        m === store.me.id ? h('span', { class: 'member-name' }, store.userName(m))
          : h('button', { type: 'button', class: 'link member-name', onclick: () => this.profileDialog(m) }, store.userName(m)),
        c.admins.includes(m) ? h('span', { class: 'tag' }, 'admin') : null,
        admin && m !== store.me.id && c.type !== 'room' && !c.admins.includes(m)
          ? h('button', { type: 'button', class: 'quiet', onclick: () => change(() => this.api.post(`/api/v1/conversations/${id}/admins`, { user_id: m })) }, 'Make admin') : null,
        admin && m !== store.me.id
          ? h('button', { type: 'button', class: 'quiet danger', onclick: () => change(() => this.api.delete(`/api/v1/conversations/${id}/participants/${m}`)) }, 'Remove') : null));
      const add = admin && c.type === 'group' ? this.userSearch('Add a member', (u) => change(() => this.api.post(`/api/v1/conversations/${id}/participants`, { user_id: u.id }))) : null;
      replace(body,
        h('form', {
          onsubmit: (e) => {
            e.preventDefault();
            change(() => this.api.patch(`/api/v1/conversations/${id}`, { name: name.value.trim(), description: description.value }));
          },
        }, field('Name', name), field('Description', description), admin ? h('button', { type: 'submit' }, 'Save') : h('p', { class: 'hint' }, 'Only admins can change these.')),
        h('h3', {}, `Members (${c.member_count ?? c.participants.length})`),
        h('ul', { class: 'members' }, rows),
        add ? h('div', {}, h('h3', {}, 'Add a member'), add.element) : null,
        h('button', { type: 'button', class: 'danger', onclick: () => this.leave(c).then((left) => left && dlg.close()) }, c.type === 'room' ? 'Leave room' : 'Leave group'));
    };
    const change = async (task) => {
      await attempt(task);
      await attempt(() => store.fetchConversation(id));
      await render();
    };
    render();
  }

  async leave(c) {
    if (!window.confirm(`Leave ${this.store.title(c)}?`)) return false;
    const path = c.type === 'room'
      ? `/api/v1/rooms/${c.id}/leave`
      : `/api/v1/conversations/${c.id}/participants/${this.store.me.id}`;
    this.leaving.add(c.id);
    const done = await attempt(async () => { await this.api.request(c.type === 'room' ? 'POST' : 'DELETE', path); return true; });
    if (done) {
      if (this.conversation.id === c.id) this.back();
      this.store.removeConversation(c.id);
    }
    setTimeout(() => this.leaving.delete(c.id), 10_000);
    return !!done;
  }

  // ---- rooms ----

  renderRooms() {
    const results = h('ul', { class: 'room-list', 'aria-label': 'Public rooms' });
    let timer = null;
    const search = h('input', {
      type: 'search', 'aria-label': 'Search rooms', placeholder: 'Search rooms', value: this.roomSearch,
      oninput: () => { clearTimeout(timer); timer = setTimeout(() => { this.roomSearch = search.value.trim(); this.loadRooms(results); }, 250); },
    });
    const name = h('input', { required: true, maxlength: 100, autocomplete: 'off' });
    const description = h('input', { maxlength: 500, autocomplete: 'off' });
    const create = h('details', { class: 'create-room' }, h('summary', {}, 'Create a room'),
      h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          const room = await attempt(() => this.api.post('/api/v1/rooms', { name: name.value.trim(), description: description.value.trim() }));
          if (!room) return;
          this.store.putConversation(room);
          name.value = '';
          description.value = '';
          this.loadRooms(results);
          this.open(room.id);
        },
      }, field('Room name', name), field('Description', description), h('button', { type: 'submit' }, 'Create')));
    replace(this.sidebarBody, h('div', { class: 'actions' }, search), create, results);
    this.loadRooms(results);
  }

  async loadRooms(results) {
    const asked = ++this.roomQuery;
    const page = await attempt(() => this.api.get(`/api/v1/rooms${query({ search: this.roomSearch, limit: 50 })}`));
    // A slower, older search must not overwrite a newer one.
    if (!page || asked !== this.roomQuery) return;
    const rows = page.items.map((room) => {
      const member = this.store.conversations.has(room.id) || room.participants?.includes(this.store.me.id);
      return h('li', { class: 'room', dataset: { room: room.id } },
        h('span', { class: 'item-main' }, h('span', { class: 'item-title' }, `# ${room.name}`),
          h('span', { class: 'item-preview' }, `${room.member_count} member${room.member_count === 1 ? '' : 's'}${room.description ? ` · ${room.description}` : ''}`)),
        member
          ? h('span', { class: 'room-actions' },
            h('button', { type: 'button', onclick: () => this.open(room.id) }, 'Open'),
            h('button', { type: 'button', class: 'quiet', onclick: async () => { if (await this.leave(room)) this.loadRooms(results); } }, 'Leave'))
          : h('button', {
            type: 'button', class: 'primary',
            onclick: async () => {
              const joined = await attempt(() => this.api.post(`/api/v1/rooms/${room.id}/join`));
              if (!joined) return;
              this.store.putConversation(joined.id ? joined : await this.store.fetchConversation(room.id));
              await this.loadRooms(results);
              this.open(room.id);
            },
          }, 'Join'));
    });
    replace(results, rows.length ? rows : h('li', { class: 'empty' }, this.roomSearch ? 'No room by that name.' : 'No rooms yet. Create the first one.'));
  }
}
