// Consumer groups and their lag: the list with statuses, a group's lag per
// partition with sparklines of its recent lag and consume rate, and the
// stuck message (the record at a partition's committed offset).

import {
  h, fill, getJson, errorBox, badge, statusLegend, fmtTime, fmtAge, fmtRate, path, sparkline, shown, headersList,
} from './lib.js';

/** Polls `load` every `everyMs` (at least a second) until the page goes. */
function poll(load, everyMs) {
  const ctl = new AbortController();
  let timer = null;
  const tick = async () => {
    const next = await load(ctl.signal).catch((e) => (e.name === 'AbortError' ? null : 2000));
    if (!ctl.signal.aborted && next) timer = setTimeout(tick, Math.max(1000, next));
  };
  tick();
  return () => { ctl.abort(); clearTimeout(timer); };
}

export function groupsPage(el) {
  el.append(h('h1', {}, 'Consumer groups'));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Reading the lag view…'));
  el.append(body, statusLegend());
  return poll(async (signal) => {
    try {
      const o = await getJson('/debug/groups', { signal });
      const notes = [
        `evaluated ${fmtTime(o.evaluated_at_ms)}, every ${o.interval_ms} ms, status over ${o.window} evaluations`,
        o.groups_not_followed ? `; ${o.groups_not_followed} groups not followed` : '',
        o.partitions_not_followed ? `; ${o.partitions_not_followed} partitions not followed` : '',
      ].join('');
      fill(body,
        h('p', { class: 'muted' }, notes),
        o.error ? h('div', { class: 'box error' }, h('h2', {}, 'The last evaluation failed'), h('pre', {}, o.error)) : null,
        o.groups.length === 0 ? h('p', {}, 'No consumer group yet.') : h('table', { id: 'groups' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Group'), h('th', {}, 'Protocol'), h('th', {}, 'State'),
            h('th', { class: 'num' }, 'Members'), h('th', { class: 'num' }, 'Partitions'), h('th', { class: 'num' }, 'Lag'), h('th', {}, 'Status'))),
          h('tbody', {}, o.groups.map((g) => h('tr', { 'data-group': g.group },
            h('td', {}, h('a', { href: `#/groups/${encodeURIComponent(g.group)}` }, g.group)),
            h('td', {}, g.protocol), h('td', {}, g.state), h('td', { class: 'num' }, g.members),
            h('td', { class: 'num' }, g.partitions), h('td', { class: 'num lag' }, g.lag), h('td', {}, badge(g.status)))))));
      return o.interval_ms;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      body.replaceChildren(errorBox(e));
      return null;
    }
  }, 2000);
}

export function groupPage(el, group) {
  el.append(h('p', {}, h('a', { href: '#/groups' }, '← all groups')), h('h1', {}, 'Group ', h('code', { id: 'group-name' }, group)));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Reading the lag view…'));
  el.append(body, statusLegend());
  return poll(async (signal) => {
    try {
      const g = await getJson(`/debug/lag/${path(group)}`, { signal });
      fill(body, groupView(group, g));
      return 2000;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      body.replaceChildren(errorBox(e));
      return e.status === 404 ? 2000 : null;
    }
  }, 2000);
}

function groupView(group, g) {
  const hist = g.history || [];
  const members = g.members.map((m) => `${m.client_id} (${m.host}, ${m.partitions} partitions)`).join('; ');
  const cols = ['Topic', 'Partition', 'Committed', 'End offset', 'Lag (records)', 'Lag (time)', 'Produce rate',
    'Consume rate', 'Member / client / host', 'Last consume', 'Last commit', 'Top keys (sampled)', 'Status', 'Stuck message'];
  return [
    h('div', { class: 'box' },
      h('dl', { class: 'kv' },
        h('dt', {}, 'status'), h('dd', { id: 'group-status' }, badge(g.status)),
        h('dt', {}, 'lag'), h('dd', { id: 'group-lag' }, `${g.lag} records`),
        h('dt', {}, 'protocol / state'), h('dd', {}, `${g.protocol} / ${g.state}`),
        h('dt', {}, 'members'), h('dd', {}, members || 'none'),
        h('dt', {}, 'evaluated'), h('dd', {}, fmtTime(g.evaluated_at_ms))),
      h('div', { id: 'sparklines' },
        sparkline(hist.map((p) => p.lag), 'lag'),
        sparkline(hist.map((p) => p.consume_rate), 'consume rate', fmtRate))),
    g.error ? h('div', { class: 'box error' }, h('h2', {}, 'The last evaluation of this group failed'), h('pre', {}, g.error)) : null,
    h('div', { class: 'scroll' }, h('table', { id: 'lag' },
      h('thead', {}, h('tr', {}, cols.map((c, i) => h('th', { class: i >= 1 && i <= 7 ? 'num' : '' }, c)))),
      h('tbody', {}, g.partitions.map((p) => h('tr', { 'data-topic': p.topic, 'data-partition': p.partition },
        h('td', { class: 'topic' }, p.topic), h('td', { class: 'num' }, p.partition),
        h('td', { class: 'num committed' }, p.committed), h('td', { class: 'num end' }, p.end_offset),
        h('td', { class: 'num lag', title: p.lag_exact ? 'read from the log' : 'counted by offsets' }, p.lag_exact ? p.lag : `≈${p.lag}`),
        h('td', { class: 'num' }, fmtAge(p.lag_ms)), h('td', { class: 'num' }, fmtRate(p.produce_rate)),
        h('td', { class: 'num' }, fmtRate(p.consume_rate)),
        h('td', {}, p.member_id ? `${p.client_id} @ ${p.host}` : h('span', { class: 'muted' }, 'no member')),
        h('td', { class: 'last-consume' }, ago(p.last_consume_ms)),
        h('td', { class: 'last-commit' }, ago(p.last_commit_ms)),
        h('td', { class: 'top-keys' }, topKeys(p.top_keys)),
        h('td', { class: 'status' }, badge(p.status), h('div', { class: 'reason' }, p.reason)),
        h('td', {}, p.lag > 0
          ? h('a', { class: 'stuck-link', href: `#/stuck/${path(group, p.topic, p.partition)}` }, `record at ${p.committed}`)
          : h('span', { class: 'muted' }, 'caught up')))))))];
}

