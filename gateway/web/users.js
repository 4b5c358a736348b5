// Who is who, and who is online: profiles looked up a few at a time (the
// API is rate limited) and kept, presence of the people I talk to.

import { query } from './api.js';

const LOOKUPS_AT_ONCE = 4;

export class Users {
  /** `changed(what, id)` tells the store's views. */
  constructor(api, me, changed) {
    this.api = api;
    this.me = me;
    this.changed = changed;
    this.profiles = new Map([[me.id, me]]);
    this.requests = new Map();
    this.queue = [];
    this.lookups = 0;
    this.presence = new Map();
  }

  /** A user's name, or '…' while it is looked up. */
  name(id) {
    const user = this.profiles.get(id);
    if (user) return user.username;
    this.load(id);
    return '…';
  }

  /** A user's profile if it is known already (no lookup). */
  known(id) {
    return this.profiles.get(id);
  }

  /** A user's profile (undefined if the lookup failed). */
  load(id) {
    if (!id || this.profiles.has(id)) return Promise.resolve(this.profiles.get(id));
    if (!this.requests.has(id)) {
      const request = new Promise((resolve) => this.queue.push({ id, resolve }));
      this.requests.set(id, request);
      this.#next();
    }
    return this.requests.get(id);
  }

  #next() {
    while (this.lookups < LOOKUPS_AT_ONCE && this.queue.length) {
      const { id, resolve } = this.queue.shift();
      this.lookups += 1;
      this.api.get(`/api/v1/users/${encodeURIComponent(id)}`).then((user) => {
        this.profiles.set(id, user);
        this.changed('user', id);
        resolve(user);
      }, (e) => {
        // Not remembered: asked again when next needed, after any wait the server named.
        setTimeout(() => this.requests.delete(id), e.retryAfterMs || 5000);
        resolve(undefined);
      }).finally(() => {
        this.lookups -= 1;
        this.#next();
      });
    }
  }

  /** What I learnt of a user from an answer of mine. */
  put(user) {
    this.profiles.set(user.id, { ...this.profiles.get(user.id), ...user });
  }

  /** Fetches the presence of those not known yet (all of them when `again`), 100 per call. */
  async watchPresenceOf(ids, again = false) {
    const wanted = [...new Set(ids)].filter((id) => id !== this.me.id && (again || !this.presence.has(id)));
    for (let i = 0; i < wanted.length; i += 100) {
      const batch = wanted.slice(i, i + 100);
      try {
        const answer = await this.api.get(`/api/v1/presence${query({ user_ids: batch.join(',') })}`);
        for (const p of answer.items) this.presence.set(p.user_id, { status: p.status, last_seen: p.last_seen });
        this.changed('presence');
      } catch { /* unknown: grey dots; asked again after the next reconnection */ }
    }
  }

  /** Everyone whose presence is watched, asked again (after a reconnection). */
  refreshPresence() {
    return this.watchPresenceOf([...this.presence.keys()], true);
  }

  /** A presence event. */
  setPresence(id, status, lastSeen) {
    this.presence.set(id, { status, last_seen: lastSeen });
    this.changed('presence', id);
  }

  presenceOf(id) {
    return this.presence.get(id) || { status: 'offline', last_seen: null };
  }
}
