// The WebSocket: authenticates with a first frame (the token never goes in
// the URL), reconnects by itself with backoff, and on every (re)connection
// asks the server to resume each open conversation after the last message
// the page has, so nothing is missed or shown twice.

const PING_EVERY_MS = 20_000;
/** A ping unanswered this long means the link is dead (a cut network sends no close). */
const PONG_WITHIN_MS = 15_000;
/** Opening and authenticating must finish within this. */
const CONNECT_WITHIN_MS = 15_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** Without `resumed` this long after `ready` (a refused resume), the page goes on anyway. */
const RESUME_WITHIN_MS = 10_000;

export class Socket {
  #ws = null;
  #attempt = 0;
  #retryTimer = null;
  #pingTimer = null;
  #pongTimer = null;
  #connectTimer = null;
  /** Counts connection attempts: an attempt that is no longer the latest gives up. */
  #generation = 0;
  #connecting = false;
  #resumeId = null;
  #resumeTimer = null;
  /** The token this connection authenticated with, and the newest one known. */
  #usedToken = null;
  #latestToken = null;
  #nextId = 1;
  #pending = new Map();
  #stopped = true;

  /**
   * `session` gives tokens; `positions()` the last seq seen per conversation;
   * `onEvent(frame)` gets every server event; `onState(state)` 'connecting' |
   * 'online' | 'offline'.
   */
  constructor(session, { positions, onEvent, onState, onResumed }) {
    this.session = session;
    this.positions = positions;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResumed = onResumed;
    this.ready = false;
    this.pausedUntil = 0;
    window.addEventListener('online', () => this.#reconnectSoon(0));
  }

  start() {
    this.#stopped = false;
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    this.#generation += 1;
    this.#connecting = false;
    clearTimeout(this.#retryTimer);
    this.#stopTimers();
    this.#ws?.close(1000, 'signed out');
    this.#ws = null;
    this.ready = false;
    this.#failPending('signed out');
  }

  /** A new access token for the live connection (sessions end with their token). */
  reauthenticate(token) {
    this.#latestToken = token;
    if (this.ready && token !== this.#usedToken) {
      this.#usedToken = token;
      this.request({ type: 'auth', access_token: token }).catch((e) => {
        this.#usedToken = null;
        // Too fast, or no answer in time from a busy server: once more after
        // a wait (else the connection ends with the old token and reconnects).
        // A refused token is left to the session, which refreshes it.
        if (e.code === 'rate_limited' || e.code === 'unavailable') {
          setTimeout(() => this.reauthenticate(this.#latestToken), e.retryAfterMs || 1000);
        }
      });
    }
  }

  /** Sends a frame that expects `ack`/`error`; resolves with the ack. */
  request(frame) {
    if (!this.ready) return Promise.reject(Object.assign(new Error('Not connected.'), { code: 'unavailable' }));
    const id = String(this.#nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(Object.assign(new Error('The server did not answer in time.'), { code: 'unavailable' }));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.#raw({ ...frame, id });
    });
  }

  /** Sends a frame nobody waits an answer for (typing, read): false when offline or held back. */
  send(frame) {
    if (!this.ready || Date.now() < this.pausedUntil) return false;
    this.#raw(frame);
    return true;
  }

  /** Holds back such frames for a while (the server said "too fast"). */
  pause(ms) {
    this.pausedUntil = Date.now() + ms;
  }

  #raw(frame) {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  async #connect() {
    if (this.#stopped || this.#ws || this.#connecting) return;
    this.#connecting = true;
    const generation = ++this.#generation;
    this.onState('connecting');
    let token;
    try {
      token = await this.session.token();
    } catch (e) {
      this.#connecting = false;
      if (e.status === 401) return; // signed out: the session says so
      this.#reconnectSoon();
      return;
    }
    this.#connecting = false;
    if (this.#stopped || generation !== this.#generation || this.#ws) return;
    this.#usedToken = token;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.#ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', access_token: token }));
    ws.onmessage = (e) => this.#receive(ws, e.data);
    ws.onclose = (e) => this.#closed(ws, e.code);
    ws.onerror = () => { /* onclose follows */ };
    clearTimeout(this.#connectTimer);
    this.#connectTimer = setTimeout(() => {
      if (ws === this.#ws && !this.ready) this.#drop(ws);
    }, CONNECT_WITHIN_MS);
  }

  /** Gives up on a connection that stopped answering. */
  #drop(ws) {
    try { ws.close(4000, 'no answer'); } catch { /* already closing */ }
    this.#closed(ws, 4000);
  }

  #receive(ws, data) {
    if (ws !== this.#ws) return;
    clearTimeout(this.#pongTimer);
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'ready':
        clearTimeout(this.#connectTimer);
        this.#attempt = 0;
        this.ready = true;
        this.onState('online');
        this.#startPings(ws);
        // A token renewed while this connection was opening.
        if (this.#latestToken && this.#latestToken !== this.#usedToken) this.reauthenticate(this.#latestToken);
        this.#resume(ws);
        break;
      case 'resumed':
        if (frame.id === this.#resumeId) this.#resumed(frame.history || {});
        break;
      case 'ack':
      case 'error': {
        if (frame.type === 'error' && frame.id && frame.id === this.#resumeId) {
          // Too fast (tabs reconnecting together): once more after the wait.
          // Any other refusal names a conversation no longer mine; the list
          // reload after `resumed` takes care of it.
          if (frame.code === 'rate_limited') {
            clearTimeout(this.#resumeTimer);
            setTimeout(() => { if (ws === this.#ws) this.#resume(ws); }, frame.retry_after_ms || 1000);
          }
          break;
        }
        const waiting = frame.id && this.#pending.get(frame.id);
        if (waiting) {
          this.#pending.delete(frame.id);
          clearTimeout(waiting.timer);
          if (frame.type === 'ack') waiting.resolve(frame);
          else waiting.reject(Object.assign(new Error(frame.message), { code: frame.code, retryAfterMs: frame.retry_after_ms }));
        } else if (frame.type === 'error') {
          this.onEvent(frame);
        }
        break;
      }
      case 'pong':
        break;
      default:
        this.onEvent(frame);
    }
  }

  #resume(ws) {
    this.#resumeId = `resume-${this.#nextId++}`;
    this.#raw({ type: 'resume', id: this.#resumeId, positions: this.positions() });
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => { if (ws === this.#ws) this.#resumed({}); }, RESUME_WITHIN_MS);
  }

  /** `history`: conversations too far behind to replay, for the page to reload. */
  #resumed(history) {
    clearTimeout(this.#resumeTimer);
    this.#resumeId = null;
    this.onResumed(history);
  }

  #startPings(ws) {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (ws !== this.#ws) return;
      this.#raw({ type: 'ping' });
      // Any frame clears this; a ping with no answer at all drops the link.
      // (Timed from the ping, so a background tab's slowed timers do not
      // mistake their own lateness for a dead link.)
      clearTimeout(this.#pongTimer);
      this.#pongTimer = setTimeout(() => { if (ws === this.#ws) this.#drop(ws); }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  #stopTimers() {
    clearTimeout(this.#resumeTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#connectTimer);
  }

  #closed(ws, code) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.ready = false;
    this.#stopTimers();
    this.#failPending('The connection dropped.');
    if (this.#stopped) return;
    this.onState('offline');
    if (code === 4401) {
      // The token ran out: a fresh one first (with the usual backoff, so a
      // token refused again and again cannot spin).
      this.session.refresh().then(() => this.#reconnectSoon(), (e) => { if (e.status !== 401) this.#reconnectSoon(); });
      return;
    }
    this.#reconnectSoon();
  }

  #reconnectSoon(delay) {
    if (this.#stopped || this.#ws || this.#connecting) return;
    clearTimeout(this.#retryTimer);
    if (delay === undefined) {
      // 0.5 s, 1 s, 2 s, … up to 8 s, with jitter so replicas are not stormed.
      delay = Math.min(8000, 500 * 2 ** this.#attempt) * (0.75 + Math.random() / 2);
      this.#attempt += 1;
    }
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #failPending(reason) {
    for (const [, waiting] of this.#pending) {
      clearTimeout(waiting.timer);
      waiting.reject(Object.assign(new Error(reason), { code: 'unavailable' }));
    }
    this.#pending.clear();
  }
}
