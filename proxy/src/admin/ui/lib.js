// Shared by the pages: the debug API client (with the bearer token), DOM
// building (text only: record keys and values are never parsed as HTML)
// and formatting.

const TOKEN_KEY = 'strait.debug.token';
// The admin listener's root: the page is served at <root>/ui/.
const ROOT = new URL('..', document.baseURI);

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set(t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    window.dispatchEvent(new Event('strait-rerender'));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    window.dispatchEvent(new Event('strait-rerender'));
  },
};

/** An answer of the debug API that is not 2xx: its status and text. */
export class ApiError extends Error {
  constructor(status, statusText, text) {
    super(`${status} ${statusText}: ${text}`);
    this.status = status;
    this.statusText = statusText;
    this.text = text;
  }
}

/** GET a debug API path (starting with /debug/); the bearer token goes
 *  with every request when one is set. Throws ApiError on a non-2xx. */
export async function api(path, { signal } = {}) {
  const headers = {};
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp;
  try {
    resp = await fetch(new URL(path.replace(/^\//, ''), ROOT), { headers, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'no answer', `the admin listener did not answer: ${e.message}`);
  }
  if (!resp.ok) {
    const text = (await resp.text().catch(() => '')).trim();
    throw new ApiError(resp.status, resp.statusText, text);
  }
  return resp;
}

export async function getJson(path, opts) {
  return (await api(path, opts)).json();
}

/** `/a/b` with each segment URL-encoded. */
export function path(...segments) {
  return segments.map((s) => encodeURIComponent(String(s))).join('/');
}

/** Builds an element: attrs (class, href, id, title, type, value, data-*,
 *  on<event>), children as nodes or strings (text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces `el`'s children; null, undefined and false are left out. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** Sets location.hash, or re-renders when it is already that. */
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new Event('strait-rerender'));
  else location.hash = hash;
}

export function badge(status) {
  return h('span', { class: `badge s-${status}`, 'data-status': status }, status);
}

export function statusLegend() {
  return h('div', { class: 'legend' }, 'Status: ',
    ['OK', 'WARN', 'STALL', 'STOP', 'REWIND', 'ERR'].map((s) => [badge(s), ' ']),
    ' — OK green, WARN amber (falling behind), STALL/STOP red (not moving; a member owns the partition / nobody does), REWIND purple (went back), ERR grey (committed offset outside the log).');
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  return new Date(Number(ms)).toISOString().replace('T', ' ');
}

export function fmtAge(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function fmtRate(r) {
  return `${Number(r || 0).toFixed(2)}/s`;
}

/** A key, value or header value as the API shows it ({format, text, size,
 *  truncated}): "hidden" when a policy hides it, never an empty value. */
export function shown(s, { block = false } = {}) {
  if (!s || s.format === 'null') return h('span', { class: 'null-value', 'data-format': 'null' }, 'null');
  if (s.format === 'hidden') {
    return h('span', { class: 'hidden-value', 'data-format': 'hidden' }, `hidden (${s.size} bytes, by policy)`);
  }
  const more = s.truncated ? ` — first ${s.text.length} of ${s.size} bytes` : '';
  const note = s.format === 'json' || s.format === 'text' ? more : ` ${s.format}${more}`;
  const body = block || s.format === 'json' ? h('pre', {}, s.text) : h('span', {}, s.text);
  return h('span', { class: 'value', 'data-format': s.format }, body, note ? h('span', { class: 'fmt' }, note) : null);
}

export function headersList(headers) {
  if (!headers || headers.length === 0) return h('span', { class: 'muted' }, '—');
  return h('div', {}, headers.map(([name, v]) => h('div', { class: 'header' }, h('code', {}, name), ': ', shown(v))));
}

/** An error box; a 401 or 403 also asks for the token. */
export function errorBox(err) {
  if (!(err instanceof ApiError)) {
    return h('div', { class: 'box error', role: 'alert' }, h('h2', {}, 'Error'), h('pre', {}, String(err && err.message || err)));
  }
  const refused = err.status === 401 || err.status === 403;
  const box = h('div', { class: `box ${refused ? 'refused' : 'error'}`, role: 'alert', 'data-status': err.status },
    h('h2', {}, refused ? `Refused: ${err.status} ${err.statusText}` : `${err.status} ${err.statusText}`),
    h('pre', { class: 'answer' }, err.text || '(the answer has no text)'));
  if (refused) box.append(tokenForm());
  return box;
}

export function tokenForm() {
  const input = h('input', { type: 'password', id: 'token', class: 'wide', autocomplete: 'off', placeholder: 'bearer token' });
  return h('form', {
    class: 'inline', id: 'token-form',
    onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) token.set(input.value.trim()); },
  },
  h('label', {}, 'The debug API token (kept in this tab only, sessionStorage)', input),
  h('button', { type: 'submit', class: 'primary' }, 'Use token'));
}

/** An inline SVG sparkline of `values` (oldest first). */
export function sparkline(values, label, format = String) {
  const NS = 'http://www.w3.org/2000/svg';
  const w = 180, hgt = 36, pad = 3;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', hgt);
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('data-points', values.length);
  svg.setAttribute('role', 'img');
  const title = document.createElementNS(NS, 'title');
  title.textContent = `${label}: ${values.map(format).join(', ')}`;
  svg.append(title);
  const max = Math.max(...values, 0), min = Math.min(...values, 0);
  const span = max - min || 1;
  const xy = values.map((v, i) => [
    pad + (values.length === 1 ? (w - 2 * pad) : (i * (w - 2 * pad)) / (values.length - 1)),
    hgt - pad - ((v - min) * (hgt - 2 * pad)) / span,
  ]);
  if (xy.length > 1) {
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '));
    svg.append(line);
  }
  if (xy.length) {
    const [x, y] = xy[xy.length - 1];
    const dot = document.createElementNS(NS, 'circle');
    dot.setAttribute('cx', x.toFixed(1));
    dot.setAttribute('cy', y.toFixed(1));
    dot.setAttribute('r', 2.5);
    svg.append(dot);
  }
  const last = values.length ? format(values[values.length - 1]) : '—';
  return h('span', { class: 'spark', 'data-spark': label }, h('span', { class: 'muted' }, label), svg, h('b', {}, last));
}
