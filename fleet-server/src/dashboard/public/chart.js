/* global document */
// A small SVG line chart (no library): one or more series over time, min/max labels, an accessible
// name and a text summary of the latest value for screen readers.
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** series: [{name, points: [{t, v}], cls}] */
export function lineChart({ title, unit, series: input, height = 140 }) {
  const width = 600;
  const pad = { l: 52, r: 8, t: 12, b: 18 };
  // Series with no measurable point (e.g. a drift signal not measured yet) are left out.
  const series = input.map((x) => ({ ...x, points: x.points.filter((p) => Number.isFinite(p.v)) })).filter((x) => x.points.length > 0);
  const all = series.flatMap((x) => x.points);
  const fig = h('figure', { class: 'chart' });
  const latest = series.map((x) => `${x.name} ${x.points[x.points.length - 1].v.toFixed(unit ? 1 : 3)}${unit ? ` ${unit}` : ''}`).join(', ') || 'no data';
  fig.append(h('figcaption', {}, title, h('span', { class: 'latest' }, latest)));
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}: ${latest}` });
  fig.append(svg);
  if (all.length === 0) {
    const t = s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty' });
    t.textContent = 'no data yet';
    svg.append(t);
    return fig;
  }
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t), t0 + 1);
  const vMax = Math.max(...all.map((p) => p.v), 1e-6) * 1.1;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - v / vMax) * (height - pad.t - pad.b);
  svg.append(s('line', { x1: pad.l, x2: width - pad.r, y1: y(0), y2: y(0), class: 'axis' }));
  for (const [v, label] of [[0, '0'], [vMax, vMax.toFixed(1)]]) {
    const t = s('text', { x: pad.l - 4, y: y(v) + 5, 'text-anchor': 'end', class: 'tick' });
    t.textContent = label;
    svg.append(t);
  }
  series.forEach((ser, i) => {
    const pts = ser.points;
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    svg.append(s('path', { d, class: `line s${i}` }));
    if (pts.length === 1) svg.append(s('circle', { cx: x(pts[0].t), cy: y(pts[0].v), r: 3, class: `dot s${i}` }));
  });
  if (series.length > 1) fig.append(h('p', { class: 'legend' }, series.map((ser, i) => h('span', { class: `key s${i}` }, ser.name))));
  return fig;
}
