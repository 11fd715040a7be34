#!/usr/bin/env node
// Checks the operators' console in a real browser: Debian's Chromium (/usr/bin/chromium), headless, driven by
// playwright-core (tests/console/install puts it in place). It opens the page, waits until it shows what
// EXPECT.json says (the page polls the ops service every second), optionally reassigns one unroutable need
// through the form, and saves full-page screenshots: OUT.png after the checks, OUT-after.png after the
// reassign. One line per check that passed; on a mismatch what was expected and what the page showed, the
// screenshot anyway, exit 1. Exit 2: wrong usage or no browser.
//
//   node tests/console/console_check.mjs --url https://127.0.0.1:PORT/ --expect EXPECT.json --screenshot OUT.png
//        [--ca CA.pem --cert OPERATOR.pem --key OPERATOR.key]
//        [--refused-cert ORG.pem --refused-key ORG.key]
//        [--timeout SECONDS]   how long each wait may take (default 30)
//
// The console lets in operators only, by their TLS client certificate. With --cert and --key the browser
// presents that certificate (playwright's clientCertificates, as an operator's browser presents the one
// imported into it) and trusts the console's certificate only when the network's authority --ca signed it
// (Node's NODE_EXTRA_CA_CERTS: the script starts itself again with it). It first checks that the page
// refuses a browser without a certificate (401) and, with --refused-cert and --refused-key, one presenting
// that certificate (an organisation's: 403), and that neither page shows any figure.
//
// EXPECT.json (every part optional):
//   {"organisations": {"mjd": {"waiting": 1, "overdue": 0}, ...},   cells: waiting overdue accepted in_progress
//                                                                    done lag (lag -1: the page shows "?")
//    "unroutable": [{"referral_id": "r-…", "need_index": 2, "need_code": "housing"}],
//    "dead_letters": 0,                                              number of dead-letter rows
//    "operator": "anna",                                             who the page says is signed in
//    "reassign": {"referral_id": "r-…", "need_index": 2, "organisation": "overweeghuis", "reason": "…"}}
//
// For development, tests/console/dev_server.py serves the page with a canned API and dev_expect.json fits it
// (restart the dev server before each run: it remembers the reassignment).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const kChromium = '/usr/bin/chromium';
const kTitle = 'Schakel — operators';
const kCountCells = ['waiting', 'overdue', 'accepted', 'in_progress', 'done', 'lag'];
const kViewport = { width: 1280, height: 900 };

let passed = 0;
let failed = 0;
const pass = (line) => {
  passed += 1;
  console.log(`ok    ${line}`);
};
const fail = (line) => {
  failed += 1;
  console.log(`FAIL  ${line}`);
};

function usage(problem) {
  console.error(`console_check: ${problem}`);
  console.error('usage: node tests/console/console_check.mjs --url URL --expect EXPECT.json --screenshot OUT.png ' +
    '[--ca CA.pem --cert CERT.pem --key KEY.pem] [--refused-cert CERT.pem --refused-key KEY.pem] [--timeout SECONDS]');
  process.exit(2);
}

// ---- arguments and expectations --------------------------------------------------------------------------

function readArguments() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        expect: { type: 'string' },
        screenshot: { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'refused-cert': { type: 'string' },
        'refused-key': { type: 'string' },
        timeout: { type: 'string', default: '30' },
      },
      strict: true,
    }));
  } catch (error) {
    usage(error.message);
  }
  for (const name of ['url', 'expect', 'screenshot']) if (!values[name]) usage(`--${name} is required`);
  if (Boolean(values.cert) !== Boolean(values.key)) usage('--cert and --key go together');
  if (Boolean(values['refused-cert']) !== Boolean(values['refused-key'])) {
    usage('--refused-cert and --refused-key go together');
  }
  if ((values.cert || values['refused-cert']) && !values.ca) usage('a client certificate needs --ca');
  for (const name of ['ca', 'cert', 'key', 'refused-cert', 'refused-key']) {
    if (values[name]) {
      try {
        readFileSync(values[name]);
      } catch (error) {
        usage(`--${name}: ${error.message}`);
      }
    }
  }
  const timeoutSeconds = Number(values.timeout);
  if (!(timeoutSeconds > 0)) usage(`--timeout: not a positive number: ${values.timeout}`);
  return { ...values, timeoutMs: timeoutSeconds * 1000 };
}

const isInteger = (n) => Number.isInteger(n);

