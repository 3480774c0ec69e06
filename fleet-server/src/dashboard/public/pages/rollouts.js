/* global document, setTimeout, clearTimeout */
// Rollouts: create one, watch its waves progress per device, pause, resume, abort, roll back.
// Progress is refetched on rollout and device events, and every second while a rollout runs: a
// rollout event comes only from the server process that changed the rollout, so a page served by
// another replica (replicas share the database, not their events) still follows by the poll.
import { clear, h, requestOrder, time } from '../dom.js';

const TARGETS = ['onnx-cpu', 'onnx-trt', 'tflite', 'coreml'];

export async function render(page, _params, { get, post }) {
  page.append(h('h1', {}, 'Rollouts'));
  let models;
  try {
    models = (await get('/api/models')).items;
  } catch (err) {
    page.append(h('p', { class: 'error', role: 'alert' }, err.status === 404 ? 'This fleet server has no rollout support (GET /api/models is missing).' : err.message));
    return null;
  }
  const versions = models.map((m) => `${m.name}@${m.version}`);
  const model = h('select', { id: 'ro-model', name: 'model', required: true }, versions.slice().reverse().map((v) => h('option', { value: v }, v)));
  const role = h('input', { id: 'ro-role', name: 'role', value: 'detector', required: true });
  const platform = h('select', { id: 'ro-platform', name: 'platform' }, TARGETS.map((t) => h('option', { value: t }, t)));
  // `pattern` is compiled with the `v` flag: a literal `-` in a class must be escaped.
  const target = h('input', { id: 'ro-target', name: 'target', value: 'all', required: true, pattern: '^(all|group:[A-Za-z0-9_.\\-]+|devices:[A-Za-z0-9_,\\-]+)$', 'aria-describedby': 'ro-target-help' });
  const waves = h('input', { id: 'ro-waves', name: 'waves', value: '5,25,100', required: true, pattern: '^\\s*\\d+(\\.\\d+)?(\\s*,\\s*\\d+(\\.\\d+)?)*\\s*$' });
  const health = h('input', { id: 'ro-health', name: 'health', type: 'number', min: '0', max: '3600', step: '0.1', placeholder: 'agent default', 'aria-describedby': 'ro-health-help' });
  const msg = h('p', { class: 'error', role: 'alert' });
  const field = (id, label, input, help) => h('div', { class: 'field' }, h('label', { for: id }, label), input, help ? h('small', { id: `${id}-help` }, help) : null);
  const form = h('form', { class: 'create', 'aria-label': 'New rollout' },
    field('ro-model', 'Model version', model),
    field('ro-role', 'Role', role),
    field('ro-platform', 'Artifact target', platform),
    field('ro-target', 'Devices', target, 'all, group:NAME or devices:id1,id2'),
    field('ro-waves', 'Waves (cumulative %)', waves),
    field('ro-health', 'Health window (s)', health, 'after each swap; blank: the agent default'),
    h('button', { type: 'submit' }, 'Start rollout'), msg);
  const list = h('div', { id: 'rollout-list' });
  // Refresh failures; an action's failure shows on the card whose button was clicked (the form's
  // message sits in a panel the operator may have collapsed).
  const listError = h('p', { class: 'error', role: 'alert', id: 'rollout-list-error' });
  page.append(h('details', { class: 'panel', open: true }, h('summary', {}, 'New rollout'), form), h('h2', {}, 'All rollouts'), listError, list);
  /** rollout id → why the last action clicked on its card failed; all cleared by the next action that succeeds. */
  const failures = new Map();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const [name, version] = model.value.split('@');
    try {
      await post('/api/rollouts', {
        model: name, version, role: role.value.trim(), platform: platform.value, target: target.value.trim(),
        waves: waves.value.split(',').map((x) => Number(x.trim())),
        // No waveTimeoutMs: the server's default for the artifact target applies (45 min for onnx-trt,
        // whose first load builds a TensorRT engine; 15 min for the others).
        ...(health.value !== '' ? { gate: { maxFailures: 0, healthWindowMs: Math.round(Number(health.value) * 1000) } } : {}),
      });
      await refresh();
    } catch (err) {
      msg.textContent = `Could not start the rollout: ${err.message}`;
    }
  });
  if (versions.length === 0) {
    form.querySelector('button').disabled = true;
    msg.textContent = 'No model versions in the registry yet.';
  }

  let timer = null;
  /** Last status of each rollout: a poll refetches only the running ones (a finished one no longer changes by itself). */
  const known = new Map();
  /**
   * Rollouts a device or rollout event touched (their per-device versions and phases changed even
   * when their state did not) → requests begun when the event came: only the answer of a request
   * begun after it holds the change.
   */
  const stale = new Map();
  // Refreshes overlap (the one from the stream's opening and one for an event): an older answer is dropped.
  const order = requestOrder();
  let eventTimer = null;
  // Never rejects: a failure is shown above the list and retried while the page is open.
  const refresh = async ({ poll = false } = {}) => {
    const req = order.begin();
    let statuses;
    try {
      const items = (await get('/api/rollouts')).items.slice().reverse();
      statuses = await Promise.all(items.map((r) => (poll && r.state !== 'running' && known.get(r.id)?.state === r.state && !stale.has(r.id)
        ? known.get(r.id) : get(`/api/rollouts/${r.id}`))));
      if (!req.current()) return;
      for (const st of statuses) {
        known.set(st.id, st);
        if (stale.get(st.id) < req.n) stale.delete(st.id);
      }
    } catch (err) {
      if (!req.current()) return;
      clearTimeout(timer);
      if (err.status === 401 || !page.isConnected) return; // api() went back to the login form
      listError.textContent = `Could not refresh the rollouts: ${err.message}`;
      if (document.visibilityState !== 'hidden') timer = setTimeout(() => { void refresh(); }, 5000);
      return;
    }
    listError.textContent = '';
    clear(list, statuses.length ? statuses.map((st) => card(st, act, failures.get(st.id))) : h('p', { class: 'muted' }, 'No rollouts yet.'));
    clearTimeout(timer);
    if (!page.isConnected) return;
    // A hidden tab does not poll; the shell calls refresh() when it is shown again.
    if (document.visibilityState !== 'hidden' && statuses.some((s) => s.state === 'running')) timer = setTimeout(() => { void refresh({ poll: true }); }, 1000);
  };
  const act = async (id, action, text) => {
    try {
      await post(`/api/rollouts/${id}/${action}`);
      failures.clear();
    } catch (err) {
      if (err.status === 401) return;
      failures.set(id, `${text} failed: ${err.message}`);
    }
    await refresh();
  };
  await refresh();
  return {
    refresh,
    onEvent(e) {
      if (e.type !== 'device' && e.type !== 'rollout') return;
      // A rollout event names the one rollout the server changed (a new one is not known yet: a
      // refresh fetches it anyway); a device event, every rollout that includes the device.
      if (e.type === 'rollout') stale.set(e.rolloutId, order.started);
      else for (const st of known.values()) if (st.devices?.some((d) => d.deviceId === e.deviceId)) stale.set(st.id, order.started);
      // Events come in bursts (a wave of devices reporting): one refresh for the burst.
      eventTimer ??= setTimeout(() => { eventTimer = null; void refresh({ poll: true }); }, 300);
    },
  };
}

