// The operators' console. Polls GET /api/overview every second and updates the page in place, without
// reloading: rows are kept by key and only their text changes, so a reassign form an operator is filling in
// keeps its choice, its text and its focus across updates. POST /api/reassign sends a reassignment.
// Every value from the API goes on the page as text (textContent), never as HTML.

const kPollIntervalMs = 1000;
const kRequestTimeoutMs = 5000;
const kReasonsShown = 3;
// After a reassign was accepted the form stays locked until the overview shows it; when that takes longer
// than this, the operator may try again (the router may have been down).
const kRequestedLockMs = 60000;

const byId = (id) => document.getElementById(id);

// Requests per unroutable row key: {kind: 'sending'|'requested'|'error', text, at}.
const requests = new Map();
let organisations = []; // [{id, name}] of the last overview: the choices of every reassign form
let organisationsSignature = '';
let lastSuccess = null; // Date of the last overview received
let currentGeneratedAt = ''; // generated_at of the overview being shown

// ---- small helpers ---------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setClass(node, name, on) {
  if (node.classList.contains(name) !== on) node.classList.toggle(name, on);
}

const countFormat = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 });
const rateFormat = new Intl.NumberFormat('en-GB', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const clockFormat = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const dateTimeFormat = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

const isNumber = (n) => typeof n === 'number' && Number.isFinite(n);
const formatCount = (n) => (isNumber(n) ? countFormat.format(n) : '—');
const formatRate = (n) => (isNumber(n) ? rateFormat.format(n) : '—');

function parseTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

function formatAt(iso) {
  const date = parseTime(iso);
  return date ? dateTimeFormat.format(date) : iso || '—';
}

// "3 min ago", measured against the server's own clock (generated_at), so a wrong clock here does not matter.
function formatAgo(iso, nowIso) {
  const at = parseTime(iso);
  const now = parseTime(nowIso);
  if (!at || !now) return '';
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

function urgencyLabel(urgency) {
  return String(urgency || 'unspecified').replace(/^URGENCY_/, '').replaceAll('_', ' ').toLowerCase();
}

const list = (value) => (Array.isArray(value) ? value : []);

// Puts one row per item into tbody in the given order, reusing the row of each key. A row whose place is
// unchanged is not moved (moving a node would take the focus from an input inside it).
function reconcileRows(tbody, items, keyOf, create, update, emptyText, columns) {
  if (items.length === 0) {
    const only = tbody.firstElementChild;
    if (!(only && only.classList.contains('empty') && only.nextElementSibling === null &&
          only.textContent === emptyText)) {
      tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: columns }, emptyText)));
    }
    return;
  }
  const wanted = new Map();
  items.forEach((item, index) => {
    let key = keyOf(item);
    if (wanted.has(key)) key = `${key}#${index}`; // a duplicate still gets its own row
    wanted.set(key, item);
  });
  const existing = new Map();
  for (const row of [...tbody.children]) {
    if (row.dataset.key && wanted.has(row.dataset.key)) existing.set(row.dataset.key, row);
    else row.remove();
  }
  let cursor = tbody.firstElementChild;
  for (const [key, item] of wanted) {
    let row = existing.get(key);
    if (!row) {
      row = create(item, key);
      row.dataset.key = key;
    }
    update(row, item, key);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else tbody.insertBefore(row, cursor);
  }
}

// ---- header and connection -------------------------------------------------------------------------------

function renderKafka(kafka) {
  const pill = byId('kafka');
  const reachable = kafka && kafka.reachable === true;
  const bootstrap = kafka && kafka.bootstrap ? kafka.bootstrap : '';
  setText(pill, reachable ? 'Kafka reachable' : 'Kafka unreachable');
  pill.title = bootstrap ? `Kafka at ${bootstrap}, as the ops service sees it` : 'Kafka, as the ops service sees it';
  setClass(pill, 'pill-ok', reachable);
  setClass(pill, 'pill-bad', !reachable);
  setClass(pill, 'pill-unknown', false);
  setText(byId('bootstrap'), bootstrap);
}

// Who is signed in: the operator named by the client certificate the browser presented.
function renderOperator(name) {
  const who = byId('operator');
  setText(who, typeof name === 'string' && name ? `Operator ${name}` : '');
  who.title = 'Signed in with your operator certificate; close the browser (or remove the certificate) to sign out';
}

