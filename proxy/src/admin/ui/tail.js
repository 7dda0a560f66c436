// Live tail of a topic: the filters as a form (kept in the hash, so a tail
// can be linked), the server-sent events of /debug/tail/{topic} read with
// fetch() and a stream reader (EventSource cannot send the bearer token),
// the records as rows and the viewer's counters.

import { h, fill, api, errorBox, navigate, fmtTime, shown, headersList } from './lib.js';

/** Rows kept on the page at most; older ones are removed (and counted). */
const MAX_ROWS = 500;
const PARAMS = ['from', 'partition', 'key', 'header', 'contains', 'json', 'filter'];

export function tailPage(el, topic, query) {
  el.append(h('h1', {}, 'Live tail of ', h('code', { id: 'tail-topic' }, topic)));
  const form = controls(topic, query);
  const status = h('div', { id: 'tail-state', class: 'muted' });
  const c = {};
  const counter = (id, label) => {
    c[id] = h('b', { id: `c-${id}` }, '—');
    return h('span', {}, `${label}: `, c[id]);
  };
  const counters = h('div', { class: 'counters box' },
    counter('processed', 'processed'), counter('passed', 'passed the filter'),
    counter('dropped', 'dropped for this viewer'), counter('last', 'last record at'),
    counter('shown', 'records shown'));
  const rows = h('tbody', { id: 'records' });
  const table = h('table', {},
    h('thead', {}, h('tr', {}, ['Partition', 'Offset', 'Timestamp', 'Key', 'Headers', 'Value'].map((t, i) => h('th', { class: i < 2 ? 'num' : '' }, t)))),
    rows);
  const errors = h('div', {});
  el.append(form, errors, status, counters, table);

  const ctl = new AbortController();
  const params = new URLSearchParams();
  for (const k of PARAMS) {
    const v = query.get(k);
    if (v !== null && v !== '') params.set(k, v);
  }
  let received = 0;
  const onEvent = (e) => {
    if (e.type === 'record') {
      received += 1;
      rows.append(recordRow(e));
      while (rows.children.length > MAX_ROWS) rows.firstElementChild.remove();
      c.shown.textContent = rows.children.length < received
        ? `${rows.children.length} (the last ${MAX_ROWS} of ${received})` : String(received);
    } else if (e.type === 'stats') {
      c.processed.textContent = e.processed;
      c.passed.textContent = e.passed;
      c.dropped.textContent = e.dropped;
      c.last.textContent = fmtTime(e.last_at_ms);
      c.shown.textContent = c.shown.textContent === '—' ? '0' : c.shown.textContent;
      status.textContent = `streaming; next offsets: ${e.positions.map(([p, o]) => `${p}:${o}`).join('  ')}`;
    } else if (e.type === 'error') {
      fill(errors, h('div', { class: 'box error', role: 'alert' }, h('h2', {}, 'The tail stopped'), h('pre', {}, e.message)));
    }
  };
  status.textContent = 'connecting…';
  const onOpen = () => { status.textContent = 'streaming; waiting for the first counters'; };
  stream(`/debug/tail/${encodeURIComponent(topic)}?${params}`, ctl.signal, onEvent, onOpen)
    .then(() => { status.textContent = 'the stream ended'; })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      status.textContent = 'not streaming';
      fill(errors, errorBox(e));
    });
  form.querySelector('#tail-stop').addEventListener('click', () => {
    ctl.abort();
    status.textContent = 'stopped';
  });
  return () => ctl.abort();
}

/** Reads a server-sent-events answer; `onEvent` gets each `data:` as JSON. */
async function stream(url, signal, onEvent, onOpen) {
  const resp = await api(url, { signal });
  onOpen();
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}

function recordRow(r) {
  return h('tr', { class: 'rec', 'data-partition': r.partition, 'data-offset': r.offset },
    h('td', { class: 'num' }, r.partition), h('td', { class: 'num' }, r.offset),
    h('td', {}, fmtTime(r.timestamp_ms)), h('td', { class: 'key' }, shown(r.key)),
    h('td', {}, headersList(r.headers)), h('td', { class: 'val' }, shown(r.value, { block: true })));
}

function controls(topic, q) {
  const from = q.get('from') || 'latest';
  const kind = from.split(':')[0];
  const arg = from.includes(':') ? from.slice(from.indexOf(':') + 1) : '';
  const sel = h('select', { id: 'f-from' }, ['latest', 'earliest', 'offset', 'time'].map((k) => h('option', { value: k, selected: k === kind }, k)));
  const offset = h('input', { id: 'f-offset', type: 'number', min: 0, value: kind === 'offset' ? arg : '', placeholder: 'offset' });
  const time = h('input', { id: 'f-time', type: 'datetime-local', step: 1, value: kind === 'time' && arg ? localInput(Number(arg)) : '' });
  const show = () => { offset.hidden = sel.value !== 'offset'; time.hidden = sel.value !== 'time'; };
  sel.addEventListener('change', show);
  show();
  const text = (id, label, placeholder, cls) => h('label', {}, label, h('input', { id: `f-${id}`, value: q.get(id) || '', placeholder, class: cls }));
  const err = h('span', { class: 'muted', id: 'f-error' });
  const form = h('form', { class: 'controls box', id: 'tail-form' },
    h('label', {}, 'from', h('span', {}, sel, ' ', offset, time)),
    h('label', {}, 'partition', h('input', { id: 'f-partition', type: 'number', min: 0, value: q.get('partition') || '', placeholder: 'all' })),
    text('key', 'key (exactly)', 'any'), text('header', 'header (name or name=value)', 'any'),
    text('contains', 'value contains', 'any'), text('json', 'JSON field (path=value)', 'order.status=paid'),
    text('filter', 'filter (CEL expression)', 'sent as filter= when given', 'wide'),
    h('button', { type: 'submit', class: 'primary', id: 'tail-start' }, 'Start'),
    h('button', { type: 'button', id: 'tail-stop' }, 'Stop'), err);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (sel.value === 'offset') {
      if (offset.value === '') { err.textContent = 'from offset: give an offset'; return; }
      p.set('from', `offset:${offset.value}`);
    } else if (sel.value === 'time') {
      const ms = new Date(time.value).getTime();
      if (!Number.isFinite(ms)) { err.textContent = 'from time: give a date and time'; return; }
      p.set('from', `time:${ms}`);
    } else p.set('from', sel.value);
    for (const k of ['partition', 'key', 'header', 'contains', 'json', 'filter']) {
      const v = form.querySelector(`#f-${k}`).value;
      // Only what is given is sent (filter= in particular).
      if (v.trim() !== '') p.set(k, k === 'filter' ? v.trim() : v);
    }
    navigate(`#/tail/${encodeURIComponent(topic)}?${p}`);
  });
  return form;
}

/** ms since the epoch → the value of a datetime-local input (local time). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return Number.isFinite(d.getTime()) ? d.toISOString().slice(0, 19) : '';
}
