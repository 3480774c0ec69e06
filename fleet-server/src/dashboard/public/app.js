/* global document, window, location, EventSource, setTimeout, clearTimeout */
// Dashboard shell: login, hash router, and the live event stream (server-sent events; the
// browser reconnects by itself). Each page module exports render(view, params, ctx) and may
// return {onEvent(e)} to update in place and {refresh()} to refetch its data keeping what the
// operator chose (filters, form fields); without refresh the page is rendered again.
//
// A tab in the background holds no stream: each stream holds one of the browser's connections to
// the server, six per host over HTTP/1.1 (Chromium's per-host limit, shared by every tab), so six
// open tabs left every API call of every tab waiting. A hidden tab closes its stream; shown again,
// it reopens it and refetches what it missed.
import { api, get, post, setUnauthorizedHandler } from './api.js';
import { clear, h } from './dom.js';
import * as devices from './pages/devices.js';
import * as device from './pages/device.js';
import * as alerts from './pages/alerts.js';
import * as models from './pages/models.js';
import * as rollouts from './pages/rollouts.js';

const view = document.getElementById('view');
const loginSection = document.getElementById('login');
const top = document.getElementById('top');
const live = document.getElementById('live');
let current = null;
let source = null;
// Reopening a stream the server refused: the first wait is the server's own `retry:` (2 s).
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 60_000;
let retryMs = RETRY_MIN_MS;
let retryTimer = null;
/** Events may have been missed (the stream was closed): refetch the page once it is open again. */
let missed = false;
/** Counts route() calls: a page rendered for an older one is not the current page. */
let routeCalls = 0;
/**
 * Events that came while the page was being rendered (its data may have been fetched before them):
 * handed to the page, in order, once it is rendered. Past a bound (a busy fleet's telemetry during
 * a slow render) they are dropped and a page that can refetch in place does so; one that cannot is
 * not rendered again for it (on a busy fleet that would never end), its next events update it.
 */
let queued = null;
let overflowed = false;
const QUEUE_MAX = 1000;