function readExpectations(file) {
  let expect;
  try {
    expect = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    usage(`--expect ${file}: ${error.message}`);
  }
  const bad = (what) => usage(`--expect ${file}: ${what}`);
  if (typeof expect !== 'object' || expect === null || Array.isArray(expect)) bad('not a JSON object');
  const organisations = expect.organisations ?? {};
  if (typeof organisations !== 'object' || Array.isArray(organisations)) bad('"organisations" must be an object');
  for (const [id, cells] of Object.entries(organisations)) {
    if (typeof cells !== 'object' || cells === null) bad(`organisations.${id}: must be an object`);
    for (const [cell, value] of Object.entries(cells)) {
      if (!kCountCells.includes(cell)) bad(`organisations.${id}.${cell}: not one of ${kCountCells.join(', ')}`);
      if (!isInteger(value)) bad(`organisations.${id}.${cell}: must be a whole number`);
    }
  }
  const unroutable = expect.unroutable ?? [];
  if (!Array.isArray(unroutable)) bad('"unroutable" must be a list');
  unroutable.forEach((row, i) => {
    if (typeof row?.referral_id !== 'string' || !isInteger(row?.need_index)) {
      bad(`unroutable[${i}]: needs "referral_id" (text) and "need_index" (number)`);
    }
    if (row.need_code !== undefined && typeof row.need_code !== 'string') bad(`unroutable[${i}].need_code: must be text`);
  });
  if (expect.dead_letters !== undefined && !isInteger(expect.dead_letters)) bad('"dead_letters" must be a number');
  if (expect.operator !== undefined && typeof expect.operator !== 'string') bad('"operator" must be text');
  const reassign = expect.reassign;
  if (reassign !== undefined) {
    if (typeof reassign?.referral_id !== 'string' || !isInteger(reassign?.need_index) ||
        typeof reassign?.organisation !== 'string' || typeof reassign?.reason !== 'string') {
      bad('"reassign" needs "referral_id", "need_index", "organisation" and "reason"');
    }
  }
  return { organisations, unroutable, dead_letters: expect.dead_letters, operator: expect.operator, reassign };
}

function afterPath(screenshot) {
  const ext = path.extname(screenshot);
  return `${screenshot.slice(0, screenshot.length - ext.length)}-after${ext || '.png'}`;
}

const rowKey = (row) => `unroutable-${row.referral_id}-${row.need_index}`;
const describeRow = (row) => `${row.referral_id} need ${row.need_index}`;

// ---- what the page shows ---------------------------------------------------------------------------------

// Runs in the page: everything the checks read, as plain data.
function observePage() {
  const text = (node) => (node ? node.textContent.trim() : null);
  const organisations = {};
  for (const row of document.querySelectorAll('tbody tr[data-test^="org-"]')) {
    const cells = {};
    for (const cell of row.querySelectorAll('[data-test]')) cells[cell.dataset.test] = text(cell);
    organisations[row.dataset.test.slice('org-'.length)] = cells;
  }
  const unroutable = {};
  for (const row of document.querySelectorAll('tr[data-test^="unroutable-"]')) {
    const status = row.querySelector('[data-test="reassign-status"]');
    unroutable[row.dataset.test] = {
      need_code: text(row.querySelector('[data-test="need-code"]')),
      text: row.innerText.replace(/\s+/g, ' ').trim(),
      has_form: row.querySelector('[data-test="reassign-submit"]') !== null,
      status: text(status),
      status_is_error: Boolean(status && status.classList.contains('error')),
      choices: [...row.querySelectorAll('[data-test="reassign-org"] option')].map((o) => o.value).filter(Boolean),
    };
  }
  const banner = document.querySelector('[data-test="connection"]');
  return {
    title: document.title,
    organisations,
    unroutable,
    dead_letters: document.querySelectorAll('[data-test="deadletter"]').length,
    banner_visible: Boolean(banner && !banner.hidden && banner.offsetParent !== null),
    banner_text: text(banner),
    updated: text(document.querySelector('[data-test="updated"]')),
    operator: text(document.querySelector('[data-test="operator"]')),
  };
}

// The number a count cell shows ("1,204" is 1204; "?" is the unknown lag, -1), or null.
function cellNumber(shown) {
  if (shown === null || shown === undefined) return null;
  if (shown === '?') return -1;
  const digits = shown.replaceAll(',', '');
  return /^-?\d+$/.test(digits) ? Number(digits) : null;
}

