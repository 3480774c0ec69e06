/* global setTimeout, URLSearchParams */
// Alerts: live feed across the fleet with snapshot thumbnails; filter by site/group, rule, class
// and time. New alerts are prepended as they arrive (no reload).
import { clear, h } from '../dom.js';
import { alertCard } from './alert-card.js';

const WINDOWS = [['', 'Any time'], ['900000', 'Last 15 min'], ['3600000', 'Last hour'], ['86400000', 'Last 24 h'], ['604800000', 'Last 7 days']];

const PAGE = 100;

export async function render(page, _params, { get }) {
  let devices = (await get('/api/dashboard/devices')).items;
  const site = h('select', { id: 'alert-site', 'aria-label': 'Filter by site or group' });
  const rule = h('select', { id: 'alert-rule', 'aria-label': 'Filter by rule' });
  const cls = h('select', { id: 'alert-class', 'aria-label': 'Filter by class' });
  const since = h('select', { id: 'alert-time', 'aria-label': 'Filter by time' }, WINDOWS.map(([v, t]) => h('option', { value: v }, t)));
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const feed = h('div', { class: 'alert-grid', id: 'alert-feed', role: 'feed', 'aria-label': 'Alerts' });
  const older = h('button', { type: 'button', id: 'alert-older', hidden: true }, 'Load older alerts');
  page.append(h('h1', {}, 'Alerts'), h('div', { class: 'filters' }, site, rule, cls, since), count, feed, older);

  // The filters go to the server (/api/alerts): filtering only the newest alerts of the whole fleet in
  // the browser hid a quiet device's alerts behind a busy one's. Rules and classes offered are those
  // seen so far.
  let items = [];
  let next = null;
  const seenRules = new Set();
  const seenClasses = new Set();
  const groupsOf = (id) => devices.find((d) => d.id === id)?.groups ?? [];
  const options = (sel, all, values) => {
    const chosen = sel.value;
    const v = [...new Set([...values, ...(chosen ? [chosen] : [])])].sort();
    clear(sel, h('option', { value: '' }, all), v.map((x) => h('option', { value: x }, x)));
    sel.value = chosen;
  };
  const fill = () => {
    for (const a of items) { seenRules.add(a.alert.rule); seenClasses.add(a.alert.class); }
    options(site, 'All sites and groups', devices.flatMap((d) => d.groups));
    options(rule, 'All rules', seenRules);
    options(cls, 'All classes', seenClasses);
  };
  // The time window is on arrival at the server, as the API filters it.
  const after = () => (since.value ? Date.now() - Number(since.value) : 0);
  const matches = (a) => (!site.value || groupsOf(a.deviceId).includes(site.value))
    && (!rule.value || a.alert.rule === rule.value) && (!cls.value || a.alert.class === cls.value) && a.receivedAtMs >= after();
  const query = (beforeSeq) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (site.value) q.set('group', site.value);
    if (rule.value) q.set('rule', rule.value);
    if (cls.value) q.set('class', cls.value);
    if (since.value) q.set('sinceMs', String(after()));
    if (beforeSeq) q.set('beforeSeq', String(beforeSeq));
    return `/api/alerts?${q}`;
  };
  const draw = () => {
    const shown = items.filter(matches);
    const filtered = site.value || rule.value || cls.value || since.value;
    count.textContent = `${shown.length} ${filtered ? 'matching ' : ''}alert${shown.length === 1 ? '' : 's'}${next ? ' (older ones below the button)' : ''}`;
    clear(feed, shown.length ? shown.map((a) => alertCard(a)) : h('p', { class: 'muted' }, 'No alerts match.'));
    older.hidden = !next;
  };
  let generation = 0;
  const load = async () => {
    const g = ++generation;
    const r = await get(query());
    if (g !== generation) return; // a later filter change won
    items = r.items;
    next = r.nextBeforeSeq;
    fill();
    draw();
  };
  const reload = () => { load().catch((err) => { count.textContent = `Could not load alerts: ${err.message}`; }); };
  for (const el of [site, rule, cls, since]) el.addEventListener('input', reload);
  older.addEventListener('click', () => {
    if (!next) return;
    older.disabled = true;
    get(query(next)).then((r) => {
      items = [...items, ...r.items];
      next = r.nextBeforeSeq;
      fill();
      draw();
    }, (err) => { count.textContent = `Could not load older alerts: ${err.message}`; }).finally(() => { older.disabled = false; });
  });
  await load();

  let devicesTimer = null;
  return {
    async refresh() {
      devices = (await get('/api/dashboard/devices')).items;
      await load();
    },
    async onEvent(e) {
      if (e.type === 'device') {
        // Groups change rarely and device events come in bursts (a fleet reconnecting): one refetch a second at most.
        devicesTimer ??= setTimeout(() => {
          devicesTimer = null;
          get('/api/dashboard/devices').then((r) => { devices = r.items; fill(); draw(); }, (err) => console.error('device list refresh failed', err));
        }, 1000);
        return;
      }
      if (e.type !== 'alert' || items.some((a) => a.deviceId === e.deviceId && a.id === e.id)) return;
      const a = await get(`/api/alerts/${encodeURIComponent(e.deviceId)}/${encodeURIComponent(e.id)}`);
      if (!matches(a)) return;
      items = [a, ...items];
      fill();
      draw();
    },
  };
}
