// Two people chat through the web client in headless Chromium: sign up,
// direct chat both ways with typing and read receipts, an image, a dropped
// network that comes back without gaps or duplicates, presence going
// offline, rooms, groups, reactions, replies, pins, mentions, search, blocking. Screenshots of the main screens go to SCREENSHOT_DIR.
//
//   CHATTERBOX_URL=http://127.0.0.1:8080 [BOB_URL=http://127.0.0.1:8081] SCREENSHOT_DIR=out node chat.mjs
//
// Bob reaches the gateway through a TCP proxy this script controls, so his
// network can really be cut (open connections reset, new ones refused).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const BASE = process.env.CHATTERBOX_URL || 'http://127.0.0.1:8080';
// Bob may use another gateway of the same suite.
const BOB_TARGET = process.env.BOB_URL || BASE;
const SHOTS = process.env.SCREENSHOT_DIR || 'screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 20_000;
const RUN = Date.now().toString(36);

fs.mkdirSync(SHOTS, { recursive: true });

/** A TCP proxy to the gateway whose network can be cut and restored. */
class Link {
  constructor(target) {
    this.target = target;
    this.sockets = new Set();
  }

  async open() {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise((resolve) => this.server.listen(this.port || 0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resets every open connection and refuses new ones. */
  async cut() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
    await closed;
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => (this.server.listening ? this.server.close(resolve) : resolve()));
  }
}

/** A small PNG (a 96×64 gradient), built here so the test needs no files. */
function png(width = 96, height = 64) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) rows.set([x * 2, y * 3, 200], y * (width * 3 + 1) + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

let step = 'starting';
const pages = [];
const consoleErrors = [];
/** What the pages told their users (the client logs every toast). */
const toasts = [];

/** Watches a page for script errors, policy violations and toasts. */
function watch(page, baseURL) {
  page.setDefaultTimeout(WAIT_MS);
  // (A 401 from /web/session/refresh is how a signed-out page learns it.)
  page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().startsWith('[toast] ')) toasts.push(`${baseURL}: ${m.text()}`);
    const signedOut = /status of 401/.test(m.text()) && m.location().url.endsWith('/web/session/refresh');
    // Bob's requests fail while his network is cut, as they should.
    const cutOff = baseURL !== BASE && /net::ERR_CONNECTION_(REFUSED|RESET)/.test(m.text());
    if (m.type() === 'error' && !signedOut && !cutOff) consoleErrors.push(`${baseURL}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${baseURL}: ${e.message}`));
}

function log(text) {
  step = text;
  console.log(`[browser] ${text}`);
}

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`[browser]   screenshot ${file}`);
}