// Compares what the page shows with the expectations: [{ok, line}] per check.
function compare(expect, seen) {
  const results = [];
  const add = (ok, line) => results.push({ ok, line });

  add(seen.title === kTitle, seen.title === kTitle
    ? `page title "${kTitle}"`
    : `page title: expected "${kTitle}", page shows "${seen.title}"`);

  const shownIds = Object.keys(seen.organisations);
  for (const [id, cells] of Object.entries(expect.organisations)) {
    const row = seen.organisations[id];
    const wanted = Object.entries(cells).map(([cell, value]) => `${cell} ${value === -1 && cell === 'lag' ? '?' : value}`);
    if (!row) {
      add(false, `organisation ${id}: expected a row (data-test="org-${id}") with ${wanted.join(', ')}; ` +
        `page has rows for: ${shownIds.join(', ') || 'none'}`);
      continue;
    }
    const wrong = Object.entries(cells)
      .filter(([cell, value]) => cellNumber(row[cell]) !== value)
      .map(([cell, value]) => `${cell}: expected ${value === -1 && cell === 'lag' ? '"?" (-1)' : value}, ` +
        `page shows ${row[cell] === undefined ? 'no such cell' : JSON.stringify(row[cell])}`);
    add(wrong.length === 0, wrong.length === 0
      ? `organisation ${id}: ${wanted.join(', ')}`
      : `organisation ${id}: ${wrong.join('; ')}`);
  }

  const shownRows = Object.keys(seen.unroutable);
  for (const expected of expect.unroutable) {
    const key = rowKey(expected);
    const row = seen.unroutable[key];
    if (!row) {
      add(false, `unroutable ${describeRow(expected)}: expected a row (data-test="${key}"); page has: ` +
        `${shownRows.map((k) => k.replace(/^unroutable-/, '')).join(', ') || 'none'}`);
    } else if (expected.need_code !== undefined && row.need_code !== expected.need_code) {
      add(false, `unroutable ${describeRow(expected)}: expected need code "${expected.need_code}", ` +
        `page shows ${JSON.stringify(row.need_code)}`);
    } else {
      add(true, `unroutable ${describeRow(expected)}: present` +
        (expected.need_code !== undefined ? `, need code ${expected.need_code}` : ''));
    }
  }

  if (expect.dead_letters !== undefined) {
    add(seen.dead_letters === expect.dead_letters, seen.dead_letters === expect.dead_letters
      ? `dead letters: ${seen.dead_letters} row(s)`
      : `dead letters: expected ${expect.dead_letters} row(s), page shows ${seen.dead_letters}`);
  }

  if (expect.operator !== undefined) {
    const wanted = `Operator ${expect.operator}`;
    add(seen.operator === wanted, seen.operator === wanted
      ? `signed in: "${wanted}"`
      : `signed in: expected "${wanted}", page shows ${JSON.stringify(seen.operator)}`);
  }

  const live = !seen.banner_visible && seen.updated && seen.updated !== '—';
  add(Boolean(live), live
    ? `connected: no "connection lost" banner, last updated ${seen.updated}`
    : `connection: expected no banner and a "last updated" time; page shows banner ` +
      `${seen.banner_visible ? JSON.stringify(seen.banner_text) : 'hidden'}, last updated ${JSON.stringify(seen.updated)}`);
  return results;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Observes the page until every check passes or the time is up; returns the last results.
async function waitForExpectations(page, expect, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const results = compare(expect, await page.evaluate(observePage));
    if (results.every((r) => r.ok) || Date.now() >= deadline) return results;
    await sleep(250);
  }
}

async function screenshot(page, file) {
  try {
    await page.screenshot({ path: file, fullPage: true });
    pass(`screenshot ${file}`);
  } catch (error) {
    fail(`screenshot ${file}: ${error.message}`);
  }
}

// Reassigns through the form and waits until the row shows "reassigned to ORG"; true when it did.
async function reassign(page, request, timeoutMs) {
  const key = rowKey(request);
  const what = `reassign ${describeRow(request)} to ${request.organisation}`;
  const before = (await page.evaluate(observePage)).unroutable[key];
  if (!before) {
    fail(`${what}: expected the row data-test="${key}", page has none`);
    return false;
  }
  if (!before.has_form) {
    fail(`${what}: expected a reassign form in the row, page shows: ${JSON.stringify(before.text)}`);
    return false;
  }
  if (!before.choices.includes(request.organisation)) {
    fail(`${what}: expected "${request.organisation}" among the choices, page offers: ${before.choices.join(', ') || 'none'}`);
    return false;
  }
  const row = page.locator(`[data-test="${key}"]`);
  await row.locator('[data-test="reassign-org"]').selectOption(request.organisation, { timeout: 5000 });
  await row.locator('[data-test="reassign-reason"]').fill(request.reason, { timeout: 5000 });
  const started = Date.now();
  await row.locator('[data-test="reassign-submit"]').click({ timeout: 5000 });
  pass(`${what}: form filled in and sent`);

  const wanted = `reassigned to ${request.organisation}`;
  const statuses = [];
  for (;;) {
    const seen = (await page.evaluate(observePage)).unroutable[key];
    if (seen && seen.status && statuses.at(-1) !== seen.status) statuses.push(seen.status);
    if (seen && seen.text.includes(wanted)) {
      pass(`${what}: row shows "${wanted}" after ${((Date.now() - started) / 1000).toFixed(1)} s` +
        (statuses.length ? ` (status on the way: ${statuses.map((s) => JSON.stringify(s)).join(' → ')})` : ''));
      return true;
    }
    if (!seen || seen.status_is_error || Date.now() - started >= timeoutMs) {
      fail(`${what}: expected the row to show "${wanted}"; page shows ` +
        `${seen ? JSON.stringify(seen.text) : 'no such row any more'}` +
        (seen && seen.status_is_error ? ` (the form reports: ${JSON.stringify(seen.status)})` : ''));
      return false;
    }
    await sleep(200);
  }
}

