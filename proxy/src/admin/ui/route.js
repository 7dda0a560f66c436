// Trace route: where the records of one trace went, from
// GET /debug/route/{trace_id}: {"trace_id", "events": [{at_ms, kind
// (produce|fetch|commit), topic, partition, offset, client_id, group,
// offloaded_bytes}]}, shown in time order with times relative to the first
// event and each kind its colour; an unknown trace is a 404 whose text is
// shown.

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
    const topics = [...new Set(events.map((e) => e.topic))];
    const dash = (v) => v ?? h('span', { class: 'muted' }, '—');
    fill(body,
      h('p', { class: 'muted', id: 'route-summary' },
        `trace ${r.trace_id}: ${events.length} events across ${topics.length} topics (${topics.join(' → ')}), `,
        events.length ? `from ${fmtTime(t0)}, oldest first` : 'none yet'),
      h('table', { id: 'route-events' },
        h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Topic', 'Partition', 'Offset', 'Client', 'Group', 'Offloaded']
          .map((c, i) => h('th', { class: [0, 3, 4, 7].includes(i) ? 'num' : '' }, c)))),
        h('tbody', {}, events.map((e) => h('tr', { class: `ev ev-${e.kind}`, 'data-kind': e.kind },
          h('td', { class: 'num at', title: fmtTime(e.at_ms), 'data-ms': e.at_ms - t0 }, `+${e.at_ms - t0} ms`),
          h('td', {}, h('span', { class: 'kind' }, e.kind)),
          h('td', { class: 'topic' }, e.topic), h('td', { class: 'num partition' }, e.partition),
          h('td', { class: 'num offset' }, e.offset), h('td', { class: 'client' }, dash(e.client_id)),
          h('td', { class: 'group' }, dash(e.group)),
          h('td', { class: 'num' }, e.offloaded_bytes ? `${e.offloaded_bytes} bytes` : dash(null)))))));
  }).catch((e) => { if (e.name !== 'AbortError') fill(body, errorBox(e)); });
  return () => ctl.abort();
}
