// One alert as a card: the redacted snapshot (served by the API with the session cookie), rule,
// class, score, device and time.
import { h, isoTime, time } from '../dom.js';

export function alertCard(a, { showDevice = true } = {}) {
  const al = a.alert;
  const snap = a.snapshot && 'contentType' in a.snapshot
    ? h('img', { src: `/api/alerts/${encodeURIComponent(a.deviceId)}/${encodeURIComponent(a.id)}/snapshot`, alt: `Redacted snapshot: ${al.class} at ${al.rule}`, loading: 'lazy', width: 160, height: 120 })
    : h('div', { class: 'nosnap', role: 'img', 'aria-label': 'No snapshot' }, 'no snapshot');
  return h('article', { class: 'alert-card', 'data-alert': a.id, 'aria-label': `Alert ${al.rule} ${al.class} on ${a.deviceId}` },
    snap,
    h('div', { class: 'meta' },
      h('strong', {}, `${al.class} · ${al.rule}`),
      h('span', {}, `score ${al.score.toFixed(2)}${al.zone ? ` · zone ${al.zone}` : ''}`),
      showDevice ? h('a', { href: `#/devices/${encodeURIComponent(a.deviceId)}` }, `${a.deviceId} / ${al.camera}`) : h('span', {}, al.camera),
      h('time', { datetime: isoTime(a.tsMs) }, time(a.tsMs))));
}
