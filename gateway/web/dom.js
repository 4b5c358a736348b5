// Building the page without innerHTML: every piece of user text goes in as
// text, so nothing a user writes can become markup or script.

/** An element: h('button', {class: 'x', onclick: f}, 'text', child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if ((key === 'href' || key === 'src') && !/^(https?:|blob:|\/(?![/\\]))/.test(String(value))) {
      throw new TypeError(`refusing the URL ${value}`);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Makes `container`'s children the `items` ({key, version, render}) in
 * order, keeping the element of every key whose version did not change, so
 * focus, loaded images and screen-reader context stay where they are.
 */
export function reconcile(container, items) {
  // What goes away goes first, so nothing in order has to move (a moved
  // element loses the focus it holds).
  const wanted = new Set(items.map((item) => item.key));
  const old = new Map();
  for (const el of [...container.children]) {
    const key = el.dataset.key;
    if (!wanted.has(key) || old.has(key)) el.remove();
    else old.set(key, el);
  }
  items.forEach((item, i) => {
    let el = old.get(item.key);
    if (!el || el.dataset.version !== item.version) {
      const fresh = item.render();
      fresh.dataset.key = item.key;
      fresh.dataset.version = item.version;
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    old.delete(item.key);
    const at = container.children[i];
    if (at !== el) container.insertBefore(el, at || null);
  });
}

/** Replaces everything inside `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** "14:05" today, "Nov 27" before. */
export function shortTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dayFormat.format(date);
}

/** "just now", "5 min ago", "3 h ago", "Nov 27". */
export function ago(iso) {
  if (!iso) return 'a while ago';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return dayFormat.format(new Date(iso));
}

/** "1.2 MB". */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const shown = new Map();

/** Shows a message to the user for a while (screen readers announce it); the same text once at a time. */
export function toast(text, kind = 'error') {
  if (shown.has(text)) return;
  // Also to the console, where tests (and support) can see what users saw.
  console.warn(`[toast] ${text}`);
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}` }, text);
  shown.set(text, item);
  box.append(item);
  setTimeout(() => { item.remove(); shown.delete(text); }, kind === 'error' ? 7000 : 4000);
}
