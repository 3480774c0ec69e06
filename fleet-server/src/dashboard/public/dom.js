/* global document, Node */
// Tiny DOM helpers. Text goes in through textContent only (never innerHTML), so device-supplied
// strings (rule names, classes, ids) cannot inject markup.

/** h('a', {href: '#/x', class: 'c'}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Empties an element and appends children (arrays flattened, unlike the DOM's own append). */
export function clear(el, ...children) {
  while (el.firstChild) el.firstChild.remove();
  append(el, children);
  return el;
}

/**
 * The Date of a time in ms, or null when it is none or out of a Date's range (±8.64e15 ms,
 * ECMA-262 §21.4.1.1): a device clock sending nanoseconds would otherwise throw RangeError
 * ("Invalid time value") from toISOString and take the whole page down. Every time shown goes
 * through here.
 */
function dateOf(ms) {
  if (ms === null || ms === undefined) return null;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function ago(ms) {
  const d = dateOf(ms);
  if (!d) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  // Older: the local date and time, as every other time on the pages (it was UTC, unlabelled).
  return d.toLocaleString();
}

/** Local date and time, or '—' for no valid time. */
export function time(ms) {
  return dateOf(ms)?.toLocaleString() ?? '—';
}

/** For a <time datetime> attribute: ISO 8601, or undefined (no attribute) for no valid time. */
export function isoTime(ms) {
  return dateOf(ms)?.toISOString();
}

export function num(v, digits = 1) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(digits);
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function modelsText(models) {
  if (!models) return '—';
  const e = Object.entries(models);
  return e.length ? e.map(([role, v]) => `${role} ${v}`).join(', ') : '—';
}

/**
 * Orders the answers of requests that may overlap (a refresh on an event while the one from the
 * stream's opening is still in flight): an answer older than the one shown must not replace it.
 * Each request calls begin() before it asks and applies its answer only when current() says so
 * (false once the answer of a request begun after it has been applied). `started` counts the
 * requests begun: a change seen when it was N is in the answer of any request numbered above N.
 */
export function requestOrder() {
  let started = 0;
  let shown = 0;
  return {
    get started() { return started; },
    begin() {
      const n = ++started;
      return {
        n,
        current() {
          if (n < shown) return false;
          shown = n;
          return true;
        },
      };
    },
  };
}