/** Signs up through the form; returns once the app shows the user's name. */
async function signUp(page, username, screenshot) {
  await page.goto('/');
  await page.getByRole('heading', { name: 'Sign in to ChatterBox' }).waitFor();
  if (screenshot) await shot(page, screenshot);
  await page.getByRole('button', { name: 'New here? Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('.me-name', { hasText: username }).waitFor();
}

/** A JSON call to the API as a plain HTTP client (to set a scene quickly). */
async function call(method, route, token, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(new URL(route, BASE), { method, headers, body: body && JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** The texts of the messages shown, in order. */
function shownTexts(page) {
  return page.locator('.messages .message .content').allTextContents();
}

/** Waits until the message whose text contains `text` is in view in the open conversation. */
async function shownInView(page, text) {
  await page.waitForFunction((wanted) => {
    const scroller = document.querySelector('.scroller');
    const item = [...document.querySelectorAll('.scroller .message')]
      .find((el) => el.querySelector('.content')?.textContent.includes(wanted));
    if (!scroller || !item) return false;
    const view = scroller.getBoundingClientRect();
    const at = item.getBoundingClientRect();
    return at.bottom > view.top && at.top < view.bottom;
  }, text, { timeout: WAIT_MS });
}

/**
 * Searches messages for `q` (in the open results dialog, else with the
 * sidebar's box) until a result contains `expected`, which it returns: asked
 * again a few times, in case the index trails the send.
 */
async function searchFor(page, q, expected) {
  const results = page.getByRole('dialog', { name: 'Search results' });
  if (await results.count()) {
    await results.getByLabel('Search for').fill(q);
    await results.getByLabel('Search for').press('Enter');
  } else {
    await page.getByLabel('Search messages').fill(q);
    await page.getByLabel('Search messages').press('Enter');
  }
  const hit = results.locator('.result-item', { hasText: expected });
  for (let attempt = 1; ; attempt += 1) {
    try {
      await hit.waitFor({ timeout: 4000 });
      return hit;
    } catch (e) {
      if (attempt === 4) throw e;
    }
    await results.getByRole('button', { name: 'Search', exact: true }).click();
  }
}

async function main() {
  const link = new Link(new URL(BOB_TARGET));
  const bobBase = await link.open();
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: root ? ['--no-sandbox'] : [] });
  try {
    const sockets = [];
    const refreshes = [];
    const newPage = async (baseURL, viewport) => {
      const context = await browser.newContext({ baseURL, viewport });
      const page = await context.newPage();
      // A page that breaks its own policy, throws, or shows an error fails the test.
      watch(page, baseURL);
      page.on('websocket', (ws) => sockets.push({ page, url: ws.url() }));
      page.on('request', (r) => { if (r.url().endsWith('/web/session/refresh')) refreshes.push({ page, at: Date.now() }); });
      pages.push(page);
      return { context, page };
    };
    const alice = `alice_${RUN}`;
    const bob = `bob_${RUN}`;
    const { page: a } = await newPage(BASE, { width: 1200, height: 800 });
    // Bob is on a phone-sized screen.
    const { context: bobContext, page: b } = await newPage(bobBase, { width: 390, height: 780 });

    log('both sign up');
    await signUp(a, alice, '01-sign-in');
    await signUp(b, bob);

    log('no token where a script could find it; the session survives a reload, also of two tabs at once');
    const visible = await a.evaluate(() => ({
      cookie: document.cookie, local: { ...localStorage }, session: { ...sessionStorage }, url: location.href,
    }));
    assert.deepEqual(visible, { cookie: '', local: {}, session: {}, url: `${BASE}/` });
    const secondTab = await a.context().newPage();
    watch(secondTab, BASE);
    await secondTab.goto('/');
    await secondTab.locator('.me-name', { hasText: alice }).waitFor();
    // Both rotate the one cookie: serialised, neither presents a spent token.
    await Promise.all([a.reload(), secondTab.reload()]);
    await a.locator('.me-name', { hasText: alice }).waitFor();
    await secondTab.locator('.me-name', { hasText: alice }).waitFor();
    await secondTab.close();
    const alicesSockets = () => sockets.filter((s) => s.page === a).length;
    const socketsBeforeReload = alicesSockets();
    await a.reload();
    await a.locator('.me-name', { hasText: alice }).waitFor();
    const refreshesAtReload = refreshes.filter((r) => r.page === a).length;

    log('carol (over the API) fills a chat with alice; alice scrolls up through all of it');
    const carol = await call('POST', '/api/v1/auth/register', null, {
      username: `carol_${RUN}`, email: `carol_${RUN}@example.com`, password: 'correct horse battery',
    });
    // Access tokens live 15 s in these runs: an API client renews its own
    // well before then, as a real one would (a busy machine makes 120 sends slow).
    let carolTokens = carol.tokens;
    let renewed = Date.now();
    const carolToken = async () => {
      if (Date.now() - renewed > 5000) {
        carolTokens = (await call('POST', '/api/v1/auth/refresh', null, { refresh_token: carolTokens.refresh_token })).tokens;
        renewed = Date.now();
      }
      return carolTokens.access_token;
    };
    const found = await call('GET', `/api/v1/users?search=${alice}`, await carolToken());
    const withAlice = await call('POST', '/api/v1/conversations', await carolToken(), { type: 'direct', participant_ids: [found.items[0].id] });
    const history = Array.from({ length: 120 }, (_, i) => `history ${i + 1}`);
    for (const content of history) await call('POST', `/api/v1/conversations/${withAlice.id}/messages`, await carolToken(), { content });
    const carolsItem = a.locator('.conversation-item', { hasText: `carol_${RUN}` });
    await carolsItem.locator('.badge', { hasText: '99+' }).waitFor();
    await carolsItem.click();
    await a.locator('.message .content', { hasText: 'history 120' }).waitFor();
    assert.equal(await a.locator('.message .content', { hasText: /^history 1$/ }).count(), 0, 'one page at first');
    for (let i = 0; i < 10 && !(await a.locator('.messages .start').count()); i += 1) {
      await a.locator('.scroller').evaluate((el) => { el.scrollTop = 0; });
      await a.waitForTimeout(300);
    }
    await a.locator('.messages .start').waitFor();
    assert.deepEqual(await shownTexts(a), history, 'the whole history, once, in order');
    await carolsItem.locator('.badge').waitFor({ state: 'detached' });

    log('alice finds bob and opens a direct chat');
    await a.getByRole('button', { name: 'New chat' }).click();
    await a.getByLabel('Find a user').fill(bob);
    await a.getByRole('button', { name: bob, exact: true }).click();
    await a.locator('.conversation-header h2', { hasText: bob }).waitFor();
    await a.locator('.conversation-header .dot[data-status="online"]').waitFor();

    log('alice writes; bob sees it in his list, unread');
    await a.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello Bob!');
    await a.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await a.locator('.message.mine .content', { hasText: 'Hello Bob!' }).waitFor();
    const bobsItem = b.locator('.conversation-item', { hasText: alice });
    await bobsItem.locator('.badge', { hasText: /^1$/ }).waitFor();
    await bobsItem.locator('.item-preview', { hasText: 'Hello Bob!' }).waitFor();
    await shot(b, '02-conversation-list-phone');

    log('bob opens it: alice sees it read');
    await bobsItem.click();
    await b.locator('.message.theirs .content', { hasText: 'Hello Bob!' }).waitFor();
    await a.locator('.message.mine [data-receipt="seen"]', { hasText: 'Seen' }).waitFor();

    log('bob types: alice sees him typing; he sends: alice sees it and bob sees it read');
    await b.getByRole('textbox', { name: 'Message', exact: true }).pressSequentially('Hi Alice, ', { delay: 20 });
    await a.locator('.typing', { hasText: `${bob} is typing…` }).waitFor();
    await b.getByRole('textbox', { name: 'Message', exact: true }).pressSequentially('how are you?', { delay: 10 });
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await a.locator('.message.theirs .content', { hasText: 'Hi Alice, how are you?' }).waitFor();
    await a.locator('.typing', { hasText: 'typing' }).waitFor({ state: 'detached' }).catch(() => {});
    assert.equal(await a.locator('.typing').textContent(), '', 'the typing notice ends with the message');
    await b.locator('.message.mine [data-receipt="seen"]').waitFor();

    log('alice sends an image with a preview; bob sees it');
    await a.getByLabel('Attach files').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png() });
    const preview = a.locator('.attachment-preview img');
    await preview.waitFor();
    assert.match(await preview.getAttribute('src'), /^blob:/, 'the preview is the local file');
    await a.getByRole('textbox', { name: 'Message', exact: true }).fill('A picture');
    await a.getByRole('button', { name: 'Send' }).click();
    const bobsImage = b.locator('.message.theirs img.thumbnail');
    await bobsImage.waitFor();
    await b.waitForFunction(() => {
      const img = document.querySelector('.message.theirs img.thumbnail');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: WAIT_MS });
    await a.waitForFunction(() => {
      const img = document.querySelector('.message.mine img.thumbnail');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: WAIT_MS });

    log('alice edits her first message; bob sees the edit');
    const first = a.locator('.message.mine', { hasText: 'Hello Bob!' });
    await first.hover();
    await first.getByRole('button', { name: 'Edit message' }).click();
    await a.getByRole('textbox', { name: 'Edit message' }).fill('Hello Bob! (edited)');
    await a.getByRole('textbox', { name: 'Edit message' }).press('Enter');
    await b.locator('.message.theirs .content', { hasText: 'Hello Bob! (edited)' }).waitFor();

    log('bob reacts to it from the picker; alice sees the count and adds hers with one click');
    const bobsView = b.locator('.message.theirs', { hasText: 'Hello Bob! (edited)' });
    await bobsView.hover();
    await bobsView.getByRole('button', { name: 'Add a reaction' }).click();
    await bobsView.getByRole('menuitem', { name: 'React with 🎉' }).click();
    await bobsView.locator('.reaction[aria-pressed="true"]', { hasText: '🎉1' }).waitFor();
    const alicesView = a.locator('.message.mine', { hasText: 'Hello Bob! (edited)' });
    const party = alicesView.locator('.reaction', { hasText: '🎉' });
    await party.locator('.reaction-count', { hasText: /^1$/ }).waitFor();
    assert.equal(await party.getAttribute('aria-pressed'), 'false', 'not hers yet');
    await party.click();
    await alicesView.locator('.reaction[aria-pressed="true"] .reaction-count', { hasText: /^2$/ }).waitFor();
    await bobsView.locator('.reaction[aria-pressed="true"] .reaction-count', { hasText: /^2$/ }).waitFor();

    log('bob replies to it with a quote; alice sees the quote and the reply under "1 reply"');
    await bobsView.hover();
    await bobsView.getByRole('button', { name: 'Reply to message' }).click();
    await b.locator('.reply-bar', { hasText: 'Hello Bob! (edited)' }).waitFor();
    await b.getByRole('textbox', { name: 'Message', exact: true }).fill('Thanks, you too!');
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await b.locator('.reply-bar').waitFor({ state: 'hidden' });
    const alicesReply = a.locator('.message.theirs', { hasText: 'Thanks, you too!' });
    await alicesReply.locator('.reply-quote', { hasText: 'Hello Bob! (edited)' }).waitFor();
    await alicesView.getByRole('button', { name: '1 reply' }).click();
    const thread = a.getByRole('dialog', { name: 'Replies' });
    await thread.locator('.content', { hasText: 'Thanks, you too!' }).waitFor();
    await thread.getByRole('button', { name: 'Close' }).click();

    log('alice pins it; bob sees it pinned and finds it under Pins');
    await alicesView.hover();
    await alicesView.getByRole('button', { name: 'Pin message' }).click();
    await bobsView.locator('.pinned-tag').waitFor();
    await b.getByRole('button', { name: 'Pins', exact: true }).click();
    const pinsDialog = b.getByRole('dialog', { name: 'Pinned messages' });
    await pinsDialog.locator('.pinned-text', { hasText: 'Hello Bob! (edited)' }).waitFor();
    await pinsDialog.getByRole('button', { name: 'Close' }).click();
    await shot(a, '03-conversation');

    log('bob\'s network is cut; alice writes three messages; it comes back');
    const before = await shownTexts(b);
    await link.cut();
    await b.locator('.banner', { hasText: 'Reconnecting' }).waitFor();
    const away = ['While you were away 1', 'While you were away 2', 'While you were away 3'];
    for (const text of away) {
      await a.getByRole('textbox', { name: 'Message', exact: true }).fill(text);
      await a.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
      await a.locator('.message.mine:not(.pending) .content', { hasText: text }).waitFor();
    }
    // Bob writes while cut off: it waits in his outbox.
    await b.getByRole('textbox', { name: 'Message', exact: true }).fill('Written offline');
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await b.locator('.message.pending .content', { hasText: 'Written offline' }).waitFor();
    await link.open();
    await b.locator('.banner').waitFor({ state: 'hidden', timeout: 30_000 });
    await b.locator('.message.theirs .content', { hasText: away[2] }).waitFor();
    await b.locator('.message.mine:not(.pending) .content', { hasText: 'Written offline' }).waitFor();
    await a.locator('.message.theirs .content', { hasText: 'Written offline' }).waitFor();
    const after = await shownTexts(b);
    assert.deepEqual(after, [...before, ...away, 'Written offline'], 'every message once, in order, nothing else');
    assert.equal((await shownTexts(a)).filter((t) => t === 'Written offline').length, 1, 'the outbox sent it once');
    // Bob's own sends after the outage reach Alice exactly once too.
    await b.getByRole('textbox', { name: 'Message', exact: true }).fill('Back again');
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    await a.locator('.message.theirs .content', { hasText: 'Back again' }).waitFor();
    assert.equal((await shownTexts(a)).filter((t) => t === 'Back again').length, 1);

    log('alice creates a room; bob finds and joins it');
    await a.getByRole('tab', { name: 'Rooms' }).click();
    await a.getByText('Create a room').click();
    await a.getByLabel('Room name').fill(`general-${RUN}`);
    await a.getByLabel('Description').fill('Everyone is welcome');
    await a.getByRole('button', { name: 'Create', exact: true }).click();
    await a.locator('.conversation-header h2', { hasText: `general-${RUN}` }).waitFor();
    await b.getByRole('button', { name: 'Back to conversations' }).click();
    await b.getByRole('tab', { name: 'Rooms' }).click();
    await b.getByLabel('Search rooms').fill(`general-${RUN}`);
    await b.locator('.room', { hasText: `general-${RUN}` }).getByRole('button', { name: 'Join' }).click();
    await b.locator('.conversation-header h2', { hasText: `general-${RUN}` }).waitFor();
    await b.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello room');
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    // The composer empties the moment a send starts: if it still holds the
    // text, the send never started (say so, rather than time out below).
    await b.waitForFunction(
      () => document.querySelector('.composer textarea')?.value === '', null, { timeout: 5000 },
    ).catch(async () => {
      const left = await b.getByRole('textbox', { name: 'Message', exact: true }).inputValue();
      throw new Error(`bob's composer still holds ${JSON.stringify(left)} after Enter: his send never started`);
    });
    await a.locator('.message.theirs .content', { hasText: 'Hello room' }).waitFor();
    await a.getByRole('tab', { name: 'Rooms' }).click();
    await a.locator('.room', { hasText: `general-${RUN}` }).locator('.item-preview', { hasText: '2 members' }).waitFor();
    await shot(a, '04-rooms');

    log('alice makes a group with bob, renames it, then removes him');
    await b.getByRole('button', { name: 'Back to conversations' }).click();
    await b.getByRole('tab', { name: 'Chats' }).click();
    // What bob read is not unread (his last read goes out within a moment).
    await bobsItem.locator('.badge').waitFor({ state: 'detached', timeout: 5000 });
    await a.getByRole('tab', { name: 'Chats' }).click();
    await a.getByRole('button', { name: 'New group' }).click();
    await a.getByLabel('Group name').fill(`Project ${RUN}`);
    await a.getByLabel('Add members').fill(bob);
    await a.getByRole('button', { name: bob, exact: true }).click();
    await a.getByRole('button', { name: 'Create group' }).click();
    await a.locator('.conversation-header h2', { hasText: `Project ${RUN}` }).waitFor();
    await b.locator('.conversation-item', { hasText: `Project ${RUN}` }).waitFor();
    await a.getByRole('button', { name: 'Settings' }).click();
    await a.getByLabel('Name', { exact: true }).fill(`Renamed ${RUN}`);
    await a.getByRole('button', { name: 'Save' }).click();
    await b.locator('.conversation-item', { hasText: `Renamed ${RUN}` }).waitFor();
    await a.locator('.member', { hasText: bob }).getByRole('button', { name: 'Remove' }).click();
    await b.locator('.conversation-item', { hasText: `Renamed ${RUN}` }).waitFor({ state: 'detached' });
    await a.locator('.members .member').filter({ hasText: bob }).waitFor({ state: 'detached' });
    await a.keyboard.press('Escape');

    log('alice mentions bob, picking him from the @ list; bob sees the badge and the mention, and opens it from Mentions');
    await a.locator('.conversation-item', { hasText: bob }).click();
    await a.locator('.conversation-header h2', { hasText: bob }).waitFor();
    const alicesComposer = a.getByRole('textbox', { name: 'Message', exact: true });
    await alicesComposer.pressSequentially(`Dinner, @${bob.slice(0, 3)}`, { delay: 20 });
    await a.getByRole('listbox', { name: 'People to mention' }).getByRole('option', { name: bob, exact: true }).click();
    await a.waitForFunction((text) => document.querySelector('.composer textarea')?.value === text, `Dinner, @${bob} `);
    await a.locator('#mention-suggestions').waitFor({ state: 'hidden' });
    await alicesComposer.pressSequentially('are you free?', { delay: 10 });
    await alicesComposer.press('Enter');
    await a.locator('.message.mine:not(.pending)', { hasText: 'are you free?' }).locator('.content .mention', { hasText: `@${bob}` }).waitFor();
    // Bob is on his list: the conversation counts the mention.
    await bobsItem.locator('.mention-badge', { hasText: /^@$/ }).waitFor();
    await shot(b, '08-mention-badge-phone');
    await b.getByRole('button', { name: 'Mentions', exact: true }).click();
    const mentionsList = b.getByRole('dialog', { name: 'Mentions' });
    const mentionEntry = mentionsList.locator('.result-item', { hasText: 'are you free?' });
    await mentionEntry.locator('.result-conversation', { hasText: alice }).waitFor();
    await mentionEntry.locator('.mention.mention-me', { hasText: `@${bob}` }).waitFor();
    await mentionEntry.click();
    await mentionsList.waitFor({ state: 'detached' });
    await b.locator('.conversation-header h2', { hasText: alice }).waitFor();
    const bobsMention = b.locator('.message.theirs.mentions-me', { hasText: 'are you free?' });
    await bobsMention.locator('.content .mention.mention-me', { hasText: `@${bob}` }).waitFor();
    await shownInView(b, 'are you free?');
    await b.getByRole('button', { name: 'Back to conversations' }).click();
    // Read now: the badge goes.
    await bobsItem.locator('.mention-badge').waitFor({ state: 'detached' });

    log('alice writes with accents and in Japanese; bob finds both by search and opens the conversation at a result');
    for (const text of ['Crème brûlée tonight', '東京タワーに行こう']) {
      await alicesComposer.fill(text);
      await alicesComposer.press('Enter');
      await a.locator('.message.mine:not(.pending) .content', { hasText: text }).waitFor();
    }
    await bobsItem.locator('.item-preview', { hasText: '東京タワーに行こう' }).waitFor();
    const creme = await searchFor(b, 'creme', 'Crème brûlée tonight');
    await creme.locator('mark', { hasText: 'Crème' }).waitFor();
    const tokyo = await searchFor(b, '東京', '東京タワーに行こう');
    await tokyo.locator('mark', { hasText: '東京' }).waitFor();
    await shot(b, '09-search-phone');
    await tokyo.click();
    await b.getByRole('dialog', { name: 'Search results' }).waitFor({ state: 'detached' });
    await b.locator('.conversation-header h2', { hasText: alice }).waitFor();
    await shownInView(b, '東京タワーに行こう');
    // From the conversation's header: in this conversation only.
    await b.getByRole('button', { name: 'Search', exact: true }).click();
    const inHere = b.getByRole('dialog', { name: 'Search results' });
    assert.ok(await inHere.getByLabel('In this conversation').isChecked(), 'a search from a conversation searches it');
    await (await searchFor(b, 'CRÈME', 'Crème brûlée tonight')).click();
    await inHere.waitFor({ state: 'detached' });
    await shownInView(b, 'Crème brûlée tonight');
    await b.getByRole('button', { name: 'Back to conversations' }).click();

    log('alice blocks bob from his profile: his message is refused; she unblocks him and his retry arrives');
    await a.locator('.conversation-item', { hasText: bob }).click();
    await a.locator('.conversation-header h2', { hasText: bob }).waitFor();
    await a.getByRole('button', { name: 'Profile' }).click();
    const profile = a.getByRole('dialog', { name: 'Profile' });
    await profile.locator('strong', { hasText: bob }).waitFor();
    await profile.getByRole('button', { name: 'Block', exact: true }).click();
    await profile.getByRole('button', { name: 'Unblock', exact: true }).waitFor();
    await shot(a, '07-profile-blocked');
    await profile.getByRole('button', { name: 'Close' }).click();
    await a.locator('.conversation-header [data-blocked="true"]', { hasText: 'Blocked by you' }).waitFor();
    await bobsItem.click();
    await b.getByRole('textbox', { name: 'Message', exact: true }).fill('Are we still friends?');
    await b.getByRole('textbox', { name: 'Message', exact: true }).press('Enter');
    const refused = b.locator('.message.mine', { hasText: 'Are we still friends?' }).locator('.status.failed');
    await refused.filter({ hasText: 'blocked' }).waitFor();
    await a.getByRole('button', { name: 'Blocked', exact: true }).click();
    const blockedList = a.getByRole('dialog', { name: 'Blocked users' });
    await blockedList.getByRole('button', { name: `Unblock ${bob}` }).click();
    await blockedList.getByText('You block nobody.').waitFor();
    await blockedList.getByRole('button', { name: 'Close' }).click();
    await a.locator('.conversation-header .presence-text').waitFor();
    await refused.getByRole('button', { name: 'Retry' }).click();
    await a.locator('.message.theirs .content', { hasText: 'Are we still friends?' }).waitFor();
    await b.locator('.message.mine:not(.pending) .content', { hasText: 'Are we still friends?' }).waitFor();
    await b.getByRole('button', { name: 'Back to conversations' }).click();

    log('alice\'s access token expired and was renewed silently: her socket never dropped');
    // Tokens live 15 s in this run (see tests/api/browser.rs).
    const deadline = Date.now() + 40_000;
    while (refreshes.filter((r) => r.page === a).length < refreshesAtReload + 3 && Date.now() < deadline) {
      await a.waitForTimeout(500);
    }
    assert.ok(refreshes.filter((r) => r.page === a).length >= refreshesAtReload + 3, 'silent refreshes');
    assert.equal(alicesSockets(), socketsBeforeReload + 1, 'one socket since the reload, kept across token renewals');
    for (const s of sockets) assert.match(s.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/, 'no token in a socket URL');

    log('bob goes offline: alice sees his dot change');
    await a.getByRole('tab', { name: 'Chats' }).click();
    await a.locator('.conversation-item', { hasText: bob }).click();
    const bobsDot = a.locator('.conversation-header .dot');
    await a.locator('.conversation-header .dot[data-status="online"]').waitFor();
    await bobContext.close();
    await a.locator('.conversation-header .dot[data-status="offline"]').waitFor({ timeout: 30_000 });
    await a.locator('.conversation-header .presence-text', { hasText: 'last seen' }).waitFor();
    assert.equal(await bobsDot.getAttribute('data-status'), 'offline');
    await shot(a, '05-partner-offline');

    log('alice signs in on a laptop too, sees both under Devices and signs the laptop out: it is signed out at once');
    const { context: laptopContext, page: laptop } = await newPage(BASE, { width: 1000, height: 700 });
    await laptop.goto('/');
    await laptop.getByRole('heading', { name: 'Sign in to ChatterBox' }).waitFor();
    await laptop.getByLabel('Email').fill(`${alice}@example.com`);
    await laptop.getByLabel('Password').fill('correct horse battery');
    await laptop.getByRole('button', { name: 'Sign in', exact: true }).click();
    await laptop.locator('.me-name', { hasText: alice }).waitFor();
    await a.getByRole('button', { name: 'Devices' }).click();
    const devices = a.getByRole('dialog', { name: 'Devices' });
    await devices.locator('.session-item').nth(1).waitFor();
    assert.equal(await devices.locator('.session-item').count(), 2);
    assert.equal(await devices.locator('.session-item[data-current="true"]').count(), 1, 'this device is marked');
    await shot(a, '06-devices');
    const errorsBefore = consoleErrors.length;
    const toastsBefore = toasts.length;
    await devices.locator('.session-item[data-current="false"]').getByRole('button', { name: /^Sign out / }).click();
    await devices.locator('.session-item').nth(1).waitFor({ state: 'detached' });
    await laptop.getByRole('heading', { name: 'Sign in to ChatterBox' }).waitFor({ timeout: 15_000 });
    await devices.getByRole('button', { name: 'Close' }).click();
    // The laptop learned it from a 401 (the browser logs each refused
    // request) and told its user; nothing else went wrong anywhere.
    assert.deepEqual(consoleErrors.splice(errorsBefore).filter((e) => !/status of 401 \(Unauthorized\)/.test(e)), []);
    assert.deepEqual(toasts.splice(toastsBefore).filter((t) => !/Your session ended/.test(t)), []);
    await a.locator('.me-name', { hasText: alice }).waitFor();
    await laptopContext.close();

    log('alice signs out: the session is gone after a reload');
    await a.getByRole('button', { name: 'Sign out' }).click();
    await a.getByRole('heading', { name: 'Sign in to ChatterBox' }).waitFor();
    await a.reload();
    await a.getByRole('heading', { name: 'Sign in to ChatterBox' }).waitFor();

    assert.deepEqual(consoleErrors, [], 'no script errors or policy violations on the pages');
    assert.deepEqual(toasts, [], 'no error shown to either user');

    log('another account signed in in another tab: this tab never acts as it, it reloads as it');
    await a.getByLabel('Email').fill(`${alice}@example.com`);
    await a.getByLabel('Password').fill('correct horse battery');
    await a.getByRole('button', { name: 'Sign in', exact: true }).click();
    await a.locator('.me-name', { hasText: alice }).waitFor();
    const other = await a.context().newPage();
    watch(other, BASE);
    await other.goto('/');
    await other.getByRole('button', { name: 'Sign out' }).click();
    await other.getByLabel('Email').fill(`carol_${RUN}@example.com`);
    await other.getByLabel('Password').fill('correct horse battery');
    await other.getByRole('button', { name: 'Sign in', exact: true }).click();
    await other.locator('.me-name', { hasText: `carol_${RUN}` }).waitFor();
    // Alice's tab renews its token within seconds (15 s tokens) and finds
    // Carol's session (or, if it asked between the sign-out and Carol's
    // sign-in, no session: it reloads all the same).
    await a.locator('.me-name', { hasText: `carol_${RUN}` }).waitFor({ timeout: 30_000 });
    assert.ok(toasts.some((t) => /You signed in with another account|Your session ended/.test(t)), toasts.join('\n'));
    // Signing out in the other tab ended Alice's session everywhere at once:
    // what her tab asked after that answered 401 (the browser logs each
    // refused request), and the tab recovered as shown above.
    const unexpected = consoleErrors.filter((e) => !/responded with a status of 401 \(Unauthorized\)/.test(e));
    assert.deepEqual(unexpected, [], 'no script errors or policy violations on the pages');
    log('passed');
  } catch (e) {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: path.join(SHOTS, `failure-${i}.png`), fullPage: true }).catch(() => {});
    }
    if (consoleErrors.length) console.error(`[browser] page errors: ${consoleErrors.join('\n')}`);
    if (toasts.length) console.error(`[browser] shown to users: ${toasts.join('\n')}`);
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await link.close().catch(() => {});
  }
}

main().catch((e) => {
  console.error(`[browser] FAILED at "${step}" (screenshots: ${SHOTS}/failure-*.png): ${e.stack || e}`);
  process.exit(1);
});