const ROUTES = [
  [/^#\/devices\/([^/]+)$/, device, 'devices'],
  [/^#\/devices$/, devices, 'devices'],
  [/^#\/alerts$/, alerts, 'alerts'],
  [/^#\/models$/, models, 'models'],
  [/^#\/rollouts$/, rollouts, 'rollouts'],
];

function showLogin() {
  closeEvents();
  top.hidden = true;
  for (const el of [...view.children]) if (el !== loginSection) el.remove();
  loginSection.hidden = false;
  document.getElementById('password').focus();
}

async function route() {
  const hash = location.hash || '#/devices';
  const match = ROUTES.map(([re, mod, nav]) => [hash.match(re), mod, nav]).find(([m]) => m);
  if (!match) { location.hash = '#/devices'; return; }
  const [m, mod, nav] = match;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  loginSection.hidden = true;
  top.hidden = false;
  const page = h('div', { class: 'page' });
  for (const el of [...view.children]) if (el !== loginSection) el.remove();
  view.append(page);
  current = null;
  const mine = ++routeCalls;
  // A page fetched before its stream is open misses what changes until it opens (no event for it).
  const streamed = source?.readyState === EventSource.OPEN;
  queued = [];
  overflowed = false;
  let rendered = null;
  try {
    rendered = (await mod.render(page, m.slice(1).map(decodeURIComponent), { get, post, api })) ?? null;
  } catch (err) {
    if (err.status === 401) { if (mine === routeCalls) queued = null; return; }
    clear(page, h('p', { class: 'error', role: 'alert' }, `Could not load this page: ${err.message}`));
  }
  if (mine !== routeCalls) return; // the operator went on to another page meanwhile
  const during = queued;
  queued = null;
  // The session ended while the page rendered (a page that shows its own errors took the 401): the
  // login form is up, and no stream is opened from it.
  if (top.hidden) return;
  current = rendered;
  if (overflowed) { if (current?.refresh) missed = true; } else void handOver(during);
  if (!streamed) missed = true;
  openEvents();
  if (missed && source?.readyState === EventSource.OPEN) { missed = false; void refreshPage(); }
}

function openEvents() {
  if (source || document.visibilityState === 'hidden') return;
  clearTimeout(retryTimer);
  retryTimer = null;
  const es = new EventSource('/api/events');
  source = es;
  es.onopen = () => {
    retryMs = RETRY_MIN_MS;
    live.textContent = 'live';
    live.classList.add('on');
    if (missed) { missed = false; void refreshPage(); }
  };
  es.onerror = () => {
    if (source !== es) return;
    live.textContent = 'reconnecting';
    live.classList.remove('on');
    // After a network error the browser reconnects by itself (readyState CONNECTING). An answer
    // other than a 200 event stream (401: the session expired or was logged out; 503: the server's
    // stream slots are all taken) fails the connection for good (HTML Living Standard §9.2.3): CLOSED.
    if (es.readyState !== EventSource.CLOSED) return;
    source = null;
    missed = true;
    void recoverEvents();
  };
  for (const type of ['device', 'telemetry', 'alert', 'rollout']) {
    es.addEventListener(type, (msg) => { void deliver(msg); });
  }
}

/**
 * EventSource does not say which answer closed it: an authenticated call tells an ended session
 * (401: api() shows the login form) from a busy or restarting server (reopen after a backoff,
 * doubled up to a minute, jittered so that tabs refused together do not return together).
 */
async function recoverEvents() {
  try {
    await get('/api/dashboard/status');
  } catch (err) {
    if (err.status === 401) return;
  }
  if (source || retryTimer || top.hidden || document.visibilityState === 'hidden') return;
  const delayMs = retryMs * (0.5 + Math.random() / 2);
  retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  retryTimer = setTimeout(() => { retryTimer = null; openEvents(); }, delayMs);
}

/** Hands one event to the page; a failing (or rejecting: most onEvent are async) update is logged, the feed goes on. */
async function deliver(msg) {
  if (queued) {
    // Past the bound none is kept: the page refetches instead (route()).
    if (overflowed) return;
    if (queued.length < QUEUE_MAX) queued.push(msg); else { overflowed = true; queued.length = 0; }
    return;
  }
  try {
    await current?.onEvent?.(JSON.parse(msg.data));
  } catch (err) {
    console.error('live update failed', err);
  }
}

/** Hands the events that came during the render to the page one after another, as they came. */
async function handOver(events) {
  for (const msg of events) await deliver(msg);
}

function closeEvents(label = 'offline') {
  source?.close();
  source = null;
  clearTimeout(retryTimer);
  retryTimer = null;
  missed = false; // whoever opens it again renders or refreshes the page
  live.textContent = label;
  live.classList.remove('on');
}

/** Refetches the open page (after a time without events); a failure is logged, the page keeps what it shows. */
async function refreshPage() {
  if (!current?.refresh) return route();
  try {
    await current.refresh();
  } catch (err) {
    if (err.status !== 401) console.error('page refresh failed', err);
  }
}

document.addEventListener('visibilitychange', () => {
  if (top.hidden) return; // the login form: no stream either way
  if (document.visibilityState === 'hidden') {
    closeEvents('paused');
    return;
  }
  openEvents();
  void refreshPage();
});

document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = document.getElementById('login-error');
  err.textContent = '';
  try {
    await api('POST', '/api/login', { username: document.getElementById('username').value, password: document.getElementById('password').value });
    document.getElementById('password').value = '';
    await route();
  } catch (e) {
    err.textContent = e.status === 401 ? 'Wrong username or password.' : `Login failed: ${e.message}`;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  await post('/api/logout').catch(() => undefined);
  showLogin();
});

setUnauthorizedHandler(showLogin);
window.addEventListener('hashchange', () => { void route(); });
void route();
