// The admin web UI in Debian's headless chromium, driven by playwright-core.
// Run by integration/tests/ui.rs with UI_TEST, a JSON object: the admin URL,
// the token, the topic, group and the numbers the pages must show. Prints
// "ok - ..." / "not ok - ..." per check, the screenshots' paths, and
// "KCAT <command>" (the stuck page's kcat command, which the Rust test runs);
// exits 1 on any mismatch.

import { chromium } from 'playwright-core';
import path from 'node:path';

const X = JSON.parse(process.env.UI_TEST || 'null');
if (!X) {
  console.error('usage: UI_TEST=<json> node ui_test.mjs (integration/tests/ui.rs sets it)');
  process.exit(2);
}
const TIMEOUT_MS = 15000;
let failures = 0;

function check(what, ok, detail = '') {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}${ok || !detail ? '' : `: ${detail}`}`);
  if (!ok) failures += 1;
}

/** JSON with object keys sorted, so equal values print equal. */
function canon(v) {
  return JSON.stringify(v, (_, x) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
}

function eq(what, got, want) {
  check(what, canon(got) === canon(want), `got ${canon(got)}, want ${canon(want)}`);
}

/** Evaluates `fn(arg)` in the page until `until(value)` holds or the
 *  timeout passes; returns the last value either way (then checked). */
async function settle(page, fn, arg, until) {
  const deadline = Date.now() + TIMEOUT_MS;
  let v;
  for (;;) {
    v = await page.evaluate(fn, arg);
    if (until(v) || Date.now() > deadline) return v;
    await page.waitForTimeout(100);
  }
}

/** No stray "null" or "undefined" where a missing field was rendered. */
async function noStrays(page, what) {
  const lines = await page.evaluate(() => document.querySelector('#page').innerText.split('\n').map((l) => l.trim()));
  const strays = lines.filter((l) => l === 'null' || l.includes('undefined') || l.includes('NaN'));
  eq(`${what}: no stray null, undefined or NaN`, strays, []);
}

async function shot(page, name) {
  const file = path.join(X.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

async function refusal(page, what, status, says) {
  const box = await settle(page, () => {
    const b = document.querySelector('.refused');
    return b && { status: b.dataset.status, text: b.textContent };
  }, null, (v) => v && v.status === String(status));
  check(`${what}: the page shows the ${status} refusal`, box && box.status === String(status) && box.text.includes(says),
    JSON.stringify(box));
  const leak = await page.evaluate((x) => {
    // The heading names what the URL names; the rest must hold nothing.
    const rest = document.querySelector('#page').cloneNode(true);
    rest.querySelector('h1')?.remove();
    const body = rest.textContent;
    return {
      rows: document.querySelectorAll('#records tr, #lag tbody tr, #groups tbody tr, #topics tbody tr').length,
      topic: body.includes(x.topic), late: body.includes('late-'), stuck: !!document.querySelector('#stuck'),
    };
  }, X);
  eq(`${what}: no data without the token`, leak, { rows: 0, topic: false, late: false, stuck: false });
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
// `text(selector)` in the page, for the checks' evaluations.
await context.addInitScript(() => { window.text = (sel) => document.querySelector(sel)?.textContent ?? null; });
const page = await context.newPage();
page.setDefaultTimeout(TIMEOUT_MS);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
const tailRequests = [];
page.on('request', (r) => { if (r.url().includes('/debug/tail/')) tailRequests.push(new URL(r.url())); });
const ui = (hash) => `${X.admin}/ui/#${hash}`;
const tp = encodeURIComponent(X.topic);

