/* global setTimeout */
// Devices: one row per device with online state, groups (site), model versions, fps, p95 latency,
// drift flag and last seen; filter by text, state and group. Live: refetched (debounced) on events.
import { ago, clear, h, modelsText, num, requestOrder } from '../dom.js';

export async function render(page, _params, { get }) {
  let items = (await get('/api/dashboard/devices')).items;
  const search = h('input', { type: 'search', id: 'device-search', placeholder: 'Search id, model, group', 'aria-label': 'Search devices' });
  const state = h('select', { id: 'device-state', 'aria-label': 'Filter by state' },
    h('option', { value: '' }, 'All states'), h('option', { value: 'online' }, 'Online'), h('option', { value: 'offline' }, 'Offline'), h('option', { value: 'drift' }, 'Drift flagged'));
  const group = h('select', { id: 'device-group', 'aria-label': 'Filter by site or group' });
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const tbody = h('tbody');
  page.append(
    h('h1', {}, 'Devices'),
    h('div', { class: 'filters' }, search, state, group),
    count,
    h('div', { class: 'table-wrap' }, h('table', { class: 'devices', 'aria-label': 'Devices' },
      h('thead', {}, h('tr', {}, ['Device', 'State', 'Site / groups', 'Models', 'FPS', 'p95 ms', 'Drift', 'Last seen'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)),
  );

  const fillGroups = () => {
    const chosen = group.value;
    const groups = [...new Set(items.flatMap((d) => d.groups))].sort();
    clear(group, h('option', { value: '' }, 'All sites and groups'), groups.map((g) => h('option', { value: g }, g)));
    group.value = groups.includes(chosen) ? chosen : '';
  };
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = items.filter((d) => {
      if (state.value === 'online' && !d.online) return false;
      if (state.value === 'offline' && d.online) return false;
      if (state.value === 'drift' && !d.driftFlagged) return false;
      if (group.value && !d.groups.includes(group.value)) return false;
      if (!q) return true;
      return [d.id, modelsText(d.models), d.groups.join(' '), d.platform?.board ?? ''].join(' ').toLowerCase().includes(q);
    });
    count.textContent = `${rows.length} of ${items.length} devices, ${items.filter((d) => d.online).length} online`;
    clear(tbody, rows.map((d) => h('tr', { 'data-device': d.id },
      h('td', { 'data-label': 'Device' }, h('a', { href: `#/devices/${encodeURIComponent(d.id)}` }, d.id)),
      h('td', { 'data-label': 'State' }, h('span', { class: `badge ${d.online ? 'ok' : 'off'}` }, d.online ? 'online' : 'offline')),
      h('td', { 'data-label': 'Groups' }, d.groups.join(', ') || '—'),
      h('td', { 'data-label': 'Models', class: 'models' }, modelsText(d.models)),
      h('td', { 'data-label': 'FPS', class: 'num' }, num(d.detectFps)),
      h('td', { 'data-label': 'p95 ms', class: 'num' }, num(d.p95Ms)),
      h('td', { 'data-label': 'Drift' }, d.driftFlagged ? h('span', { class: 'badge warn' }, 'drift') : 'ok'),
      h('td', { 'data-label': 'Last seen' }, ago(d.lastSeenMs)),
    )));
    if (rows.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 8 }, items.length ? 'No device matches the filter.' : 'No devices yet: add one with fleetctl device add.')));
  };
  for (const el of [search, state, group]) el.addEventListener('input', draw);
  fillGroups();
  draw();

  // Refreshes overlap (the one from the stream's opening and one for events): an older answer is dropped.
  const order = requestOrder();
  const refresh = async () => {
    const req = order.begin();
    const r = await get('/api/dashboard/devices');
    if (!req.current()) return;
    items = r.items;
    fillGroups();
    draw();
  };
  let pending = null;
  return {
    refresh,
    onEvent(e) {
      if (e.type !== 'device' && e.type !== 'telemetry' && e.type !== 'alert') return;
      if (pending) return;
      // Coalesce bursts (a fleet sends many telemetry messages) into one refetch.
      pending = setTimeout(() => {
        pending = null;
        refresh().catch((err) => console.error('device list refresh failed', err));
      }, 300);
    },
  };
}
