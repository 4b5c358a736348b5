// Start-up: pick up the session the cookie holds (or ask to sign in), then
// load the conversations, open the socket and keep messages flowing. The
// outbox resends what the socket could not deliver; the server recognises
// each message by its client_id, so a resend never makes a second copy.

import { Session } from './session.js';
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
  const socket = new Socket(session, {
    positions: () => store.positions(),
    onEvent: (frame) => {
      if (frame.type === 'error') report(frame);
      else store.apply(frame).catch(report);
    },
    onState: (state) => app?.connection(state),
    onResumed: () => {
      // Conversations that are not loaded learn their news from the list.
      store.refreshAfterReconnect();
      flush();
    },
  });
  const deliver = async (pending) => {
    if (!socket.ready) return; // sent when the socket is back
    try {
      const ack = await socket.request({
        type: 'message.send', conversation_id: pending.conversation_id, content: pending.content,
        message_type: pending.type, attachments: pending.attachments.map((a) => a.id), client_id: pending.client_id,
      });
      store.acknowledged(ack.message);
    } catch (e) {
      if (e.code === 'unavailable') return; // the connection dropped: resent on resume
      if (e.code === 'rate_limited') {
        toast(`Sending too fast. Retrying in ${Math.ceil((e.retryAfterMs || 1000) / 1000)} s.`);
        setTimeout(() => deliver(pending), e.retryAfterMs || 1000);
        return;
      }
      store.failed(pending.client_id, e.message);
    }
  };
  const flush = () => {
    for (const pending of [...store.outbox.values()]) if (!pending.failed) deliver(pending);
  };
  session.onToken = (token) => socket.reauthenticate(token);
  const signOut = async () => {
    socket.stop();
    await session.logout();
    location.reload();
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
