// Start-up: pick up the session the cookie holds (or ask to sign in), then
// load the conversations, open the socket and keep messages flowing. The
// outbox resends what the socket could not deliver; the server recognises
// each message by its client_id, so a resend never makes a second copy.

import { Session, errorOf } from './session.js';
import { Api } from './api.js';
import { Socket } from './socket.js';
import { Store } from './store.js';
import { App, authScreen, report } from './views.js';
import { replace, h, toast } from './dom.js';

const root = document.getElementById('app');
const session = new Session();
const api = new Api(session);

async function main() {
  let signedIn = false;
  try {
    signedIn = await session.restore();
  } catch (e) {
    replace(root, h('p', { class: 'loading', role: 'alert' }, `ChatterBox cannot be reached: ${e.message}`, ' ',
      h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')));
    return;
  }
  if (!signedIn) await authScreen(root, session);
  await start();
}

async function start() {
  const me = session.user || (await api.get('/api/v1/users/me'));
  session.user = me;
  const store = new Store(api, me);
  let app = null;
  // Events are applied one after another, in the order they came.
  let applying = Promise.resolve();
  const socket = new Socket(session, {
    positions: () => store.positions(),
    onEvent: (frame) => {
      if (frame.type === 'error' && frame.code === 'rate_limited') {
        const wait = frame.retry_after_ms || 1000;
        socket.pause(wait);
        toast(`Slow down: too many actions at once. Try again in ${Math.ceil(wait / 1000)} s.`);
      } else if (frame.type === 'error' && frame.code === 'unauthenticated') {
        // The token ran out on this connection: it closes with 4401 and the
        // socket comes back with a fresh one by itself.
      } else if (frame.type === 'error') {
        report(frame);
      } else {
        applying = applying.then(() => store.apply(frame)).catch(report);
      }
    },
    onState: (state) => app?.connection(state),
    onResumed: (history) => {
      // Too far behind to replay: those load their newest page again.
      store.reloadHistory(Object.keys(history));
      // Conversations that are not loaded learn their news from the list.
      store.refreshAfterReconnect();
      app?.syncStatus();
      app?.conversation.markRead();
      flush();
    },
  });
  // One send in flight per message; the server knows a repeated client_id,
  // so a resend never makes a copy, but it is not sent twice at once either.
  const MAX_TRIES = 6;
  const deliver = async (pending) => {
    if (!socket.ready || pending.inFlight || pending.failed || !store.outbox.has(pending.client_id)) return;
    pending.inFlight = true;
    pending.tries = (pending.tries || 0) + 1;
    try {
      const ack = await socket.request({
        type: 'message.send', conversation_id: pending.conversation_id, content: pending.content,
        message_type: pending.type, attachments: pending.attachments.map((a) => a.id), client_id: pending.client_id,
        ...(pending.reply_to ? { reply_to: pending.reply_to.id } : {}),
      });
      store.acknowledged(ack.message);
    } catch (e) {
      pending.inFlight = false;
      const retry = (ms) => {
        if (pending.tries >= MAX_TRIES) store.failed(pending.client_id, 'the server did not take it');
        else setTimeout(() => deliver(pending), ms);
      };
      if (e.code === 'unavailable') {
        // Dropped: resent after the next resume. Unanswered on a live link: once more soon.
        if (socket.ready) retry(2000);
        return;
      }
      if (e.code === 'rate_limited') {
        socket.pause(e.retryAfterMs || 1000);
        toast(`Sending too fast. Retrying in ${Math.ceil((e.retryAfterMs || 1000) / 1000)} s.`, 'info');
        retry(e.retryAfterMs || 1000);
        return;
      }
      store.failed(pending.client_id, e.message);
    } finally {
      pending.inFlight = false;
    }
  };
  const flush = () => {
    for (const pending of [...store.outbox.values()]) if (!pending.failed) deliver(pending);
  };
  session.onToken = (token) => socket.reauthenticate(token);
  const signOut = async () => {
    let response;
    try {
      response = await session.logout();
    } catch {
      toast('ChatterBox cannot be reached, so you are still signed in. Try again when you are back online.');
      return;
    }
    socket.stop();
    if (!response.ok) {
      // The cookie is gone (signed out here); the server may still list the session.
      toast(`Signed out on this device, but the server said: ${(await errorOf(response)).message}`);
      await new Promise((resolve) => { setTimeout(resolve, 2500); });
    }
    location.reload();
  };
  session.onSwitched = () => {
    socket.stop();
    toast('You signed in with another account in this browser.', 'info');
    setTimeout(() => location.reload(), 1500);
  };
  session.onEnded = () => {
    socket.stop();
    toast('Your session ended. Please sign in again.');
    setTimeout(() => location.reload(), 1500);
  };
  app = new App(root, { session, api, store, socket, onSignOut: signOut });
  app.deliver = deliver;
  try {
    await store.loadConversations();
  } catch (e) {
    report(e);
  }
  socket.start();
}

main();