function card(st, act, failure) {
  const t = st.totals;
  const pct = t.devices ? Math.round((t.succeeded / t.devices) * 100) : 0;
  // CSSOM, not a style attribute: the CSP allows no inline styles.
  const bar = h('span', { class: 'bar' });
  bar.style.width = `${pct}%`;
  const label = `${st.model} ${st.version}`;
  const btn = (action, text, enabled) => h('button', { type: 'button', class: 'secondary', disabled: !enabled, 'aria-label': `${text} rollout ${label}`, onclick: () => act(st.id, action, text) }, text);
  return h('section', { class: 'rollout', 'data-rollout': st.id, 'aria-label': `Rollout ${label}` },
    h('header', {},
      h('h3', {}, label, ' ', h('span', { class: `badge ${st.state === 'completed' ? 'ok' : st.state === 'running' ? 'run' : 'warn'}`, 'data-state': st.state }, st.state)),
      h('div', { class: 'actions' },
        btn('pause', 'Pause', st.state === 'running'),
        btn('resume', 'Resume', st.state === 'paused'),
        btn('abort', 'Abort', st.state === 'running' || st.state === 'paused'),
        btn('rollback', 'Roll back', st.state !== 'rolled-back'))),
    h('p', { class: 'error', role: 'alert' }, failure),
    h('p', { class: 'muted' }, `${st.id} · ${st.role} on ${st.platform} · target ${st.target} · waves ${st.waves.join(' → ')}% · wave ${Math.min(st.wave + 1, st.waves.length)} of ${st.waves.length} · ${time(st.createdAtMs)}${st.reason ? ` · ${st.reason}` : ''}`),
    h('div', { class: 'progress', role: 'progressbar', 'aria-label': `Progress of ${label}`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct },
      bar, h('span', { class: 'pct' }, `${pct}%`)),
    h('p', { class: 'muted' }, `${t.succeeded}/${t.devices} succeeded · ${t.assigned} installing · ${t.pending} pending · ${t.failed} failed · ${t.rolledBack} rolled back${t.notSent ? ` · ${t.notSent} never sent` : ''}`),
    h('div', { class: 'table-wrap' }, h('table', { 'aria-label': `Devices of ${label}` },
      h('thead', {}, h('tr', {}, ['Device', 'Wave', 'Status', 'Reported', 'Previous'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, st.devices.map((d) => h('tr', {},
        h('td', { 'data-label': 'Device' }, h('a', { href: `#/devices/${encodeURIComponent(d.deviceId)}` }, d.deviceId)),
        h('td', { 'data-label': 'Wave' }, String(d.wave + 1)),
        h('td', { 'data-label': 'Status' }, d.status, d.reason ? ` (${d.reason})` : ''),
        h('td', { 'data-label': 'Reported' }, `${d.reported.version ?? '—'}${d.reported.phase ? ` · ${d.reported.phase}` : ''}`),
        h('td', { 'data-label': 'Previous' }, d.previousVersion ?? '—')))))));
}