// Opens the console in a context of its own and checks it is refused with `status`, showing no figure.
async function checkRefused(browser, args, what, status, contextOptions) {
  const context = await browser.newContext({ viewport: kViewport, ...contextOptions });
  try {
    const page = await context.newPage();
    const response = await page.goto(args.url, { waitUntil: 'load', timeout: args.timeoutMs });
    const got = response ? response.status() : 'no answer';
    const text = await page.evaluate(() => document.body.innerText);
    // The refusal names what is missing, never anything from the network (the figures' ids and words).
    const leaks = ['organisations', 'unroutable', 'referral', 'waiting'].filter((word) => text.includes(word));
    if (got === status && leaks.length === 0) pass(`${what}: refused with ${status}, page shows ${JSON.stringify(text)}`);
    else fail(`${what}: expected ${status} and no figures, got ${got}, page shows ${JSON.stringify(text.slice(0, 300))}`);
  } catch (error) {
    fail(`${what}: ${error.message.split('\n')[0]}`);
  } finally {
    await context.close();
  }
}

async function main() {
  const args = readArguments();
  const expect = readExpectations(args.expect);
  // The console's certificate is the network's own authority's: Node (which presents the client
  // certificate for the browser) must trust it, and reads NODE_EXTRA_CA_CERTS only when it starts.
  if (args.ca && process.env.NODE_EXTRA_CA_CERTS !== args.ca) {
    const again = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: 'inherit', env: { ...process.env, NODE_EXTRA_CA_CERTS: args.ca },
    });
    process.exit(again.status ?? 1);
  }
  const origin = new URL(args.url).origin;

  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (error) {
    console.error(`console_check: playwright-core is not installed (${error.code || error.message}): run tests/console/install`);
    process.exit(2);
  }
  let browser;
  try {
    browser = await chromium.launch({ executablePath: kChromium, headless: true, args: ['--disable-dev-shm-usage'] });
  } catch (error) {
    console.error(`console_check: cannot start ${kChromium} (run deploy/local/bootstrap): ${error.message.split('\n')[0]}`);
    process.exit(2);
  }

  const pageErrors = [];
  const consoleErrors = [];
  try {
    if (args.cert) {
      // Without a certificate the browser cannot check the console's either (the authority is not in its
      // store): this one refusal is looked at without that check.
      await checkRefused(browser, args, 'without a client certificate', 401, { ignoreHTTPSErrors: true });
      if (args['refused-cert']) {
        await checkRefused(browser, args, `with ${path.basename(args['refused-cert'])}`, 403, {
          clientCertificates: [{ origin, certPath: args['refused-cert'], keyPath: args['refused-key'] }],
        });
      }
    }
    const context = await browser.newContext({
      viewport: kViewport, locale: 'en-GB', timezoneId: 'Europe/Amsterdam',
      ...(args.cert ? { clientCertificates: [{ origin, certPath: args.cert, keyPath: args.key }] } : {}),
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });

    let opened = false;
    try {
      const response = await page.goto(args.url, { waitUntil: 'load', timeout: args.timeoutMs });
      opened = response !== null && response.ok();
      if (opened) pass(`opened ${args.url}`);
      else fail(`open ${args.url}: expected 200, got ${response ? response.status() : 'no answer'}`);
    } catch (error) {
      fail(`open ${args.url}: ${error.message.split('\n')[0]}`);
    }

    if (opened) {
      for (const result of await waitForExpectations(page, expect, args.timeoutMs)) {
        (result.ok ? pass : fail)(result.line);
      }
    }
    await screenshot(page, args.screenshot);

    if (expect.reassign && (!opened || failed > 0)) {
      console.log('      reassign not tried: the checks above failed');
    } else if (expect.reassign) {
      const reassigned = await reassign(page, expect.reassign, args.timeoutMs);
      if (reassigned) await sleep(300); // let the row settle for the picture
      await screenshot(page, afterPath(args.screenshot));
    }

    if (pageErrors.length === 0) pass('no JavaScript errors on the page');
    else fail(`JavaScript errors on the page: expected none, got: ${pageErrors.join(' | ')}`);
  } finally {
    await browser.close();
  }

  if (failed > 0 && consoleErrors.length > 0) {
    console.log(`      browser console errors: ${consoleErrors.slice(-5).join(' | ')}`);
  }
  console.log(`console_check: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(`console_check: ${error.stack || error}`);
  process.exit(1);
});