try {
  // Without the token: refusals, and nothing else.
  await page.goto(`${X.admin}/`);
  eq('/ redirects to the UI', new URL(page.url()).pathname, '/ui/');
  await refusal(page, 'topics without a token', 401, 'requires Authorization: Bearer');
  await shot(page, 'refused');
  await page.goto(ui(`/tail/${tp}?from=earliest`));
  await refusal(page, 'tail without a token', 401, 'requires Authorization: Bearer');
  await page.goto(ui(`/groups/${encodeURIComponent(X.group)}`));
  await refusal(page, 'group lag without a token', 401, 'requires Authorization: Bearer');
  await page.fill('#token', 'not-the-token-not-the-token');
  await page.click('#token-form button[type=submit]');
  await refusal(page, 'group lag with a wrong token', 403, "not the debug API's token");

  // The token, through the form.
  await page.goto(ui('/topics'));
  await page.fill('#token', X.token);
  await page.click('#token-form button[type=submit]');
  const topics = await settle(page, (x) => {
    const n = (t) => document.querySelector(`#topics tr[data-topic="${CSS.escape(t)}"] .partitions`)?.textContent;
    return [n(x.topic), n(x.secret_topic)];
  }, X, (v) => v[0] != null && v[1] != null);
  eq('topics: partition counts', topics, [String(X.topic_partitions), '1']);
  eq('the token is kept in sessionStorage', await page.evaluate(() => sessionStorage.getItem('strait.debug.token')), X.token);
  await noStrays(page, 'topics');
  await shot(page, 'topics');

  // Live tail from the start: every record, by partition, and the counters.
  await page.click(`#topics tr[data-topic="${X.topic}"] a`);
  await page.waitForSelector('#tail-form');
  await page.selectOption('#f-from', 'earliest');
  await page.click('#tail-start');
  const total = Object.values(X.records).reduce((a, b) => a + b, 0);
  const all = await settle(page, () => {
    const rows = [...document.querySelectorAll('#records tr.rec')];
    const by = {};
    for (const r of rows) (by[r.dataset.partition] ||= []).push(Number(r.dataset.offset));
    return {
      rows: rows.length, by, processed: text('#c-processed'), passed: text('#c-passed'), dropped: text('#c-dropped'),
      shown: text('#c-shown'), first: rows.find((r) => r.dataset.partition === '0' && r.dataset.offset === '3')?.innerText,
    };
  }, null, (v) => v.rows >= total && v.processed === String(total));
  eq('tail from earliest: records shown', all.rows, total);
  eq('tail from earliest: counters processed/passed/dropped/shown',
    [all.processed, all.passed, all.dropped, all.shown], [String(total), String(total), '0', String(total)]);
  for (const [p, n] of Object.entries(X.records)) {
    eq(`tail from earliest: offsets of partition ${p}`, all.by[p], [...Array(n).keys()]);
  }
  check('tail: a record shows its key, header and pretty-printed JSON value',
    !!all.first && all.first.includes('hot') && all.first.includes('source: ui-test') && all.first.includes('"id": 3'),
    all.first);
  await noStrays(page, 'tail');
  await shot(page, 'tail');

  // A value filter: only the late records pass, all are processed.
  await page.fill('#f-contains', 'late');
  await page.click('#tail-start');
  const late = await settle(page, () => ({
    rows: [...document.querySelectorAll('#records tr.rec')].map((r) => `${r.dataset.partition}:${r.dataset.offset}`),
    processed: text('#c-processed'), passed: text('#c-passed'),
  }), null, (v) => v.rows.length >= X.late_records && v.processed === String(total));
  eq('tail contains=late: counters processed/passed', [late.processed, late.passed], [String(total), String(X.late_records)]);
  // The late records are the last of each partition.
  const lateWant = Object.entries(X.partitions.reduce((o, p) => ({ ...o, [p.partition]: [p.committed, p.end] }), {}))
    .flatMap(([p, [from, to]]) => Array.from({ length: to - from }, (_, i) => `${p}:${from + i}`));
  eq('tail contains=late: exactly the late records', [...late.rows].sort(), lateWant.sort());
  await shot(page, 'tail-filtered');
  const before = tailRequests.length;
  check('tail: no filter= when the input was empty',
    before >= 2 && tailRequests.every((u) => !u.searchParams.has('filter')), tailRequests.map(String).join(' '));

  // A CEL filter on a JSON field, typed into the form: exactly the matching
  // records show (by offset and value), and the counters agree.
  await page.goto(ui(`/tail/${encodeURIComponent(X.cel.topic)}`));
  await page.waitForSelector('#tail-form');
  await page.selectOption('#f-from', 'earliest');
  await page.fill('#f-filter', X.cel.filter);
  await page.click('#tail-start');
  const cel = await settle(page, () => ({
    rows: [...document.querySelectorAll('#records tr.rec')].map((r) => ({
      offset: Number(r.dataset.offset), value: JSON.parse(r.querySelector('.val pre').textContent),
    })),
    processed: text('#c-processed'), passed: text('#c-passed'), dropped: text('#c-dropped'), shown: text('#c-shown'),
  }), null, (v) => v.processed === String(X.cel.records) && v.rows.length >= X.cel.matches.length);
  eq('tail CEL filter: the filter is sent as filter=', tailRequests.slice(before).map((u) => u.searchParams.get('filter')).slice(-1),
    [X.cel.filter]);
  eq('tail CEL filter: exactly the matching records, by offset and value',
    [...cel.rows].sort((a, b) => a.offset - b.offset), X.cel.matches);
  eq('tail CEL filter: counters processed/passed/dropped/shown', [cel.processed, cel.passed, cel.dropped, cel.shown],
    [String(X.cel.records), String(X.cel.matches.length), '0', String(X.cel.matches.length)]);
  await noStrays(page, 'tail CEL filter');
  await shot(page, 'tail-cel');

  // A topic whose policy hides values: "hidden", never the value.
  await page.goto(ui(`/tail/${encodeURIComponent(X.secret_topic)}?from=earliest`));
  const hidden = await settle(page, () => ({
    values: [...document.querySelectorAll('#records tr.rec .val')].map((v) => v.textContent),
    keys: [...document.querySelectorAll('#records tr.rec .key')].map((v) => v.textContent),
  }), null, (v) => v.values.length >= X.secret_records);
  eq('hidden topic: rows', hidden.values.length, X.secret_records);
  check('hidden topic: values show as hidden', hidden.values.length > 0 && hidden.values.every((v) => v.startsWith('hidden (')),
    JSON.stringify(hidden.values));
  check('hidden topic: no value text anywhere', !(await page.evaluate(() => document.body.innerText.includes('"id"'))));
  eq('hidden topic: keys still show', hidden.keys, ['s-0-0', 's-0-1']);
  await shot(page, 'tail-hidden');

  // Groups: the list, then the group's lag per partition.
  await page.goto(ui('/groups'));
  const row = await settle(page, (g) => {
    const r = document.querySelector(`#groups tr[data-group="${CSS.escape(g)}"]`);
    return r && { lag: r.querySelector('.lag').textContent, status: r.querySelector('.badge').textContent };
  }, X.group, (v) => v);
  eq('groups: the group\'s lag and status', row, { lag: String(X.group_lag), status: X.group_status });
  const colour = await page.evaluate(() => getComputedStyle(document.querySelector('#groups .badge.s-STOP')).backgroundColor);
  eq('groups: STOP is red', colour, 'rgb(197, 34, 31)');
  await noStrays(page, 'groups');
  await shot(page, 'groups');
  await page.click(`#groups tr[data-group="${X.group}"] a`);
  const lag = await settle(page, () => ({
    rows: [...document.querySelectorAll('#lag tbody tr')].map((r) => ({
      partition: Number(r.dataset.partition), committed: Number(r.querySelector('.committed').textContent),
      end: Number(r.querySelector('.end').textContent), lag: Number(r.querySelector('.lag').textContent),
    })),
    status: text('#group-status'), total: text('#group-lag'),
    spark: Number(document.querySelector('[data-spark="lag"] svg')?.dataset.points ?? 0),
    rate: Number(document.querySelector('[data-spark="consume rate"] svg')?.dataset.points ?? 0),
  }), null, (v) => v.rows.length >= X.partitions.length);
  eq('group: committed, end offset and lag per partition', lag.rows, X.partitions);
  // Top keys and the last consume, per partition, as the lag view has them.
  const seen = await page.evaluate(() => [...document.querySelectorAll('#lag tbody tr')].map((r) => {
    const cell = r.querySelector('.top-keys');
    return {
      partition: Number(r.dataset.partition),
      top3: [...cell.querySelectorAll('ol.keys:not(.all) li')].map((li) => ({
        key: li.querySelector('.k').textContent, count: Number(li.querySelector('.n').textContent),
        error: Number(li.querySelector('.err')?.textContent.replace(/[^0-9]/g, '') ?? 0),
      })),
      all: [...cell.querySelectorAll('ol.keys.all li .k')].map((k) => k.textContent),
      sampled: cell.querySelector('.sampled')?.textContent ?? null,
      tooltip: cell.querySelector('[title]')?.title ?? '',
      last_consume: r.querySelector('.last-consume').textContent,
    };
  }));
  for (const o of X.observed) {
    const r = seen.find((x) => x.partition === o.partition);
    const t = o.top_keys;
    eq(`group: partition ${o.partition}'s top 3 keys with counts and errors`, r.top3, t.keys.slice(0, 3));
    eq(`group: partition ${o.partition}'s keys beyond the top 3 in the expandable list`, r.all,
      t.keys.length > 3 ? t.keys.map((k) => k.key) : []);
    eq(`group: partition ${o.partition}'s sample size and bound`, r.sampled, `of ${t.sampled} sampled, others ≤${t.max_error}`);
    check(`group: partition ${o.partition}'s tooltip lists every key`,
      t.keys.every((k) => r.tooltip.includes(`\n${k.key}: ${k.count}`)), r.tooltip);
    check(`group: partition ${o.partition}'s last consume`,
      o.last_consume_ms === null ? r.last_consume === 'not seen' : / ago$/.test(r.last_consume), `${r.last_consume} for ${o.last_consume_ms}`);
  }
  const top = seen.find((x) => x.partition === X.top_key.partition)?.top3[0];
  eq('group: the most produced key and its exact count', top && [top.key, top.count, top.error],
    [X.top_key.key, X.top_key.count, 0]);
  eq('group: status and total lag', [lag.status, lag.total], [X.group_status, `${X.group_lag} records`]);
  check('group: sparklines of lag and consume rate over evaluations', lag.spark >= 2 && lag.rate === lag.spark,
    `${lag.spark} and ${lag.rate} points`);
  await noStrays(page, 'group');
  await shot(page, 'group');

  // The stuck message of partition 0.
  await page.click(`#lag tr[data-partition="${X.stuck.partition}"] .stuck-link`);
  const stuck = await settle(page, () => ({
    offset: text('#stuck-offset'), key: text('#stuck-key'), value: text('#stuck-value'), kcat: text('#kcat'),
    headers: text('#stuck-headers'),
  }), null, (v) => v.kcat);
  check('stuck: the record offset', (stuck.offset || '').startsWith(String(X.stuck.offset)), stuck.offset);
  eq('stuck: the key', stuck.key, X.stuck.key);
  check('stuck: the value', (stuck.value || '').includes(X.stuck.value), stuck.value);
  eq('stuck: the headers', stuck.headers, 'source: ui-test');
  check('stuck: the kcat command', (stuck.kcat || '').startsWith(X.stuck.kcat_prefix), stuck.kcat);
  await noStrays(page, 'stuck');
  await shot(page, 'stuck');
  if (stuck.kcat) console.log(`KCAT ${stuck.kcat}`);

  // Trace route: an unknown trace's 404 is shown as such.
  await page.goto(ui('/route'));
  await page.fill('#trace-id', '0123456789abcdef0123456789abcdef');
  await page.click('#route-form button[type=submit]');
  const route = await settle(page, () => {
    const b = document.querySelector('#route [role=alert]');
    return b && { status: b.dataset.status, title: b.querySelector('h2').textContent };
  }, null, (v) => v);
  check('route: an unknown trace shows the 404', route && route.status === '404' && route.title.startsWith('404'),
    JSON.stringify(route));
  await shot(page, 'route-unknown');

  // The traced record's route: the rows as the API has them, in time order.
  await page.goto(ui(`/route/${X.route.trace}`));
  const rendered = await settle(page, () => [...document.querySelectorAll('#route-events tbody tr')].map((r) => ({
    ms: Number(r.querySelector('.at').dataset.ms), at: r.querySelector('.at').textContent, kind: r.dataset.kind,
    label: r.querySelector('.kind').textContent, topic: r.querySelector('.topic').textContent,
    partition: Number(r.querySelector('.partition').textContent), offset: Number(r.querySelector('.offset').textContent),
    client: r.querySelector('.client').textContent, group: r.querySelector('.group').textContent,
    colour: getComputedStyle(r.querySelector('.kind')).backgroundColor,
  })), null, (v) => v.length >= X.route.api.events.length);
  const events = X.route.api.events;
  const t0 = events[0].at_ms;
  eq('route: each event as the API has it, in its order, times from the first',
    rendered.map(({ colour, ...r }) => r),
    events.map((e) => ({
      ms: e.at_ms - t0, at: `+${e.at_ms - t0} ms`, kind: e.kind, label: e.kind, topic: e.topic, partition: e.partition,
      offset: e.offset, client: e.client_id ?? '—', group: e.group ?? '—',
    })));
  const [a, b] = X.route.topics;
  const [g1, g2] = X.route.groups;
  const kt = rendered.map((r) => `${r.kind} ${r.topic}`);
  eq('route: a produce, fetch and commit on each topic',
    [...kt].sort(), [`commit ${a}`, `commit ${b}`, `fetch ${a}`, `fetch ${b}`, `produce ${a}`, `produce ${b}`]);
  // Equal milliseconds may come in either order: compare the times.
  const at = (k) => rendered.find((r) => `${r.kind} ${r.topic}` === k)?.ms ?? NaN;
  check('route: rows in time order', rendered.every((r, i) => i === 0 || rendered[i - 1].ms <= r.ms), JSON.stringify(kt));
  check('route: each hop after the one it depends on',
    at(`produce ${a}`) <= at(`fetch ${a}`) && at(`fetch ${a}`) <= at(`commit ${a}`) && at(`fetch ${a}`) <= at(`produce ${b}`)
      && at(`produce ${b}`) <= at(`fetch ${b}`) && at(`fetch ${b}`) <= at(`commit ${b}`), JSON.stringify(rendered.map((r) => [r.ms, r.kind, r.topic])));
  eq('route: the groups of the fetches and commits',
    rendered.filter((r) => r.kind !== 'produce').map((r) => `${r.kind} ${r.topic} ${r.group}`).sort(),
    [`commit ${a} ${g1}`, `commit ${b} ${g2}`, `fetch ${a} ${g1}`, `fetch ${b} ${g2}`]);
  const colours = Object.fromEntries(rendered.map((r) => [r.kind, r.colour]));
  eq('route: produce, fetch and commit each their colour', new Set(Object.values(colours)).size, 3);
  check('route: the summary names both topics', (await page.textContent('#route-summary')).includes(`${a} → ${b}`));
  await noStrays(page, 'route');
  await shot(page, 'route');

  // Forgetting the token: refused again.
  await page.goto(ui('/groups'));
  await page.waitForSelector('#groups');
  await page.click('#forget-token');
  await refusal(page, 'groups after forgetting the token', 401, 'requires Authorization: Bearer');
  eq('pages raised no error', pageErrors, []);
} catch (e) {
  check('the browser test ran to its end', false, e.stack || String(e));
  await shot(page, 'failure').catch(() => {});
} finally {
  await browser.close();
}
console.log(failures ? `${failures} checks failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