function renderUpdated(generatedAt) {
  const time = byId('updated');
  lastSuccess = new Date();
  setText(time, clockFormat.format(lastSuccess));
  time.dateTime = lastSuccess.toISOString();
  time.title = generatedAt ? `Overview generated at ${generatedAt}` : '';
}

function connectionOk() {
  const banner = byId('connection');
  if (!banner.hidden) banner.hidden = true;
  setText(banner, '');
  setClass(document.body, 'stale', false);
}

function connectionLost(why) {
  const banner = byId('connection');
  const since = lastSuccess
    ? ` The figures below are from ${clockFormat.format(lastSuccess)}.`
    : '';
  setText(banner, `Connection to the ops service lost (${why}). Retrying every second.${since}`);
  if (banner.hidden) banner.hidden = false;
  setClass(document.body, 'stale', lastSuccess !== null);
  // What the ops service said about Kafka is as old as the figures: do not keep showing it as current.
  const pill = byId('kafka');
  setText(pill, 'Kafka: unknown');
  setClass(pill, 'pill-ok', false);
  setClass(pill, 'pill-bad', false);
  setClass(pill, 'pill-unknown', true);
}

// ---- queues ----------------------------------------------------------------------------------------------

const kCountColumns = ['waiting', 'overdue', 'accepted', 'in_progress', 'done'];

function createOrganisationRow(org) {
  const row = el('tr', { 'data-test': `org-${org.id}` });
  row.append(el('th', { scope: 'row' }, el('span', { class: 'org-name' }), el('span', { class: 'id' })));
  for (const column of kCountColumns) row.append(el('td', { class: 'num', 'data-test': column }));
  row.append(el('td', { class: 'num', 'data-test': 'lag' }));
  row.append(el('td', { class: 'num', 'data-test': 'throughput' }));
  return row;
}

function updateOrganisationRow(row, org) {
  const name = row.querySelector('.org-name');
  setText(name, org.name || org.id);
  setText(row.querySelector('.id'), org.name && org.name !== org.id ? org.id : '');
  for (const column of kCountColumns) {
    setText(row.querySelector(`[data-test="${column}"]`), formatCount(org[column]));
  }
  const overdue = isNumber(org.overdue) && org.overdue > 0;
  setClass(row.querySelector('[data-test="overdue"]'), 'alert', overdue);
  setClass(row, 'has-overdue', overdue);

  const lag = row.querySelector('[data-test="lag"]');
  const lagKnown = isNumber(org.lag) && org.lag >= 0;
  setText(lag, lagKnown ? formatCount(org.lag) : '?');
  lag.title = lagKnown ? '' : 'unknown: the ops service could not read the inbox position';
  setClass(lag, 'muted', !lagKnown || org.lag === 0);

  const throughput = row.querySelector('[data-test="throughput"]');
  setText(throughput, `${formatRate(org.offered_per_minute)} / ${formatRate(org.accepted_per_minute)}`);
  throughput.title = 'offered per minute / accepted per minute';
}

function renderTotals(orgs) {
  const foot = byId('org-totals');
  foot.hidden = orgs.length === 0;
  const row = foot.querySelector('tr');
  for (const column of kCountColumns) {
    const sum = orgs.reduce((total, org) => total + (isNumber(org[column]) ? org[column] : 0), 0);
    setText(row.querySelector(`[data-test="${column}"]`), formatCount(sum));
    if (column === 'overdue') setClass(row.querySelector('[data-test="overdue"]'), 'alert', sum > 0);
  }
  const known = orgs.filter((org) => isNumber(org.lag) && org.lag >= 0);
  const lagSum = known.reduce((total, org) => total + org.lag, 0);
  const lag = row.querySelector('[data-test="lag"]');
  if (known.length === orgs.length) setText(lag, formatCount(lagSum));
  else if (known.length === 0) setText(lag, '?');
  else setText(lag, `${formatCount(lagSum)} + ?`);
  lag.title = known.length === orgs.length ? '' : `${orgs.length - known.length} unknown`;
  const offered = orgs.reduce((t, org) => t + (isNumber(org.offered_per_minute) ? org.offered_per_minute : 0), 0);
  const accepted = orgs.reduce((t, org) => t + (isNumber(org.accepted_per_minute) ? org.accepted_per_minute : 0), 0);
  setText(row.querySelector('[data-test="throughput"]'), `${formatRate(offered)} / ${formatRate(accepted)}`);
}

