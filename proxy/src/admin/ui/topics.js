// Topics: every topic of the cluster and its partition count, each linking
// to its live tail.

import { h, fill, getJson, errorBox } from './lib.js';

export function topicsPage(el) {
  el.append(h('h1', {}, 'Topics'));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Asking the cluster…'));
  el.append(body);
  const ctl = new AbortController();
  getJson('/debug/topics', { signal: ctl.signal }).then((r) => {
    const internal = r.topics.filter((t) => t.internal).length;
    fill(body, 
      h('p', { class: 'muted' }, `${r.topics.length} topics${internal ? ` (${internal} internal)` : ''}. A topic opens its live tail.`),
      h('table', { id: 'topics' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Topic'), h('th', { class: 'num' }, 'Partitions'), h('th', {}, ''))),
        h('tbody', {}, r.topics.map((t) => h('tr', { 'data-topic': t.name },
          h('td', {}, h('a', { href: `#/tail/${encodeURIComponent(t.name)}` }, t.name)),
          h('td', { class: 'num partitions' }, t.partitions),
          h('td', { class: 'muted' }, t.internal ? 'internal' : ''))))));
  }).catch((e) => { if (e.name !== 'AbortError') fill(body, errorBox(e)); });
  return () => ctl.abort();
}
