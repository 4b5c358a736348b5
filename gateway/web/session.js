// The signed-in session. The access token lives in this module's memory
// only. The refresh token never reaches the page: the gateway keeps it in an
// HttpOnly cookie sent only to /web/session/*, so a script injected into the
// page cannot read it or carry it away. Tabs share that cookie, and a refresh
// token works once (reuse revokes the whole session), so refreshes are
// serialised across tabs with a Web Lock.

const HEADERS = { 'Content-Type': 'application/json', 'X-ChatterBox-Web': '1' };
const TIMEOUT_MS = 15_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The user an access token names (its `sub`), read without verifying. */
function subjectOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).sub;
  } catch {
    return undefined;
  }
}

function post(path, body) {
  return fetch(path, {
    method: 'POST', headers: HEADERS, credentials: 'same-origin', signal: AbortSignal.timeout(TIMEOUT_MS),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
/** Refresh this long before expiry (at most a third of the token's life). */
const EARLY_MS = 60_000;

// How soon a failed silent refresh is tried again, doubling up to a limit.
const RETRY_MS = 2_000;
const RETRY_MAX_MS = 30_000;

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
  #margin = 0;
  /** Set for good once the cookie turned out to hold another user's session. */
  #switched = false;
  #timer = null;
  #refreshing = null;

  constructor() {
    this.user = null;
    /** Called when the session ends by itself (refresh refused). */
    this.onEnded = () => {};
    /** Called with each new access token. */
    this.onToken = () => {};
    /** Called when the cookie turned out to hold another user's session (signed in elsewhere in this browser). */
    this.onSwitched = () => {};
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
    if (this.#token && Date.now() < this.#expiresAt - this.#margin / 2) return this.#token;
    await this.refresh();
    return this.#token;
  }

  /** A new access token (and a rotated cookie); one at a time, across tabs. */
  refresh() {
    if (this.#switched) return Promise.reject(new SessionError(401, 'unauthenticated', 'Signed in as someone else.'));
    if (!this.#refreshing) {
      this.#refreshing = this.#locked(() => this.#refreshNow()).finally(() => { this.#refreshing = null; });
    }
    return this.#refreshing;
  }

  /**
   * Ends the session. Throws without changing anything when the server
   * cannot be reached; once it answered, the cookie is gone (the answer is
   * returned: not ok when the server could not end the session itself).
   */
  async logout() {
    const response = await this.#locked(() => post('/web/session/logout'));
    this.#clear();
    return response;
  }

  async #start(path, body) {
    const response = await this.#locked(() => post(path, body));
    if (!response.ok) throw await errorOf(response);
    const session = await response.json();
    this.user = session.user;
    this.#set(session);
  }

  async #refreshNow() {
    const response = await post('/web/session/refresh');
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
    if (this.user && subjectOf(access_token) !== this.user.id) {
      // Another account signed in in this browser since: this page is
      // stale and must never act with that account's token.
      this.#switched = true;
      this.#clear();
      this.onSwitched();
      throw new SessionError(401, 'unauthenticated', 'Signed in as someone else.');
    }
    const lifetime = Math.max(1000, Number(expires_in) * 1000 || 60_000);
    this.#token = access_token;
    this.#expiresAt = Date.now() + lifetime;
    this.#margin = Math.min(EARLY_MS, lifetime / 3);
    clearTimeout(this.#timer);
    // Silent refresh ahead of expiry; if it fails (offline, a busy
    // server), it is tried again a little later, and the next token() asks
    // again meanwhile.
    this.#schedule(Math.min(MAX_TIMER_MS, lifetime - this.#margin));
    this.onToken(access_token);
  }

  #schedule(delay, failures = 0) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.refresh().catch((e) => {
        // Ended or switched sessions stop here, and so does a refusal that
        // will not change (a 4xx other than 429); a network failure or a
        // busy server is tried again, backing off, as it asks.
        const status = e?.status || 0;
        if (!this.#token || this.#switched || (status >= 400 && status < 500 && status !== 429)) return;
        const backoff = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** failures);
        this.#schedule(Math.max(backoff, Number(e?.retryAfterMs) || 0), failures + 1);
      });
    }, delay);
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