function renderOrganisations(orgs) {
  reconcileRows(byId('org-rows'), orgs, (org) => `org-${org.id}`, createOrganisationRow, updateOrganisationRow,
    'No organisations in the overview.', 8);
  renderTotals(orgs);
}

// ---- unroutable needs ------------------------------------------------------------------------------------

function unroutableKey(item) {
  return `unroutable-${item.referral_id}-${item.need_index}`;
}

function reasonItem(passed) {
  const item = el('li');
  if (passed.organisation) item.append(el('span', { class: 'org' }, passed.organisation), ': ');
  item.append(passed.reason || '(no reason given)');
  return item;
}

// What an operator needs first: the chain of offers and refused reassignments, then the reasons particular
// to this client (sharing permission, languages, capacity), and last the organisations that never do this
// need or region (in a large network, most of them).
function reasonRank(passed) {
  const reason = passed.reason || '';
  if (reason.startsWith('offered (') || reason.startsWith('reassign ') || reason.startsWith('forward ')) return 0;
  if (reason.startsWith('does not serve need') || reason.startsWith('does not cover region')) return 2;
  return 1;
}

function renderReasons(cell, unordered) {
  if (unordered.length === 0) {
    cell.replaceChildren(el('span', { class: 'muted' }, '—'));
    return;
  }
  // Array.prototype.sort is stable: within a rank the router's order stays.
  const passedOver = [...unordered].sort((a, b) => reasonRank(a) - reasonRank(b));
  const shown = el('ul', { class: 'reasons' }, ...passedOver.slice(0, kReasonsShown).map(reasonItem));
  const rest = passedOver.slice(kReasonsShown);
  const children = [shown];
  if (rest.length > 0) {
    children.push(el('details', { class: 'more' },
      el('summary', {}, `+${rest.length} more`),
      el('ul', { class: 'reasons' }, ...rest.map(reasonItem))));
  }
  cell.replaceChildren(...children);
}

function organisationOptions(select) {
  const chosen = select.value;
  const options = [el('option', { value: '' }, 'Organisation…')];
  for (const org of organisations) {
    options.push(el('option', { value: org.id }, org.name && org.name !== org.id ? `${org.name} (${org.id})` : org.id));
  }
  select.replaceChildren(...options);
  select.value = organisations.some((org) => org.id === chosen) ? chosen : '';
  select.dataset.signature = organisationsSignature;
}

function createReassignForm(key) {
  const select = el('select', { 'data-test': 'reassign-org', 'aria-label': 'Organisation to take the need', required: true });
  const reason = el('input', {
    type: 'text', 'data-test': 'reassign-reason', 'aria-label': 'Reason', required: true,
    placeholder: 'Reason (who agreed)', autocomplete: 'off',
  });
  const button = el('button', { type: 'submit', 'data-test': 'reassign-submit' }, 'Reassign');
  const status = el('div', { class: 'reassign-status', 'data-test': 'reassign-status', role: 'status', 'aria-live': 'polite' });
  const form = el('form', { class: 'reassign', novalidate: true },
    el('div', { class: 'reassign-fields' }, select, reason, button), status);
  organisationOptions(select);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitReassign(form.closest('tr'), key);
  });
  return form;
}

function applyRequestState(row, key) {
  const form = row.querySelector('form.reassign');
  if (!form) return;
  const request = requests.get(key);
  const status = form.querySelector('[data-test="reassign-status"]');
  let text = request ? request.text : '';
  let locked = request && request.kind === 'sending';
  if (request && request.kind === 'requested') {
    const age = Date.now() - request.at;
    locked = age < kRequestedLockMs;
    if (!locked) text = `reassign requested at ${clockFormat.format(new Date(request.at))}, not applied yet`;
  }
  setText(status, text);
  setClass(status, 'error', Boolean(request && request.kind === 'error'));
  setClass(status, 'pending', Boolean(request && request.kind !== 'error'));
  for (const control of form.querySelectorAll('select, input, button')) {
    if (control.disabled !== Boolean(locked)) control.disabled = Boolean(locked);
  }
}

