// The signed-in session. The access token lives in this module's memory
// only. The refresh token never reaches the page: the gateway keeps it in an
// HttpOnly cookie sent only to /web/session/*, so a script injected into the
// page cannot read it or carry it away. Tabs share that cookie, and a refresh
// token works once (reuse revokes the whole session), so refreshes are
// serialised across tabs with a Web Lock.

const HEADERS = { 'Content-Type': 'application/json', 'X-ChatterBox-Web': '1' };
const EARLY_MS = 60_000;

export class SessionError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error a response carries (always the contract's JSON body). */
export async function errorOf(response) {
  let code = 'internal';
  let message = `The server answered ${response.status}.`;
  try {
    const body = await response.json();
    code = body.error?.code || code;
    message = body.error?.message || message;
  } catch { /* not JSON: keep the generic text */ }
  const retry = Number(response.headers.get('Retry-After'));
  const retryAfterMs = Number.isFinite(retry) && retry > 0 ? retry * 1000 : undefined;
  if (response.status === 429) {
    message = `Too many requests. Try again in ${Math.ceil((retryAfterMs || 1000) / 1000)} s.`;
  }
  return new SessionError(response.status, code, message, retryAfterMs);
}

export class Session {
  #token = null;
  #expiresAt = 0;
  #timer = null;
  #refreshing = null;

  constructor() {
    this.user = null;
    /** Called when the session ends by itself (refresh refused). */
    this.onEnded = () => {};
    /** Called with each new access token. */
    this.onToken = () => {};
  }

  get signedIn() {
    return this.#token !== null;
  }

  async register(username, email, password) {
    await this.#start('/web/session/register', { username, email, password });
  }

  async login(email, password) {
    await this.#start('/web/session/login', { email, password });
  }

  /** Picks up the session the cookie holds, if any: true when signed in. */
  async restore() {
    try {
      await this.refresh();
      return true;
    } catch (e) {
      if (e.status === 401) return false;
      throw e;
    }
  }

  /** The access token, refreshed first when it is about to expire. */
  async token() {
    if (this.#token && Date.now() < this.#expiresAt - EARLY_MS / 2) return this.#token;
    await this.refresh();
    return this.#token;
  }

  /** A new access token (and a rotated cookie); one at a time, across tabs. */
  refresh() {
    if (!this.#refreshing) {
      this.#refreshing = this.#locked(() => this.#refreshNow()).finally(() => { this.#refreshing = null; });
    }
    return this.#refreshing;
  }

  async logout() {
    this.#clear();
    try {
      await this.#locked(() => fetch('/web/session/logout', { method: 'POST', headers: HEADERS, credentials: 'same-origin' }));
    } catch { /* signed out here either way */ }
  }

  async #start(path, body) {
    const response = await fetch(path, { method: 'POST', headers: HEADERS, body: JSON.stringify(body), credentials: 'same-origin' });
    if (!response.ok) throw await errorOf(response);
    const session = await response.json();
    this.user = session.user;
    this.#set(session);
  }

  async #refreshNow() {
    const response = await fetch('/web/session/refresh', { method: 'POST', headers: HEADERS, credentials: 'same-origin' });
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401 && this.#token) {
        this.#clear();
        this.onEnded();
      }
      throw error;
    }
    this.#set(await response.json());
  }

  #set({ access_token, expires_in }) {
    this.#token = access_token;
    this.#expiresAt = Date.now() + expires_in * 1000;
    clearTimeout(this.#timer);
    // Silent refresh a minute before expiry (or halfway for short tokens).
    const delay = Math.max(5_000, Math.min(expires_in * 1000 - EARLY_MS, (expires_in * 1000) / 2));
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), delay);
    this.onToken(access_token);
  }

  #clear() {
    clearTimeout(this.#timer);
    this.#token = null;
    this.#expiresAt = 0;
    this.user = null;
  }

  #locked(task) {
    if (navigator.locks?.request) return navigator.locks.request('chatterbox-session', task);
    return task();
  }
}
