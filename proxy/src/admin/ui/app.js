// The shell: hash routing between the pages, the token indicator. It holds
// no data itself; every page asks the debug API, with the token when set.

import { h, token } from './lib.js';
import { topicsPage } from './topics.js';
import { tailPage } from './tail.js';
import { groupsPage, groupPage, stuckPage } from './groups.js';
import { routePage } from './route.js';

const main = document.getElementById('main');
let cleanup = null;

/** `#/a/b?x=1` → { parts: ['a', 'b'], query: URLSearchParams }. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [p, q = ''] = raw.split('?');
  const parts = p.split('/').filter((s) => s !== '').map(decodeURIComponent);
  return { parts, query: new URLSearchParams(q) };
}

function page({ parts, query }) {
  switch (parts[0] || 'topics') {
    case 'topics': return ['topics', (el) => topicsPage(el)];
    case 'tail': return parts[1] ? ['topics', (el) => tailPage(el, parts[1], query)] : null;
    case 'groups': return parts[1] ? ['groups', (el) => groupPage(el, parts[1])] : ['groups', (el) => groupsPage(el)];
    case 'stuck': return parts.length === 4 ? ['groups', (el) => stuckPage(el, parts[1], parts[2], parts[3])] : null;
    case 'route': return ['route', (el) => routePage(el, parts[1] || '')];
    default: return null;
  }
}

function renderAuth() {
  const el = document.getElementById('auth');
  el.replaceChildren(token.get()
    ? h('span', {}, 'token set', h('button', { type: 'button', id: 'forget-token', onclick: () => token.clear() }, 'forget'))
    : h('span', { class: 'muted' }, 'no token'));
}

function render() {
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  renderAuth();
  const found = page(parseHash());
  const el = h('div', { id: 'page' });
  main.replaceChildren(el);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', !!found && a.dataset.nav === found[0]);
  }
  if (!found) {
    el.append(h('h1', {}, 'Not a page'), h('p', {}, 'Try ', h('a', { href: '#/topics' }, 'the topics'), '.'));
    return;
  }
  cleanup = found[1](el) || null;
}

window.addEventListener('hashchange', render);
window.addEventListener('strait-rerender', render);
render();