async function submitReassign(row, key) {
  const item = row && row.item;
  if (!item || item.reassigned_to) return;
  const form = row.querySelector('form.reassign');
  const organisation = form.querySelector('[data-test="reassign-org"]').value;
  const reason = form.querySelector('[data-test="reassign-reason"]').value.trim();
  if (!organisation) {
    requests.set(key, { kind: 'error', text: 'Choose the organisation that takes the need.' });
  } else if (!reason) {
    requests.set(key, { kind: 'error', text: 'Give a reason (who agreed, and how).' });
  } else {
    requests.set(key, { kind: 'sending', text: 'sending…' });
  }
  applyRequestState(row, key);
  if (requests.get(key).kind !== 'sending') return;

  let next;
  try {
    const response = await fetch('/api/reassign', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ referral_id: item.referral_id, need_index: item.need_index, organisation, reason }),
      cache: 'no-store',
      signal: AbortSignal.timeout(kRequestTimeoutMs),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.ok) {
      next = { kind: 'requested', text: 'reassign requested', at: Date.now() };
    } else {
      const error = body && typeof body.error === 'string' && body.error ? body.error : `HTTP ${response.status}`;
      next = { kind: 'error', text: error };
    }
  } catch (error) {
    next = { kind: 'error', text: `not sent: ${describeFailure(error)}` };
  }
  requests.set(key, next);
  // The row may have been replaced or removed by an update meanwhile: find it again.
  const current = document.querySelector(`#unroutable-rows tr[data-key="${CSS.escape(key)}"]`);
  if (current) applyRequestState(current, key);
}

function createUnroutableRow(item, key) {
  const row = el('tr', { 'data-test': key });
  row.append(
    el('td', { class: 'ref' },
      el('div', { class: 'id mono', 'data-test': 'referral-id' }),
      el('div', { class: 'need' },
        el('span', { class: 'need-index' }), ' · ', el('span', { class: 'need-code', 'data-test': 'need-code' }),
        ' ', el('span', { class: 'urgency', 'data-test': 'urgency' }))),
    el('td', { class: 'from' },
      el('div', { 'data-test': 'referring-organisation' }),
      el('div', { class: 'region muted', 'data-test': 'region' })),
    el('td', { class: 'since' }, el('div', { class: 'at' }), el('div', { class: 'ago muted' })),
    el('td', { class: 'passed', 'data-test': 'passed-over' }),
    el('td', { class: 'action' }));
  return row;
}

function updateUnroutableRow(row, item, key) {
  row.item = item;
  setText(row.querySelector('[data-test="referral-id"]'), item.referral_id || '');
  setText(row.querySelector('.need-index'), `need ${item.need_index}`);
  setText(row.querySelector('[data-test="need-code"]'), item.need_code || '');
  const urgency = row.querySelector('[data-test="urgency"]');
  const label = urgencyLabel(item.urgency);
  setText(urgency, label);
  urgency.className = `urgency urgency-${label.replaceAll(' ', '-')}`;
  setText(row.querySelector('[data-test="referring-organisation"]'), item.referring_organisation || '—');
  setText(row.querySelector('[data-test="region"]'), item.region ? `region ${item.region}` : '');
  setText(row.querySelector('.since .at'), formatAt(item.at));
  setText(row.querySelector('.since .ago'), formatAgo(item.at, currentGeneratedAt));

  const passedOver = list(item.passed_over);
  const signature = JSON.stringify(passedOver);
  const passedCell = row.querySelector('[data-test="passed-over"]');
  if (passedCell.dataset.signature !== signature) {
    renderReasons(passedCell, passedOver);
    passedCell.dataset.signature = signature;
  }

  const action = row.querySelector('.action');
  setClass(row, 'reassigned', Boolean(item.reassigned_to));
  if (item.reassigned_to) {
    requests.delete(key);
    const text = `reassigned to ${item.reassigned_to}`;
    const done = action.querySelector('.reassigned-to');
    if (!done || done.textContent !== text) {
      action.replaceChildren(el('span', { class: 'reassigned-to', 'data-test': 'reassigned-to' }, text));
    }
    return;
  }
  let form = action.querySelector('form.reassign');
  if (!form) {
    form = createReassignForm(key);
    action.replaceChildren(form);
  }
  const select = form.querySelector('select');
  if (select.dataset.signature !== organisationsSignature) organisationOptions(select);
  // The service knows of a reassignment on its way (this page's, another operator's, or schakelctl's)
  // until the router acted on it: refused (requested_to empties again, the reason is in passed_over) or
  // done (reassigned_to).
  const pending = requests.get(key);
  if (item.requested_to) {
    if (!pending || pending.kind !== 'requested') {
      requests.set(key, { kind: 'requested', text: `reassignment to ${item.requested_to} on its way`, at: Date.now() });
    }
    requests.get(key).seen = true;
  } else if (pending && pending.kind === 'requested' && pending.seen) {
    requests.delete(key);
  }
  applyRequestState(row, key);
}

