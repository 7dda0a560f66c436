// Trace route: where the records of one trace went, from
// GET /debug/route/{trace_id}: {"trace_id", "events": [{at_ms, kind
// (produce|fetch|commit), topic, partition, offset, client_id, group}]},
// shown in time order; an unknown trace is a 404 whose text is shown.

import { h, fill, getJson, errorBox, navigate, fmtTime } from './lib.js';

const TRACE_ID = /^[0-9a-f]{32}$/i;

export function routePage(el, id) {
  const input = h('input', { id: 'trace-id', class: 'wide', value: id, placeholder: '32 hex digits, as in traceparent', spellcheck: 'false' });
  const form = h('form', { class: 'controls box', id: 'route-form' },
    h('label', {}, 'trace id', input), h('button', { type: 'submit', class: 'primary' }, 'Show route'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`#/route/${encodeURIComponent(input.value.trim())}`);
  });
  const body = h('div', { id: 'route' });
  el.append(h('h1', {}, 'Trace route'), form, body);
  if (!id) {
    body.append(h('p', { class: 'muted' }, 'Give a trace id to see where its records were produced, fetched and committed.'));
    return null;
  }
  if (!TRACE_ID.test(id)) {
    body.append(h('div', { class: 'box error', role: 'alert' }, h('h2', {}, 'Not a trace id'), h('pre', {}, `${JSON.stringify(id)} is not 32 hex digits`)));
    return null;
  }
  const ctl = new AbortController();
  body.append(h('p', { class: 'muted' }, 'Looking the trace up…'));
  getJson(`/debug/route/${encodeURIComponent(id)}`, { signal: ctl.signal }).then((r) => {
    const events = [...(r.events || [])].sort((a, b) => a.at_ms - b.at_ms);
    const t0 = events.length ? events[0].at_ms : 0;
    fill(body, 
      h('p', { class: 'muted' }, `trace ${r.trace_id}: ${events.length} events, oldest first`),
      h('table', { id: 'route-events' },
        h('thead', {}, h('tr', {}, ['At', '+ms', 'Kind', 'Topic', 'Partition', 'Offset', 'Client', 'Group']
          .map((c, i) => h('th', { class: i === 1 || i === 4 || i === 5 ? 'num' : '' }, c)))),
        h('tbody', {}, events.map((e) => h('tr', { class: `ev ev-${e.kind}` },
          h('td', {}, fmtTime(e.at_ms)), h('td', { class: 'num' }, e.at_ms - t0), h('td', {}, e.kind),
          h('td', {}, e.topic), h('td', { class: 'num' }, e.partition), h('td', { class: 'num' }, e.offset),
          h('td', {}, e.client_id ?? '—'), h('td', {}, e.group ?? '—'))))));
  }).catch((e) => { if (e.name !== 'AbortError') fill(body, errorBox(e)); });
  return () => ctl.abort();
}
