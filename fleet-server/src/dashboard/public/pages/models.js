// Models: versions and their artifacts per target with size, precision, sha256 and the accuracy
// report from the signed manifest (`metrics`).
import { bytes, clear, h, time } from '../dom.js';

export async function render(page, _params, { get }) {
  page.append(h('h1', {}, 'Models'));
  let list;
  try {
    list = (await get('/api/models')).items;
  } catch (err) {
    page.append(h('p', { class: 'error', role: 'alert' }, err.status === 404 ? 'This fleet server has no model registry (GET /api/models is missing).' : err.message));
    return null;
  }
  if (list.length === 0) page.append(h('p', { class: 'muted' }, 'No models yet: publish one with fleetctl model publish.'));
  for (const m of list.slice().reverse()) {
    const box = h('section', { class: 'model', 'aria-label': `Model ${m.name} ${m.version}` },
      h('h2', {}, `${m.name} `, h('span', { class: 'ver' }, m.version)),
      h('p', { class: 'muted' }, `published ${time(m.createdAtMs)} · targets ${m.targets.join(', ') || '—'}`));
    const body = h('div', { class: 'table-wrap' });
    box.append(body);
    page.append(box);
    get(`/api/models/${encodeURIComponent(m.name)}/${encodeURIComponent(m.version)}`).then((r) => {
      clear(body, h('table', { 'aria-label': `Artifacts of ${m.name} ${m.version}` },
        h('thead', {}, h('tr', {}, ['Target', 'Precision', 'Size', 'sha256', 'Accuracy report'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, r.items.map((a) => h('tr', {},
          h('td', { 'data-label': 'Target' }, a.target),
          h('td', { 'data-label': 'Precision' }, a.precision),
          h('td', { 'data-label': 'Size', class: 'num' }, bytes(a.size)),
          h('td', { 'data-label': 'sha256', class: 'mono' }, `${a.sha256.slice(0, 12)}…`),
          h('td', { 'data-label': 'Accuracy' }, metricsText(a.manifest?.metrics)))))));
    }, (err) => clear(body, h('p', { class: 'error' }, err.message)));
  }
  return null;
}

function metricsText(metrics) {
  if (!metrics || typeof metrics !== 'object') return '—';
  const parts = Object.entries(metrics).map(([k, v]) => `${k} ${v === null ? '—' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v)}`);
  return parts.length ? parts.join(' · ') : '—';
}