function renderUnroutable(items) {
  reconcileRows(byId('unroutable-rows'), items, unroutableKey, createUnroutableRow, updateUnroutableRow,
    'No unroutable needs: every need found an organisation.', 5);
  const open = items.filter((item) => !item.reassigned_to).length;
  setText(byId('unroutable-count'), items.length ? `${open} open` : '');
  setClass(byId('unroutable-count'), 'attention', open > 0);
  // Requests of rows that left the overview are forgotten.
  const keys = new Set(items.map(unroutableKey));
  for (const key of requests.keys()) if (!keys.has(key)) requests.delete(key);
}

// ---- dead letters ----------------------------------------------------------------------------------------

function createDeadLetterRow() {
  return el('tr', { 'data-test': 'deadletter' },
    el('td', { class: 'mono', 'data-test': 'key' }),
    el('td', { 'data-test': 'consumer' }),
    el('td', { class: 'nowrap', 'data-test': 'at' }),
    el('td', { 'data-test': 'reason' }));
}

function updateDeadLetterRow(row, letter) {
  setText(row.querySelector('[data-test="key"]'), letter.key || '');
  const place = deadLetterPlace(letter);
  row.querySelector('[data-test="key"]').title =
    (letter.topic ? `topic ${letter.topic}, partition ${letter.partition}, offset ${letter.offset}` : '') +
    (place ? `; the dead letter: ${place} (schakelctl dlq redrive ${place})` : '');
  setText(row.querySelector('[data-test="consumer"]'), letter.consumer || '—');
  const at = row.querySelector('[data-test="at"]');
  setText(at, formatAt(letter.at));
  at.title = letter.at || '';
  setText(row.querySelector('[data-test="reason"]'), letter.reason || '—');
}

// Where the dead letter itself is (its consumer's own dead-letter topic): what a redrive names. One
// record may be set aside more than once (re-driven, still refused), so this, not its key, tells rows apart.
function deadLetterPlace(letter) {
  const at = letter.dead_letter;
  return at && at.topic ? `${at.topic}/${at.partition}/${at.offset}` : '';
}

function renderDeadLetters(letters) {
  reconcileRows(byId('deadletter-rows'), letters, (letter) => `dl-${deadLetterPlace(letter) || letter.key}`,
    createDeadLetterRow,
    updateDeadLetterRow, 'No dead letters.', 4);
  setText(byId('deadletter-count'), letters.length ? String(letters.length) : '');
  setClass(byId('deadletter-count'), 'attention', letters.length > 0);
}

// ---- polling ---------------------------------------------------------------------------------------------

function describeFailure(error) {
  if (error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${kRequestTimeoutMs / 1000} s`;
  }
  if (error && error.name === 'TypeError') return 'no answer'; // what fetch reports for a refused connection
  return error && error.message ? error.message : String(error);
}

async function fetchOverview() {
  let response;
  try {
    response = await fetch('/api/overview', {
      headers: { Accept: 'application/json' }, cache: 'no-store', signal: AbortSignal.timeout(kRequestTimeoutMs),
    });
  } catch (error) {
    throw new Error(describeFailure(error));
  }
  if (!response.ok) {
    // 401 and 403 say what is missing (an operator's certificate); other errors have their code.
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const said = body && typeof body.error === 'string' && body.error ? `: ${body.error}` : '';
    throw new Error(`HTTP ${response.status}${said}`);
  }
  try {
    return await response.json();
  } catch {
    throw new Error('unreadable answer');
  }
}

function render(overview) {
  currentGeneratedAt = overview.generated_at || '';
  const orgs = list(overview.organisations);
  organisations = orgs.map((org) => ({ id: org.id, name: org.name }));
  organisationsSignature = JSON.stringify(organisations);
  renderKafka(overview.kafka);
  renderOperator(overview.operator);
  renderOrganisations(orgs);
  renderUnroutable(list(overview.unroutable));
  renderDeadLetters(list(overview.dead_letters));
  renderUpdated(overview.generated_at);
}

async function poll() {
  let overview;
  try {
    overview = await fetchOverview();
  } catch (error) {
    connectionLost(error.message);
    setTimeout(poll, kPollIntervalMs);
    return;
  }
  try {
    render(overview);
    connectionOk();
  } finally {
    setTimeout(poll, kPollIntervalMs);
  }
}

poll();