/** "3.2 s ago" for a time (ms since the epoch), "not seen" without one. */
function ago(ms) {
  return ms ? `${fmtAge(Math.max(0, Date.now() - ms))} ago` : h('span', { class: 'muted' }, 'not seen');
}

/** The partition's most produced keys (`top_keys` of the lag view): the
 *  first three with their counts (and "±error" where a count may be too
 *  high), the sample's size and bound, every key in the tooltip and, when
 *  there are more than three, in an expandable list. */
function topKeys(t) {
  if (!t || !t.keys || t.keys.length === 0) return h('span', { class: 'muted' }, 'none sampled');
  const one = (k) => h('li', { class: 'top-key', 'data-count': k.count, 'data-error': k.error },
    h('code', { class: 'k' }, k.key), ' ', h('b', { class: 'n' }, k.count), k.error ? h('span', { class: 'err' }, ` ±${k.error}`) : null);
  const all = t.keys.map((k) => `${k.key}: ${k.count}${k.error ? ` ±${k.error}` : ''}`).join('\n');
  return h('div', { title: `${t.sampled} keyed records sampled; a key not listed was seen at most ${t.max_error} times\n${all}` },
    h('ol', { class: 'keys' }, t.keys.slice(0, 3).map(one)),
    h('div', { class: 'reason sampled' }, `of ${t.sampled} sampled, others ≤${t.max_error}`),
    t.keys.length > 3 ? h('details', {}, h('summary', {}, `all ${t.keys.length} keys`), h('ol', { class: 'keys all' }, t.keys.map(one))) : null);
}

export function stuckPage(el, group, topic, partition) {
  el.append(h('p', {}, h('a', { href: `#/groups/${encodeURIComponent(group)}` }, `← group ${group}`)),
    h('h1', {}, 'Stuck message: ', h('code', {}, `${topic}/${partition}`)));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Reading the record…'));
  el.append(body);
  const ctl = new AbortController();
  getJson(`/debug/stuck/${path(group, topic, partition)}`, { signal: ctl.signal }).then((m) => {
    const copy = h('button', { type: 'button', id: 'copy-kcat' }, 'Copy');
    const cmd = h('code', { id: 'kcat' }, m.kcat);
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(m.kcat);
        copy.textContent = 'Copied';
      } catch {
        getSelection().selectAllChildren(cmd);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    });
    body.replaceChildren(h('div', { class: 'box', id: 'stuck' }, h('dl', { class: 'kv' },
      h('dt', {}, 'group'), h('dd', {}, m.group),
      h('dt', {}, 'committed offset'), h('dd', { id: 'stuck-committed' }, m.committed),
      h('dt', {}, 'record offset'), h('dd', { id: 'stuck-offset' }, m.offset,
        m.offset !== m.committed ? h('span', { class: 'fmt' }, 'past the committed offset (a marker, an aborted or a compacted record is skipped)') : null),
      h('dt', {}, 'timestamp'), h('dd', {}, fmtTime(m.timestamp_ms)),
      h('dt', {}, 'age'), h('dd', {}, fmtAge(m.age_ms)),
      h('dt', {}, 'key'), h('dd', { id: 'stuck-key' }, shown(m.key)),
      h('dt', {}, 'headers'), h('dd', { id: 'stuck-headers' }, headersList(m.headers)),
      h('dt', {}, 'value size'), h('dd', { id: 'stuck-size' }, `${m.value.size} bytes`,
        m.restored_large_record ? h('span', { class: 'fmt' }, 'a large record, restored') : null),
      h('dt', {}, 'value'), h('dd', { id: 'stuck-value' }, shown(m.value, { block: true })),
      h('dt', {}, 'kcat'), h('dd', {}, h('div', { class: 'kcat' }, cmd, copy)))));
  }).catch((e) => { if (e.name !== 'AbortError') body.replaceChildren(errorBox(e)); });
  return () => ctl.abort();
}
