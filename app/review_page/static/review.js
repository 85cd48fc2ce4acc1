/* docextract review page.
 *
 * Plain JavaScript, no framework and no build step, on purpose: the page is one screen (a queue and
 * a document view) whose state fits in one object, so a framework would add more code than it
 * saves. The service is installed with pip and runs offline: there is no node toolchain to build or
 * audit, nothing is loaded from a CDN (the Content-Security-Policy allows this server only), and
 * what ships is what runs, readable in the browser's developer tools.
 *
 * Document text is untrusted input: every node is built with createElement and textContent, never
 * innerHTML. The page never holds the API key: it signs in once (POST /review/session) and the
 * HttpOnly session cookie authenticates the JSON API; changes carry the session's CSRF token.
 */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name === 'data') Object.assign(node.dataset, value);
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else if (name in node && typeof value !== 'string') node[name] = value;
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  const state = {
    me: null, // {key_id, name, scopes, csrf_token}
    view: null, // 'sign-in' | 'queue' | 'document'
    queue: { items: [], counts: {}, next: null, cursor: 0, loaded: false },
    doc: null,
    decided: new Set(), // documents approved or rejected on this page
    busy: false,
  };

  /* ---------- messages ---------- */

  function say(text, kind, action) {
    const box = $('message');
    box.className = kind || '';
    $('message-text').textContent = text;
    const button = $('message-action');
    button.hidden = !action;
    if (action) {
      button.textContent = action.label;
      button.onclick = action.run;
    }
    box.hidden = !text;
  }

  function problemText(res, what) {
    const problem = res.data && typeof res.data === 'object' ? res.data : null;
    if (problem && (problem.detail || problem.title)) {
      return `${what}: ${problem.title || ''}${problem.detail ? ' — ' + problem.detail : ''}`;
    }
    if (res.status === 0) return `${what}: the server cannot be reached.`;
    return `${what}: the server answered ${res.status}.`;
  }

  /* ---------- the API ---------- */

  async function api(method, path, body, headers) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...(headers || {}) } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    if (method !== 'GET' && state.me && state.me.csrf_token) init.headers['X-CSRF-Token'] = state.me.csrf_token;
    let res;
    try {
      res = await fetch(path, init);
    } catch (error) {
      return { status: 0, ok: false, data: null, headers: new Headers() };
    }
    let data = null;
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
      try { data = await res.json(); } catch (error) { data = null; }
    }
    if (res.status === 401 && !path.startsWith('/review/session')) {
      signedOut('Your session ended: sign in again.');
    }
    return { status: res.status, ok: res.ok, data, headers: res.headers };
  }

  /* ---------- session ---------- */

  async function start() {
    bindStaticHandlers();
    const res = await api('GET', '/review/session');
    if (res.ok && res.data) {
      signedIn(res.data);
    } else {
      showSignIn();
    }
  }

  function signedIn(me) {
    state.me = me;
    $('who-name').textContent = `${me.name} (${me.scopes.join(', ')})`;
    $('who').hidden = false;
    route();
  }

  function signedOut(text) {
    state.me = null;
    state.doc = null;
    state.queue = { items: [], counts: {}, next: null, cursor: 0, loaded: false };
    $('who').hidden = true;
    showSignIn();
    if (text) say(text, 'error');
  }

  function showSignIn() {
    show('sign-in');
    $('api-key').focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $('api-key');
    const error = $('sign-in-error');
    error.hidden = true;
    const res = await api('POST', '/review/session', { api_key: input.value.trim() });
    input.value = '';
    if (res.ok && res.data) {
      say('');
      signedIn(res.data);
      return;
    }
    error.textContent = res.status === 401
      ? 'This key is unknown, revoked, or may not review.'
      : problemText(res, 'Sign-in failed');
    error.hidden = false;
  }

  async function signOut() {
    await api('DELETE', '/review/session');
    history.replaceState(null, '', location.pathname);
    signedOut('');
    say('Signed out.', 'ok');
  }

  /* ---------- views and routing ---------- */

  function show(view) {
    state.view = view;
    for (const id of ['sign-in', 'queue', 'document']) $(id).hidden = id !== view;
  }

  function route() {
    if (!state.me) return;
    const match = /^#(ext_[A-Za-z0-9_-]+)$/.exec(location.hash);
    if (match) {
      if (!state.doc || state.doc.id !== match[1] || state.view !== 'document') openDocument(match[1]);
    } else {
      showQueue();
    }
  }

  /* Opens a document (``#ext_...``) or the queue (no hash); the browser's back button works too. */
  function go(id) {
    const hash = id ? '#' + id : '';
    if (location.hash === hash) {
      route();
    } else if (id) {
      location.hash = hash; // hashchange routes
    } else {
      history.pushState(null, '', location.pathname + location.search);
      route();
    }
  }

  /* ---------- the queue ---------- */

  function filters() {
    const form = $('filters');
    const values = {};
    for (const name of ['status', 'schema', 'reason', 'document']) {
      const value = form.elements[name].value.trim();
      if (value) values[name] = value;
    }
    return values;
  }

  async function loadQueue(more) {
    const params = new URLSearchParams({ order: 'oldest', limit: '50', ...filters() });
    if (more && state.queue.next) params.set('cursor', state.queue.next);
    const res = await api('GET', '/extractions?' + params.toString());
    if (!res.ok || !res.data) {
      if (res.status !== 401) say(problemText(res, 'The queue could not be loaded'), 'error');
      return false;
    }
    const queue = state.queue;
    queue.items = more ? queue.items.concat(res.data.items || []) : (res.data.items || []);
    queue.counts = res.data.counts || {};
    queue.next = res.data.next_cursor || null;
    queue.loaded = true;
    if (!more) queue.cursor = 0;
    renderQueue();
    return true;
  }

  async function showQueue() {
    show('queue');
    document.title = 'Queue — docextract review';
    await loadQueue(false);
  }

  function percent(value) {
    return value === null || value === undefined ? '—' : Math.round(value * 100) + '%';
  }

  function renderQueue() {
    const queue = state.queue;
    const current = $('filters').elements.status.value;
    const counts = $('counts');
    counts.replaceChildren(...['needs_review', 'succeeded', 'approved', 'rejected'].map((status) =>
      el('button', {
        type: 'button',
        class: 'count' + (status === current ? ' current' : ''),
        data: { status },
        text: `${status.replace('_', ' ')} ${queue.counts[status] ?? 0}`,
        onclick: () => { $('filters').elements.status.value = status; loadQueue(false); },
      })));
    const rows = queue.items.map((item, index) => el('tr', {
      class: index === queue.cursor ? 'cursor' : '',
      data: { id: item.id },
      onclick: () => go(item.id),
    },
    el('td', { text: item.document_name || item.id, title: item.id }),
    el('td', { text: item.schema ? `${item.schema.name}@${item.schema.version}` : '' }),
    el('td', { text: new Date(item.created_at).toLocaleString() }),
    el('td', { text: percent(item.confidence) }),
    el('td', {}, reasonChips(item.review_reasons || [], 4)),
    el('td', {}, el('span', { class: 'status ' + item.status, text: item.status.replace('_', ' ') }))));
    $('queue-rows').replaceChildren(...rows);
    $('queue-empty').hidden = queue.items.length > 0;
    $('load-more').hidden = !queue.next;
  }

  function reasonChips(reasons, limit) {
    const chips = reasons.slice(0, limit).map((reason) => el('span', { class: 'reason-chip', text: reason }));
    if (reasons.length > limit) chips.push(el('span', { class: 'reason-chip', text: `+${reasons.length - limit}` }));
    return chips;
  }

  function moveQueueCursor(step) {
    const queue = state.queue;
    if (!queue.items.length) return;
    queue.cursor = Math.max(0, Math.min(queue.items.length - 1, queue.cursor + step));
    renderQueue();
    const row = $('queue-rows').children[queue.cursor];
    if (row) row.scrollIntoView({ block: 'nearest' });
  }

  async function nextDocument() {
    const queue = state.queue;
    if (!queue.loaded) await loadQueue(false);
    const current = state.doc ? state.doc.id : null;
    const at = queue.items.findIndex((item) => item.id === current);
    // The next one after this document that was not decided on this page meanwhile.
    const pending = (item, index) => index > at && item.id !== current && !state.decided.has(item.id);
    let index = queue.items.findIndex(pending);
    if (index < 0 && queue.next && await loadQueue(true)) index = queue.items.findIndex(pending);
    if (index >= 0) {
      queue.cursor = index;
      go(queue.items[index].id);
    } else {
      say('That was the last document of the queue.', 'ok');
      go(null);
    }
  }

  /* ---------- a document ---------- */

  function escapePart(part) {
    return String(part).replace(/~/g, '~0').replace(/\//g, '~1');
  }

  function text(value) {
    if (value === null || value === undefined) return '';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  function label(pointer) {
    return pointer.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~').replace(/_/g, ' '))
      .join(' › ');
  }

  function confidenceClass(confidence) {
    if (confidence === null || confidence === undefined) return 'none';
    if (confidence < 0.5) return 'low';
    if (confidence < 0.8) return 'mid';
    return 'high';
  }

  function isTable(value) {
    return Array.isArray(value) && value.length > 0 &&
      value.every((row) => row !== null && typeof row === 'object' && !Array.isArray(row));
  }

  /* The fields in the order of the data (the schema's order): scalars in the list, arrays of
   * objects (line items) as tables whose cells are fields too. */
  function collectFields(result) {
    const fields = [];
    const tables = [];
    const seen = new Set();
    const reports = result.fields || {};

    function add(pointer, value, cell) {
      seen.add(pointer);
      fields.push({
        pointer, original: value, value: text(value), report: reports[pointer] || null,
        cell, reasons: [], flagged: false, confirmed: false, evidence: null, error: null,
      });
    }

    function walk(value, pointer) {
      if (isTable(value)) {
        const columns = [];
        for (const row of value) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
        const table = { pointer, columns, rows: [] };
        value.forEach((row, index) => {
          const cells = {};
          for (const column of columns) {
            const cellPointer = `${pointer}/${index}/${escapePart(column)}`;
            add(cellPointer, row[column] ?? null, { table, index, column });
            cells[column] = fields[fields.length - 1];
          }
          table.rows.push(cells);
        });
        tables.push(table);
      } else if (Array.isArray(value)) {
        value.forEach((item, index) => walk(item, `${pointer}/${index}`));
        if (!value.length && pointer) add(pointer, value, null);
      } else if (value !== null && typeof value === 'object') {
        for (const [key, item] of Object.entries(value)) walk(item, `${pointer}/${escapePart(key)}`);
      } else if (pointer) {
        add(pointer, value, null);
      }
    }

    walk(result.data, '');
    for (const pointer of Object.keys(reports)) if (!seen.has(pointer)) add(pointer, null, null);
    // Review reasons that name a field the data does not have (a missing value) still get a row.
    for (const reason of (result.review && result.review.reasons) || []) {
      const pointer = reasonPointer(reason);
      if (pointer && !seen.has(pointer) && ![...seen].some((p) => p.startsWith(pointer + '/'))) add(pointer, null, null);
    }
    // Line items come after the single values, which a reviewer checks first.
    fields.sort((a, b) => (a.cell ? 1 : 0) - (b.cell ? 1 : 0));
    const byPointer = new Map(fields.map((field) => [field.pointer, field]));
    for (const reason of (result.review && result.review.reasons) || []) {
      for (const pointer of reasonPointers(reason, result)) {
        const field = byPointer.get(pointer);
        if (field) { field.reasons.push(reason); field.flagged = true; }
      }
    }
    return { fields, tables };
  }

  /* `kind:/pointer` or `kind:/pointer:detail` name one field. */
  function reasonPointer(reason) {
    const colon = reason.indexOf(':');
    if (colon < 0) return null;
    const rest = reason.slice(colon + 1);
    if (!rest.startsWith('/')) return null;
    const end = rest.indexOf(':');
    return end < 0 ? rest : rest.slice(0, end);
  }

  /* The fields a reason names: its pointer, or the fields of a failed check. */
  function reasonPointers(reason, result) {
    const pointer = reasonPointer(reason);
    if (pointer) return [pointer];
    if (reason.startsWith('check_failed:')) {
      const rule = reason.slice('check_failed:'.length);
      return (result.checks || []).filter((check) => check.status === 'failed' && check.rule === rule)
        .flatMap((check) => check.pointers || []);
    }
    return [];
  }

  async function openDocument(id) {
    show('document');
    say('');
    const res = await api('GET', '/extractions/' + encodeURIComponent(id));
    if (!res.ok || !res.data) {
      if (res.status !== 401) say(problemText(res, 'The document could not be opened'), 'error');
      if (res.status === 404) go(null);
      return;
    }
    const previous = state.doc && state.doc.id === id ? state.doc : null;
    loadResult(res.data, res.headers.get('ETag'), previous ? previous.page : null);
    $('note').value = '';
    selectFirstFlagged();
  }

  function loadResult(result, etag, page) {
    const { fields, tables } = collectFields(result);
    const firstEvidence = fields.map((f) => f.report && f.report.evidence && f.report.evidence[0]).find(Boolean);
    const pages = Math.max(1, ...(result.pages || []).map((p) => p.page));
    state.doc = {
      id: result.id, etag, result, fields, tables, index: -1,
      page: page || (firstEvidence ? firstEvidence.page : 1), pages, words: {}, wordsLoading: {},
    };
    renderDocument();
  }

  function selectFirstFlagged() {
    const doc = state.doc;
    const first = doc.fields.findIndex((field) => field.flagged);
    select(first >= 0 ? first : 0);
  }

  function renderDocument() {
    const doc = state.doc;
    const result = doc.result;
    const name = (state.queue.items.find((item) => item.id === doc.id) || {}).document_name;
    $('doc-title').textContent = name || result.id;
    $('doc-title').title = result.id;
    document.title = `${name || result.id} — docextract review`;
    const status = reviewStatus(result);
    $('doc-status').className = 'status ' + status;
    $('doc-status').textContent = status.replace('_', ' ');
    renderFields();
    renderRevisions();
    renderPage();
  }

  function reviewStatus(result) {
    const review = result.review || {};
    if (review.status === 'approved' || review.status === 'rejected') return review.status;
    return result.status;
  }

  function renderFields() {
    const doc = state.doc;
    const list = [];
    for (const field of doc.fields) {
      if (field.cell) continue;
      list.push(fieldItem(field));
    }
    $('field-list').replaceChildren(...list);
    $('line-items').replaceChildren(...doc.tables.map(tableOf));
    refreshSelection();
  }

  function valueInput(field) {
    const input = el('input', {
      class: 'value',
      value: field.value,
      spellcheck: 'false',
      'aria-label': field.pointer,
      data: { pointer: field.pointer },
      oninput: () => {
        field.value = input.value;
        field.evidence = null;
        field.confirmed = true;
        markEdited(field);
      },
      onfocus: () => select(state.doc.fields.indexOf(field), { keepFocus: true }),
    });
    field.input = input;
    return input;
  }

  function fieldItem(field) {
    const report = field.report;
    const confidence = report ? report.confidence : null;
    const level = confidenceClass(confidence);
    const source = report && report.source === 'reviewer' ? 'reviewer' : 'engine';
    const item = el('li', {
      class: `field ${level}` + (field.flagged ? ' flagged' : ''),
      data: { pointer: field.pointer },
      onclick: (event) => {
        if (event.target.closest('button, input')) return;
        select(state.doc.fields.indexOf(field));
      },
    },
    el('div', { class: 'head' },
      el('span', { class: 'label', text: label(field.pointer) }),
      el('span', { class: 'source ' + source, text: source, title: source === 'reviewer' ? 'Set by a reviewer' : 'Read by the engine' }),
      el('span', { class: 'done', text: '' }),
      el('span', { class: 'conf ' + level, text: percent(confidence), title: 'Confidence' })),
    Array.isArray(field.original) ? el('div', { class: 'pointer', text: '(empty list)' }) : valueInput(field),
    field.reasons.length ? el('div', { class: 'reasons' }, reasonChips(field.reasons, 6)) : null,
    rivalsOf(field),
    el('div', { class: 'field-error', hidden: true }));
    field.item = item;
    markEdited(field);
    return item;
  }

  function rivalsOf(field) {
    // The engine's runner-up readings, without the one the field now holds.
    const rivals = ((field.report && field.report.rivals) || []).filter((rival) => text(rival.value) !== field.value);
    if (!rivals.length) return null;
    return el('div', { class: 'rivals' }, 'Or:', rivals.map((rival) => el('button', {
      type: 'button',
      class: 'rival',
      title: `Also read on page ${rival.page}, certainty ${percent(rival.score)}`,
      text: `${text(rival.value)} (${percent(rival.score)})`,
      onclick: () => {
        select(state.doc.fields.indexOf(field));
        fill(text(rival.value), null);
      },
    })));
  }

  function tableOf(table) {
    const head = el('tr', {}, el('th', { text: '#' }), table.columns.map((column) => el('th', { text: column.replace(/_/g, ' ') })));
    const rows = table.rows.map((cells, index) => el('tr', {}, el('td', { text: String(index + 1) }),
      table.columns.map((column) => {
        const field = cells[column];
        const td = el('td', {
          class: confidenceClass(field.report ? field.report.confidence : null) + (field.flagged ? ' flagged' : ''),
          title: [field.pointer, ...field.reasons].join('\n'),
          data: { pointer: field.pointer },
        }, valueInput(field));
        field.item = td;
        markEdited(field);
        return td;
      })));
    return el('table', { class: 'items' }, el('caption', { text: label(table.pointer) }), el('thead', {}, head), el('tbody', {}, rows));
  }

  function changed(field) {
    if (Array.isArray(field.original)) return false;
    const now = field.value.trim();
    if (now === text(field.original)) return false;
    if (typeof field.original === 'number' && now !== '' && Number(now.replace(',', '.')) === field.original) return false;
    return true;
  }

  function markEdited(field) {
    if (!field.item) return;
    field.item.classList.toggle('edited', changed(field));
    field.item.classList.toggle('invalid', Boolean(field.error));
    const done = field.item.querySelector('.done');
    if (done) done.textContent = field.confirmed ? '✓' : '';
    const error = field.item.querySelector('.field-error');
    if (error) {
      error.textContent = field.error || '';
      error.hidden = !field.error;
    }
  }

  /* ---------- selection and filling ---------- */

  function select(index, options) {
    const doc = state.doc;
    if (!doc || index < 0 || index >= doc.fields.length) return;
    doc.index = index;
    refreshSelection();
    const field = doc.fields[index];
    if (field.item) field.item.scrollIntoView({ block: 'nearest' });
    const where = field.evidence || (field.report && field.report.evidence && field.report.evidence[0]);
    if (where && where.page !== doc.page) {
      doc.page = where.page;
      renderPage();
    } else {
      drawBoxes();
    }
    if (!(options && options.keepFocus) && document.activeElement && document.activeElement.classList.contains('value')) {
      document.activeElement.blur();
    }
  }

  function refreshSelection() {
    const doc = state.doc;
    doc.fields.forEach((field, index) => {
      if (field.item) field.item.classList.toggle('selected', index === doc.index);
    });
  }

  function selected() {
    const doc = state.doc;
    return doc && doc.index >= 0 ? doc.fields[doc.index] : null;
  }

  /* Sets the selected field (from words on the page or a rival) and moves to the next flagged one. */
  function fill(value, evidence) {
    const field = selected();
    if (!field || !field.input) {
      say('Select a field first (click it in the list, or j/k).', 'error');
      return;
    }
    field.value = value;
    field.input.value = value;
    field.evidence = evidence;
    field.confirmed = true;
    field.error = null;
    markEdited(field);
    advance();
  }

  function accept() {
    const field = selected();
    if (!field) return;
    field.confirmed = true;
    markEdited(field);
    advance();
  }

  /* The next flagged field not yet checked (after the current one, wrapping); else the next field. */
  function advance() {
    const doc = state.doc;
    const count = doc.fields.length;
    for (let step = 1; step <= count; step += 1) {
      const index = (doc.index + step) % count;
      const field = doc.fields[index];
      if (field.flagged && !field.confirmed) {
        select(index);
        return;
      }
    }
    say('Every flagged field is checked: press a to approve (r rejects).', 'ok');
    if (doc.index < count - 1) select(doc.index + 1);
    else drawBoxes();
  }

  function move(step) {
    const doc = state.doc;
    if (!doc || !doc.fields.length) return;
    const start = doc.index < 0 ? (step > 0 ? -1 : doc.fields.length) : doc.index;
    select(Math.max(0, Math.min(doc.fields.length - 1, start + step)));
  }

  function edit() {
    const field = selected();
    if (field && field.input) {
      field.input.focus();
      field.input.select();
    }
  }

  /* ---------- the page image, its words and the evidence boxes ---------- */

  function imageWidth() {
    const frame = $('page-frame');
    const css = frame.clientWidth || $('viewer').clientWidth || 900;
    const wanted = Math.ceil((css * (window.devicePixelRatio || 1)) / 200) * 200;
    return Math.max(400, Math.min(2400, wanted));
  }

  async function renderPage() {
    const doc = state.doc;
    const number = doc.page;
    $('page-label').textContent = `page ${number} of ${doc.pages}`;
    $('prev-page').disabled = number <= 1;
    $('next-page').disabled = number >= doc.pages;
    const image = $('page-image');
    const error = $('page-error');
    error.hidden = true;
    image.onerror = () => {
      error.textContent = `The image of page ${number} could not be loaded.`;
      error.hidden = false;
    };
    image.alt = `Page ${number}`;
    const source = `/extractions/${encodeURIComponent(doc.id)}/pages/${number}?width=${imageWidth()}`;
    if (image.getAttribute('src') !== source) image.src = source;
    drawBoxes();
    await loadWords(number);
    if (state.doc === doc && doc.page === number) drawBoxes();
  }

  async function loadWords(number) {
    const doc = state.doc;
    if (doc.words[number] || doc.wordsLoading[number]) return;
    doc.wordsLoading[number] = true;
    const res = await api('GET', `/extractions/${encodeURIComponent(doc.id)}/pages/${number}/words`);
    doc.wordsLoading[number] = false;
    if (res.ok && res.data) {
      doc.words[number] = res.data.words || [];
      if (res.data.pages && res.data.pages !== doc.pages) {
        doc.pages = res.data.pages;
        $('page-label').textContent = `page ${doc.page} of ${doc.pages}`;
        $('next-page').disabled = doc.page >= doc.pages;
      }
      if (res.data.width && res.data.height) $('page-frame').style.aspectRatio = `${res.data.width} / ${res.data.height}`;
    } else {
      doc.words[number] = [];
    }
  }

  function place(node, bbox) {
    const [x0, y0, x1, y1] = bbox;
    node.style.left = `${x0 * 100}%`;
    node.style.top = `${y0 * 100}%`;
    node.style.width = `${Math.max(0, x1 - x0) * 100}%`;
    node.style.height = `${Math.max(0, y1 - y0) * 100}%`;
    return node;
  }

  function drawBoxes() {
    const doc = state.doc;
    if (!doc) return;
    const number = doc.page;
    const nodes = [];
    let selectedBox = null;
    doc.fields.forEach((field, index) => {
      const level = confidenceClass(field.report ? field.report.confidence : null);
      const boxes = field.evidence ? [field.evidence] : ((field.report && field.report.evidence) || []);
      for (const evidence of boxes) {
        if (evidence.page !== number || !evidence.bbox) continue;
        const box = place(el('div', {
          class: `box ${level}` + (field.evidence ? ' picked' : '') + (index === doc.index ? ' selected' : ''),
          title: label(field.pointer),
          data: { pointer: field.pointer },
        }), evidence.bbox);
        if (index === doc.index) selectedBox = box;
        nodes.push(box);
      }
    });
    (doc.words[number] || []).forEach((word, index) => {
      nodes.push(place(el('div', { class: 'word', title: word.text, data: { index: String(index), text: word.text } }), word.bbox));
    });
    $('overlay').replaceChildren(...nodes);
    if (selectedBox) selectedBox.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }

  function changePage(step) {
    const doc = state.doc;
    const number = doc.page + step;
    if (number < 1 || number > doc.pages) return;
    doc.page = number;
    renderPage();
  }

  /* A click picks the word under the pointer; a drag picks every word the rectangle covers, in
   * reading order, joined by spaces. */
  let drag = null;

  function pointAt(event) {
    const rect = $('overlay').getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) / rect.width,
      y: (event.clientY - rect.top) / rect.height,
      px: event.clientX,
      py: event.clientY,
    };
  }

  function rectangle() {
    return [Math.min(drag.from.x, drag.to.x), Math.min(drag.from.y, drag.to.y),
      Math.max(drag.from.x, drag.to.x), Math.max(drag.from.y, drag.to.y)];
  }

  function wordsPicked() {
    const words = state.doc.words[state.doc.page] || [];
    if (!drag.moved) {
      const { x, y } = drag.to;
      const hits = words.map((word, index) => ({ word, index }))
        .filter(({ word }) => x >= word.bbox[0] && x <= word.bbox[2] && y >= word.bbox[1] && y <= word.bbox[3]);
      hits.sort((a, b) => area(a.word.bbox) - area(b.word.bbox));
      return hits.slice(0, 1);
    }
    // A word counts when the rectangle touches it across and holds its middle down: line boxes
    // overlap a little, and a drag over two lines must not catch the lines around them.
    const [x0, y0, x1, y1] = rectangle();
    return words.map((word, index) => ({ word, index })).filter(({ word }) => {
      const middle = (word.bbox[1] + word.bbox[3]) / 2;
      return word.bbox[0] < x1 && word.bbox[2] > x0 && middle >= y0 && middle <= y1;
    });
  }

  function area(bbox) {
    return (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]);
  }

  function onPointerDown(event) {
    if (event.button !== 0 || !state.doc) return;
    event.preventDefault();
    const point = pointAt(event);
    drag = { from: point, to: point, moved: false, marquee: null };
    $('overlay').setPointerCapture(event.pointerId);
  }

  function onPointerMove(event) {
    if (!drag) return;
    drag.to = pointAt(event);
    if (!drag.moved && Math.hypot(drag.to.px - drag.from.px, drag.to.py - drag.from.py) > 4) {
      drag.moved = true;
      drag.marquee = el('div', { class: 'marquee' });
      $('overlay').append(drag.marquee);
    }
    if (drag.moved) {
      place(drag.marquee, rectangle());
      const picked = new Set(wordsPicked().map(({ index }) => String(index)));
      for (const node of $('overlay').querySelectorAll('.word')) node.classList.toggle('picking', picked.has(node.dataset.index));
    }
  }

  function onPointerUp(event) {
    if (!drag) return;
    drag.to = pointAt(event);
    const picked = wordsPicked();
    if (drag.marquee) drag.marquee.remove();
    drag = null;
    if (!picked.length) {
      drawBoxes();
      return;
    }
    const boxes = picked.map(({ word }) => word.bbox);
    const bbox = [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
      Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))].map((v) => Math.round(v * 1e5) / 1e5);
    fill(picked.map(({ word }) => word.text).join(' '), { page: state.doc.page, bbox });
  }

  /* ---------- saving a review ---------- */

  async function submit(decision) {
    const doc = state.doc;
    if (!doc || state.busy) return;
    const edited = doc.fields.filter(changed);
    const corrections = edited.map((field) => {
      const value = field.value.trim();
      const correction = { pointer: field.pointer, value: value === '' ? null : value };
      if (field.evidence) correction.evidence = field.evidence;
      return correction;
    });
    if (!decision && !corrections.length) {
      say('Nothing to save: no field was changed.', '');
      return;
    }
    const note = $('note').value.trim();
    const body = { corrections, decision, note: note || null };
    state.busy = true;
    for (const id of ['save', 'approve', 'reject']) $(id).disabled = true;
    const headers = doc.etag ? { 'If-Match': doc.etag } : {};
    const res = await api('POST', `/extractions/${encodeURIComponent(doc.id)}/review`, body, headers);
    state.busy = false;
    for (const id of ['save', 'approve', 'reject']) $(id).disabled = false;
    if (res.ok && res.data) {
      const page = doc.page;
      loadResult(res.data, res.headers.get('ETag'), page);
      $('note').value = '';
      const count = corrections.length;
      const what = decision === 'approve' ? 'Approved' : decision === 'reject' ? 'Rejected' : 'Saved';
      say(`${what}, ${count} correction${count === 1 ? '' : 's'}. Press n for the next document.`, 'ok');
      if (decision) state.decided.add(doc.id);
      const item = state.queue.items.find((entry) => entry.id === doc.id);
      if (item && decision) item.status = reviewStatus(res.data);
      return;
    }
    if (res.status === 412) {
      say('Someone else reviewed this document meanwhile; your changes were not saved. Reload to see theirs.', 'error',
        { label: 'Reload', run: () => { state.doc = null; openDocument(doc.id); } });
      return;
    }
    if (res.status === 422 && res.data && Array.isArray(res.data.errors)) {
      for (const field of doc.fields) field.error = null;
      for (const error of res.data.errors) {
        const match = /^\/corrections\/(\d+)/.exec(error.pointer || '');
        const field = match ? edited[Number(match[1])] : null;
        if (field) { field.error = error.detail; markEdited(field); }
      }
      const first = doc.fields.findIndex((field) => field.error);
      if (first >= 0) select(first);
    }
    if (res.status !== 401) say(problemText(res, 'Not saved'), 'error');
  }

  function renderRevisions() {
    const revisions = (state.doc.result.review && state.doc.result.review.revisions) || [];
    $('revisions').replaceChildren(...revisions.map((revision) => el('div', {
      text: `Revision ${revision.number}: ${revision.decision || 'corrections'} by ${revision.reviewer_name}, `
        + `${new Date(revision.created_at).toLocaleString()}, ${revision.changes.length} change(s)`
        + (revision.note ? ` — ${revision.note}` : ''),
    })));
  }

  /* ---------- keyboard ---------- */

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !state.me) return;
    const target = event.target;
    const typing = target instanceof HTMLElement && target.matches('input, textarea, select');
    if (state.view === 'document' && state.doc) {
      if (typing) {
        if (target.classList.contains('value') && event.key === 'Enter') {
          event.preventDefault();
          target.blur();
          accept();
        } else if (event.key === 'Escape') {
          target.blur();
        }
        return;
      }
      if (target instanceof HTMLElement && target.tagName === 'BUTTON' && (event.key === 'Enter' || event.key === ' ')) return;
      const actions = {
        j: () => move(1), ArrowDown: () => move(1),
        k: () => move(-1), ArrowUp: () => move(-1),
        Enter: accept,
        e: edit,
        a: () => submit('approve'),
        r: () => submit('reject'),
        s: () => submit(null),
        n: nextDocument,
        ']': () => changePage(1), ArrowRight: () => changePage(1),
        '[': () => changePage(-1), ArrowLeft: () => changePage(-1),
      };
      const action = actions[event.key];
      if (action) {
        event.preventDefault();
        action();
      }
      return;
    }
    if (state.view === 'queue' && !typing) {
      const item = state.queue.items[state.queue.cursor];
      const actions = {
        j: () => moveQueueCursor(1), ArrowDown: () => moveQueueCursor(1),
        k: () => moveQueueCursor(-1), ArrowUp: () => moveQueueCursor(-1),
        Enter: () => item && go(item.id),
        n: () => state.queue.items[0] && go(state.queue.items[0].id),
      };
      const action = actions[event.key];
      if (action && !(target instanceof HTMLElement && target.tagName === 'BUTTON' && event.key === 'Enter')) {
        event.preventDefault();
        action();
      }
    }
  }

  /* ---------- wiring ---------- */

  function bindStaticHandlers() {
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('filters').addEventListener('submit', (event) => { event.preventDefault(); loadQueue(false); });
    $('load-more').addEventListener('click', () => loadQueue(true));
    $('back').addEventListener('click', () => go(null));
    $('prev-page').addEventListener('click', () => changePage(-1));
    $('next-page').addEventListener('click', () => changePage(1));
    $('save').addEventListener('click', () => submit(null));
    $('approve').addEventListener('click', () => submit('approve'));
    $('reject').addEventListener('click', () => submit('reject'));
    $('next-doc').addEventListener('click', nextDocument);
    const overlay = $('overlay');
    overlay.addEventListener('pointerdown', onPointerDown);
    overlay.addEventListener('pointermove', onPointerMove);
    overlay.addEventListener('pointerup', onPointerUp);
    overlay.addEventListener('pointercancel', () => { drag = null; drawBoxes(); });
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', route);
  }

  document.addEventListener('DOMContentLoaded', start);
}());
