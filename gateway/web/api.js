// The HTTP API of api.md, as the signed-in user.

import { errorOf } from './session.js';

/** Calls give up after this (file transfers after TRANSFER_TIMEOUT_MS): a hung request must not hang the page. */
const TIMEOUT_MS = 15_000;
const TRANSFER_TIMEOUT_MS = 120_000;

export class Api {
  constructor(session) {
    this.session = session;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  put(path, body) { return this.request('PUT', path, body); }
  delete(path) { return this.request('DELETE', path); }

  /** JSON in, JSON out (null for 204); errors thrown with the server's text. */
  async request(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      if (body instanceof FormData) {
        init.body = body;
      } else {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
    }
    const response = await this.#send(path, init);
    if (response.status === 204) return null;
    return response.json();
  }

  /** The response itself (media: its body may take long), after the same authentication. */
  async raw(path, headers = {}) {
    return this.#send(path, { method: 'GET', headers }, TRANSFER_TIMEOUT_MS);
  }

  async #send(path, init, transfer) {
    const limit = transfer || (init.body instanceof FormData ? TRANSFER_TIMEOUT_MS : TIMEOUT_MS);
    const call = (token) => fetch(path, {
      ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(limit),
    });
    let response = await call(await this.session.token());
    if (response.status === 401) {
      // The token expired under us (a sleeping laptop): once more, fresh.
      await this.session.refresh();
      response = await call(await this.session.token());
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

/** `a, b` → `?a=…&b=…` without empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
