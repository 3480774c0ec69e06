/* global setTimeout */
// Alerts: live feed across the fleet with snapshot thumbnails; filter by site/group, rule, class
// and time. New alerts are prepended as they arrive (no reload).
import { clear, h } from '../dom.js';
import { alertCard } from './alert-card.js';

const WINDOWS = [['', 'Any time'], ['900000', 'Last 15 min'], ['3600000', 'Last hour'], ['86400000', 'Last 24 h'], ['604800000', 'Last 7 days']];

export async function render(page, _params, { get }) {
  let items = (await get('/api/alerts?limit=200')).items;
  let devices = (await get('/api/dashboard/devices')).items;
  const site = h('select', { id: 'alert-site', 'aria-label': 'Filter by site or group' });
  const rule = h('select', { id: 'alert-rule', 'aria-label': 'Filter by rule' });
  const cls = h('select', { id: 'alert-class', 'aria-label': 'Filter by class' });
  const since = h('select', { id: 'alert-time', 'aria-label': 'Filter by time' }, WINDOWS.map(([v, t]) => h('option', { value: v }, t)));
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const feed = h('div', { class: 'alert-grid', id: 'alert-feed', role: 'feed', 'aria-label': 'Alerts' });
  page.append(h('h1', {}, 'Alerts'), h('div', { class: 'filters' }, site, rule, cls, since), count, feed);

  const groupsOf = (id) => devices.find((d) => d.id === id)?.groups ?? [];
  const options = (sel, all, values) => {
    const chosen = sel.value;
    const v = [...new Set(values)].sort();
    clear(sel, h('option', { value: '' }, all), v.map((x) => h('option', { value: x }, x)));
    sel.value = v.includes(chosen) ? chosen : '';
  };
  const fill = () => {
    options(site, 'All sites and groups', devices.flatMap((d) => d.groups));
    options(rule, 'All rules', items.map((a) => a.alert.rule));
    options(cls, 'All classes', items.map((a) => a.alert.class));
  };
  const draw = () => {
    const after = since.value ? Date.now() - Number(since.value) : 0;
    const shown = items.filter((a) => (!site.value || groupsOf(a.deviceId).includes(site.value))
      && (!rule.value || a.alert.rule === rule.value) && (!cls.value || a.alert.class === cls.value) && a.tsMs >= after);
    count.textContent = `${shown.length} of ${items.length} recent alerts`;
    clear(feed, shown.length ? shown.map((a) => alertCard(a)) : h('p', { class: 'muted' }, 'No alerts match.'));
  };
  for (const el of [site, rule, cls, since]) el.addEventListener('input', draw);
  fill();
  draw();

  let devicesTimer = null;
  return {
    async refresh() {
      [items, devices] = await Promise.all([get('/api/alerts?limit=200').then((r) => r.items), get('/api/dashboard/devices').then((r) => r.items)]);
      fill();
      draw();
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
      items = [a, ...items].slice(0, 500);
      fill();
      draw();
    },
  };
}
