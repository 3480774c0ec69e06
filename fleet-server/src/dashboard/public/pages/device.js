// Device page: live fps and latency plots, drift (PSI per signal) over time, recent alerts with
// their redacted snapshots, current and previous models, and its rollouts (updated on rollout events).
import { lineChart } from '../chart.js';
import { ago, clear, h, modelsText, requestOrder } from '../dom.js';
import { alertCard } from './alert-card.js';

const WINDOW = 120;

export async function render(page, [id], { get }) {
  const enc = encodeURIComponent(id);
  const [dev, tel, al] = await Promise.all([
    get(`/api/devices/${enc}`), get(`/api/devices/${enc}/telemetry?limit=${WINDOW}`), get(`/api/alerts?deviceId=${enc}&limit=12`),
  ]);
  let device = dev;
  let points = tel.items.slice().reverse();
  let alerts = al.items;
  // Rollouts that included this device (its newest 5): what it ran before each one.
  const listRecent = () => get(`/api/rollouts?deviceId=${enc}`).then((r) => r.items.slice(-5).reverse(), () => []);
  /** rollout id → its status, as last fetched: a rollout event refetches only the rollout it names. */
  const statuses = new Map();
  const loadHistory = async (recent) => {
    const fetched = await Promise.all(recent.map((r) => statuses.get(r.id) ?? get(`/api/rollouts/${r.id}`).catch(() => null)));
    statuses.clear();
    for (const st of fetched) if (st) statuses.set(st.id, st);
    return fetched.filter(Boolean).flatMap((st) => st.devices.filter((d) => d.deviceId === id).map((d) => ({ rollout: st, d })));
  };
  let history = await loadHistory(await listRecent());
  // Events overlap (a telemetry and a device event of one report): an older answer is dropped.
  const deviceOrder = requestOrder();
  const loadDevice = async () => {
    const req = deviceOrder.begin();
    const d = await get(`/api/devices/${enc}`);
    if (req.current()) device = d;
  };

  const head = h('div');
  const charts = h('div', { class: 'charts' });
  const modelsBox = h('section', { 'aria-labelledby': 'models-h' });
  const alertsBox = h('div', { class: 'alert-grid', 'aria-live': 'polite' });
  page.append(h('p', {}, h('a', { href: '#/devices' }, '← Devices')), head, charts, modelsBox,
    h('section', { 'aria-labelledby': 'alerts-h' }, h('h2', { id: 'alerts-h' }, 'Recent alerts'), alertsBox));

  const drawHead = () => {
    clear(head, 
      h('h1', {}, id, ' ', h('span', { class: `badge ${device.online ? 'ok' : 'off'}`, id: 'device-state' }, device.online ? 'online' : 'offline'),
        device.driftFlagged ? h('span', { class: 'badge warn' }, 'drift') : null),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Last seen'), h('dd', {}, ago(device.lastSeenMs)),
        h('dt', {}, 'Agent'), h('dd', {}, device.agentVersion ?? '—'),
        h('dt', {}, 'Platform'), h('dd', {}, device.platform ? `${device.platform.os}/${device.platform.arch}${device.platform.board ? ` · ${device.platform.board}` : ''}` : '—'),
        h('dt', {}, 'Health'), h('dd', {}, device.health ? `${device.health.status}${device.health.reasons.length ? `: ${device.health.reasons.join('; ')}` : ''}` : '—')));
  };
  const drawCharts = () => {
    const fps = points.map((p) => ({ t: p.tsMs, v: p.payload.detectFps }));
    const stage = (name) => points.map((p) => ({ t: p.tsMs, v: p.payload.stages[name]?.p95Ms ?? NaN }));
    const stageNames = [...new Set(points.flatMap((p) => Object.keys(p.payload.stages)))].slice(0, 4);
    const psi = (k) => points.map((p) => ({ t: p.tsMs, v: p.payload.drift.psi[k] ?? NaN }));
    clear(charts, 
      lineChart({ title: 'Detection fps', unit: 'fps', series: [{ name: 'fps', points: fps }] }),
      lineChart({ title: 'Stage latency p95', unit: 'ms', series: stageNames.map((n) => ({ name: n, points: stage(n) })) }),
      lineChart({ title: 'Drift (PSI vs baseline)', unit: '', series: ['brightness', 'contrast', 'confidence', 'classMix'].map((k) => ({ name: k, points: psi(k) })) }),
    );
  };
  const drawModels = () => {
    const reported = device.reported;
    clear(modelsBox, 
      h('h2', { id: 'models-h' }, 'Models'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Running'), h('dd', { id: 'device-models' }, modelsText(device.models)),
        h('dt', {}, 'Reported installed'), h('dd', {}, reported ? modelsText(reported.models) : '—'),
        h('dt', {}, 'Previous'), h('dd', { id: 'device-previous' }, previousText(history))),
      history.length ? h('ul', { class: 'plain', 'aria-label': 'Rollouts of this device' }, history.map(({ rollout: r, d }) =>
        h('li', {}, `${r.model} ${d.previousVersion ?? '—'} → ${r.version}: ${d.status}${d.reason ? ` (${d.reason})` : ''} · rollout ${r.id} ${r.state}`))) : null);
  };
  const drawAlerts = () => {
    clear(alertsBox, alerts.length ? alerts.map((a) => alertCard(a, { showDevice: false })) : h('p', { class: 'muted' }, 'No alerts from this device.'));
  };
  drawHead(); drawCharts(); drawModels(); drawAlerts();

  return {
    async onEvent(e) {
      if (e.type === 'rollout') {
        // The event names only the rollout: it concerns this page when it is one of the device's
        // newest rollouts (a new one included).
        const recent = await listRecent();
        if (!recent.some((r) => r.id === e.rolloutId)) return;
        statuses.delete(e.rolloutId);
        history = await loadHistory(recent);
        drawModels();
        return;
      }
      if (e.deviceId !== id) return;
      if (e.type === 'telemetry') {
        const t = await get(`/api/devices/${enc}/telemetry?limit=1`);
        // The newest point may be one the page has (its render, or an earlier event, fetched it).
        const key = (p) => `${p.receivedAtMs}:${p.tsMs}`;
        const have = new Set(points.map(key));
        points = [...points, ...t.items.filter((p) => !have.has(key(p)))].slice(-WINDOW);
        await loadDevice();
        drawHead(); drawCharts();
      } else if (e.type === 'device') {
        await loadDevice();
        drawHead(); drawModels();
      } else if (e.type === 'alert') {
        alerts = (await get(`/api/alerts?deviceId=${enc}&limit=12`)).items;
        drawAlerts();
      }
    },
  };
}

/** What the device ran before its newest rollout (the rollout engine records it per device). */
function previousText(history) {
  const last = history.find((x) => x.d.previousVersion);
  return last ? `${last.rollout.role} ${last.d.previousVersion}` : '—';
}
