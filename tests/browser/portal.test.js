/* Browser test of the esim-operator portal: the customer's termination request
 * and the staff review, in English, Dutch, French and Chinese, driven in
 * headless Debian Chromium by playwright-core against a live `esim-operator
 * serve` per language seeded with `init-demo`. Every page the test visits is
 * checked (checkPage), including the charging work's states (a line's caps
 * form and stop switch, the letters list, the staff's assisted request with
 * its call-back code and the leased-equipment panel): its lang, no sideways
 * scrolling at desktop width and at
 * 360 px, no text of the English catalogue left on a page in another language,
 * and axe-core with no serious or critical violation. Each step leaves a
 * screenshot in ARTIFACTS for docs/journey.md and for whoever reads a failed
 * CI run. Started by run.sh, which sets the environment below. */
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const BASES = Object.fromEntries((process.env.PORTAL_BASE_URLS || '').trim().split(/\s+/)
	.map((kv) => kv.split('=')));
const ART = process.env.PORTAL_ARTIFACTS;
const MODULES = process.env.PORTAL_NODE_MODULES;
const CHROMIUM = process.env.PORTAL_CHROMIUM || '/usr/bin/chromium';
const MAILDIR_PATTERN = process.env.PORTAL_MAILDIR; /* .../mail-LANG */
const WEB = process.env.PORTAL_WEB;
const LANGS = (process.env.PORTAL_LANGS || 'en nl fr zh').trim().split(/\s+/);
const { chromium } = require(path.join(MODULES, 'playwright-core'));
const AXE = fs.readFileSync(path.join(MODULES, 'axe-core', 'axe.min.js'), 'utf8');

/* The four catalogues the pages use, and how each language formats. */
const CAT = {};
for (const l of ['en', 'nl', 'fr', 'zh'])
	CAT[l] = JSON.parse(fs.readFileSync(path.join(WEB, 'i18n', l + '.json'), 'utf8'));
const LOCALE = { en: 'en-BE', nl: 'nl-BE', fr: 'fr-BE', zh: 'zh-CN' };
const HTML_LANG = { en: 'en', nl: 'nl', fr: 'fr', zh: 'zh-CN' };
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1000, height: 720 };

let BASE = null; /* the current language's server */
let MAILDIR = null;

const JAN = { login: 'jan.peeters@example.be', password: 'jan-demo-2026' };
const SOFIE = { login: 'sofie.janssens@example.be', password: 'sofie-demo-2026' };
const REVIEWER = { login: 'reviewer', password: 'review-demo-2026' };

/* Flags the machine needs: no sandbox as root, no GPU, and no background
 * traffic toward Google, which the closed network refuses. Playwright gives
 * every launch its own fresh, empty --user-data-dir. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

let shotNo = 0;
const shots = [];
/* A screenshot of the step; doc: also named DOC-<doc> for docs/img. */
async function shot(page, name, doc) {
	shotNo++;
	const file = path.join(ART, String(shotNo).padStart(3, '0') + '-' + name + '.png');
	await page.screenshot({ path: file, fullPage: true });
	shots.push(file);
	if (doc)
		fs.copyFileSync(file, path.join(ART, 'DOC-' + doc + '.png'));
}

function step(text) {
	console.log('step: ' + text);
}

/* A small real PNG (a grey card with a dark band, like an ID scan), so the
 * staff page can show it as an image. */
function idCardPng() {
	const w = 120, h = 76;
	const raw = Buffer.alloc((w * 3 + 1) * h);
	for (let y = 0; y < h; y++) {
		raw[y * (w * 3 + 1)] = 0;
		for (let x = 0; x < w; x++) {
			const o = y * (w * 3 + 1) + 1 + x * 3;
			const band = y > 8 && y < 20;
			const photo = x > 8 && x < 40 && y > 28 && y < 68;
			raw[o] = band ? 11 : photo ? 150 : 225;
			raw[o + 1] = band ? 79 : photo ? 160 : 230;
			raw[o + 2] = band ? 138 : photo ? 170 : 235;
		}
	}
	const crcTable = [];
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		crcTable[n] = c >>> 0;
	}
	const crc = (buf) => {
		let c = 0xffffffff;
		for (const b of buf)
			c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
	const chunk = (type, data) => {
		const len = Buffer.alloc(4);
		len.writeUInt32BE(data.length);
		const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
		const c = Buffer.alloc(4);
		c.writeUInt32BE(crc(td));
		return Buffer.concat([len, td, c]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(w, 0);
	ihdr.writeUInt32BE(h, 4);
	ihdr[8] = 8;
	ihdr[9] = 2;
	return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
		chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/* Files that must never be accepted as the identity copy: each could run
 * script in a reviewer's session if it were served back as a page. */
const BAD_COPIES = [
	{ name: 'passport.html', mimeType: 'text/html', kind: 'html',
		buffer: Buffer.from('<!DOCTYPE html><script>fetch("/api/me")</script>') },
	{ name: 'passport.svg', mimeType: 'image/svg+xml', kind: 'svg',
		buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>') },
	{ name: 'passport.exe', mimeType: 'application/x-msdownload', kind: 'exe',
		buffer: Buffer.concat([Buffer.from('MZ\x90\x00', 'latin1'), Buffer.alloc(64)]) },
];

/* Every answer of the portal carries the security headers; the identity
 * copy's image view has its own, stricter policy. Failures are collected
 * and checked at the end. */
const headerErrors = [];
let headersChecked = 0;
function checkHeaders(resp) {
	const url = resp.url();
	if (!BASE || !url.startsWith(BASE) || /\/static\/axe\.min\.js$/.test(url))
		return;
	const h = resp.headers();
	const csp = h['content-security-policy'] || '';
	const problems = [];
	if (!/frame-ancestors 'none'/.test(csp))
		problems.push('CSP without frame-ancestors \'none\': ' + csp);
	if (/unsafe-inline|unsafe-eval/.test(csp))
		problems.push('CSP allows inline or eval: ' + csp);
	if (/\/api\/staff\/document\/view/.test(url)) {
		if (!/^default-src 'none'; sandbox/.test(csp))
			problems.push('image view not sandboxed: ' + csp);
	} else if (!/default-src 'self'/.test(csp)) {
		problems.push('CSP without default-src \'self\': ' + csp);
	}
	if (h['x-content-type-options'] !== 'nosniff')
		problems.push('no nosniff');
	if (h['x-frame-options'] !== 'DENY')
		problems.push('X-Frame-Options ' + h['x-frame-options']);
	if (h['referrer-policy'] !== 'no-referrer')
		problems.push('Referrer-Policy ' + h['referrer-policy']);
	if (h['cross-origin-opener-policy'] !== 'same-origin')
		problems.push('Cross-Origin-Opener-Policy ' + h['cross-origin-opener-policy']);
	headersChecked++;
	if (problems.length)
		headerErrors.push(resp.request().method() + ' ' + url + ' (' + resp.status() + '): ' + problems.join('; '));
}

/* The reference of the newest notice in the language's maildir: what a
 * customer would read in the e-mail and type into "Was this really us?".
 * Also gives the mail's text, to check its language. */
function lastMail() {
	const dir = path.join(MAILDIR, 'new');
	const files = fs.readdirSync(dir).map((f) => path.join(dir, f))
		.sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs || a.localeCompare(b, 'en', { numeric: true }));
	assert.ok(files.length > 0, 'the operator e-mailed notices');
	const text = fs.readFileSync(files[files.length - 1], 'utf8');
	const m = /(OP-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(text);
	assert.ok(m, 'the notice carries a verification reference');
	return { reference: m[1], text };
}

/* A catalogue string with its {placeholders} filled. */
function tr(lang, key, vars) {
	const s = CAT[lang][key];
	assert.ok(typeof s === 'string', 'catalogue ' + lang + ' has ' + key);
	return s.replace(/\{(\w+)\}/g, (m, k) => (vars && vars[k] !== undefined ? String(vars[k]) : m));
}

/* The catalogue's text before its first placeholder (for hasText). */
function lead(lang, key) {
	return CAT[lang][key].split('{')[0].trim();
}

function esc(s) {
	return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/* English that must not be left on a page in another language: every
 * catalogue value that the language translates differently, whole (the text
 * of one node or attribute) or, for texts with placeholders, their longer
 * fixed parts. */
function englishLeftovers(lang) {
	const whole = new Set();
	const parts = new Set();
	if (lang === 'en')
		return { whole: [], parts: [] };
	for (const [k, en] of Object.entries(CAT.en)) {
		if (CAT[lang][k] === en)
			continue;
		if (!/\{\w+\}/.test(en)) {
			whole.add(en.trim());
			continue;
		}
		for (const p of en.split(/\{\w+\}/).map((x) => x.trim()))
			if (p.length >= 12 && !Object.values(CAT[lang]).some((v) => v.includes(p)))
				parts.add(p);
	}
	return { whole: [...whole], parts: [...parts] };
}
const LEFTOVERS = {};

/* What a reader sees: the visible text nodes and the visible elements'
 * aria-label, alt, placeholder and title, and the page's lang. */
async function visibleTexts(page) {
	return page.evaluate(() => {
		const out = [];
		const visible = (el) => el && el.checkVisibility ? el.checkVisibility() : !!(el && el.offsetParent);
		const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			const t = n.nodeValue.replace(/\s+/g, ' ').trim();
			const el = n.parentElement;
			/* the language chooser names each language in itself */
			if (t && visible(el) && !el.closest('select#lang') && !el.closest('script, style'))
				out.push(t);
		}
		for (const el of document.querySelectorAll('[aria-label], [alt], [placeholder], [title]'))
			if (visible(el))
				for (const a of ['aria-label', 'alt', 'placeholder', 'title'])
					if (el.getAttribute(a))
						out.push(el.getAttribute(a).trim());
		return { texts: out, lang: document.documentElement.lang, title: document.title };
	});
}

/* Every page the test visits, in its language: lang, no sideways scroll at
 * desktop and at 360 px, nothing left in English, axe-core clean. */
const pageChecks = { pages: 0, axe: 0 };
async function checkPage(page, lang, name, docPhone) {
	pageChecks.pages++;
	const where = lang + ' ' + name;
	const seen = await visibleTexts(page);
	assert.equal(seen.lang, HTML_LANG[lang], where + ': <html lang>');
	const left = LEFTOVERS[lang] || (LEFTOVERS[lang] = englishLeftovers(lang));
	const english = [];
	for (const t of seen.texts.concat([seen.title])) {
		if (left.whole.includes(t) || left.whole.includes(t.replace(/[.:]$/, '')))
			english.push(t);
		for (const p of left.parts)
			if (t.includes(p))
				english.push(t + '  [' + p + ']');
	}
	assert.deepEqual(english, [], where + ': English text on a ' + lang + ' page');

	const vp = page.viewportSize();
	for (const size of [DESKTOP, PHONE]) {
		await page.setViewportSize(size);
		const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
		if (w[0] > w[1]) {
			/* name the elements that stick out, for whoever fixes it */
			const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
				.filter((e) => e.getBoundingClientRect().right > window.innerWidth && e.getClientRects().length)
				.concat([...document.querySelectorAll('body *')].filter((e) => e.scrollWidth > e.clientWidth + 1 &&
					getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0))
				.slice(0, 8).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
					(e.className ? '.' + String(e.className).replace(/\s+/g, '.') : '') + ' ' +
					e.getBoundingClientRect().right.toFixed(2) + '/' + e.scrollWidth + '>' + e.clientWidth));
			assert.fail(where + ' at ' + size.width + ' px scrolls sideways: ' + w[0] + ' > ' + w[1] + ': ' + wide.join(', '));
		}
		if (size === PHONE && docPhone)
			await shot(page, lang + '-phone-' + name, lang + '-phone-' + name);
	}
	await page.setViewportSize(vp);

	/* axe-core from node_modules, served as a same-origin script by the
	 * test's route (the CSP allows scripts from 'self' only) */
	if (!(await page.evaluate(() => typeof window.axe === 'object')))
		await page.addScriptTag({ url: BASE + '/static/axe.min.js' });
	const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
	pageChecks.axe++;
	const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
		.map((v) => v.impact + ' ' + v.id + ': ' + v.help + ' (' + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ') + ')');
	assert.deepEqual(bad, [], where + ': axe-core');
}

/* Money and dates as the language writes them. */
function euro(lang, cents) {
	return new Intl.NumberFormat(LOCALE[lang], { style: 'currency', currency: 'EUR' }).format(cents / 100);
}
function norm(s) {
	return s.replace(/[\s\u00a0\u202f]/g, ' ');
}

async function customerLogin(page, who) {
	await page.goto(BASE + '/#login');
	await page.locator('#view-login').waitFor({ state: 'visible' });
	await page.locator('#login-name').fill(who.login);
	await page.locator('#login-password').fill(who.password);
	await page.locator('#login-form button[type=submit]').click();
	await page.locator('#view-account').waitFor({ state: 'visible' });
}

async function staffLogin(page) {
	await page.goto(BASE + '/staff');
	await page.locator('#view-login').waitFor({ state: 'visible' });
	await page.locator('#login-name').fill(REVIEWER.login);
	await page.locator('#login-password').fill(REVIEWER.password);
	await page.locator('#login-form button[type=submit]').click();
	await page.locator('#view-queue').waitFor({ state: 'visible' });
}

async function submitCase(page, lang, docType, docNumber, reason) {
	await page.locator('#terminate-form').waitFor({ state: 'visible' });
	await page.locator('#term-reason').fill(reason);
	await page.locator('#term-doctype').selectOption(docType);
	await page.locator('#term-docnumber').fill(docNumber);
	await page.locator('#term-doccopy').setInputFiles({ name: 'copy.png', mimeType: 'image/png', buffer: idCardPng() });
	await page.locator('#term-confirm').check();
	await page.locator('#terminate-form button[type=submit]').click();
	await page.locator('#case-state', { hasText: tr(lang, 'state.submitted') }).waitFor();
	return Number(/#case\/(\d+)/.exec(page.url())[1]);
}

/* The whole journey in one language, on that language's server. */
async function journey(browser, lang, consoleErrors, pages) {
	BASE = BASES[lang];
	MAILDIR = MAILDIR_PATTERN.replace(/LANG$/, lang);
	assert.ok(BASE, 'a server for ' + lang);
	const opts = { viewport: DESKTOP, deviceScaleFactor: 1, locale: LOCALE[lang],
		timezoneId: 'Europe/Brussels', acceptDownloads: true };
	const ctxs = [];
	const newCtx = async () => {
		const ctx = await browser.newContext(opts);
		ctx.setDefaultTimeout(10000);
		ctx.on('response', checkHeaders);
		await ctx.route(BASE + '/static/axe.min.js', (route) =>
			route.fulfill({ status: 200, contentType: 'text/javascript', body: AXE }));
		ctx.on('page', (p) => {
			pages.push(p);
			p.on('console', (m) => {
				if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text()))
					consoleErrors.push(lang + ' csp: ' + m.text());
			});
			p.on('pageerror', (e) => consoleErrors.push(lang + ': ' + e.message));
		});
		ctxs.push(ctx);
		return ctx;
	};
	const T = (k, v) => tr(lang, k, v);
	try {
		const janCtx = await newCtx();
		const staffCtx = await newCtx();
		const jan = await janCtx.newPage();

		step(lang + ': the login page speaks the browser\'s language (Accept-Language ' + LOCALE[lang] + ')');
		await jan.goto(BASE + '/#login');
		await jan.locator('#view-login').waitFor({ state: 'visible' });
		await jan.locator('#h-login', { hasText: T('login.title') }).waitFor();
		assert.equal(await jan.locator('#lang').inputValue(), lang, 'the chooser shows the language');
		await checkPage(jan, lang, 'login');
		await shot(jan, lang + '-customer-login');

		step(lang + ': customer logs in and sees the open invoice in ' + LOCALE[lang] + ' format');
		await customerLogin(jan, JAN);
		const me = await (await janCtx.request.get(BASE + '/api/me')).json();
		assert.equal(me.lang, lang, 'the language of the first login is stored on the customer');
		const open = jan.locator('#invoices tbody tr', { hasText: T('invoices.open') });
		await open.first().waitFor();
		assert.equal(await open.count(), 1, 'one open invoice');
		assert.equal(norm(await jan.locator('#acc-balance').textContent()), norm(euro(lang, 4250)));
		const period = await jan.locator('#invoices tbody tr td').nth(1).textContent();
		assert.ok(/2026/.test(period) && !/^2026-10$/.test(period), 'the period is a month name: ' + period);
		await checkPage(jan, lang, 'account', true);
		await shot(jan, lang + '-account-open-invoice', lang + '-account');
		assert.ok((await jan.locator('#letters').textContent()).includes(T('letters.none')), 'no letters yet');

		step(lang + ': spending caps and the stop switch on the line, said in ' + lang);
		const spendRow = jan.locator('#spend tbody tr').first();
		await spendRow.waitFor();
		const lineId = (await spendRow.getAttribute('id')).replace(/^spend-/, '');
		const saveCaps = () => jan.locator('#spend-' + lineId + ' button', { hasText: T('spend.save') }).click();
		await jan.locator('#cap-' + lineId).fill('25 euro');
		await saveCaps();
		await jan.locator('#error', { hasText: T('spend.bad') }).waitFor();
		await checkPage(jan, lang, 'caps-refused');
		await jan.locator('#cap-' + lineId).fill('25');
		await jan.locator('#rcap-' + lineId).fill('10,50');
		await saveCaps();
		await jan.locator('#flash', { hasText: lead(lang, 'spend.saved') }).waitFor();
		assert.equal(await jan.locator('#error').isVisible(), false, 'the refusal is gone once saved');
		assert.equal(await jan.locator('#cap-' + lineId).inputValue(), '25.00');
		assert.equal(await jan.locator('#rcap-' + lineId).inputValue(), '10.50');
		const acct = await (await janCtx.request.get(BASE + '/api/account')).json();
		const l1 = acct.lines.find((l) => String(l.id) === lineId);
		assert.equal(l1.cap_cents, 2500);
		assert.equal(l1.roaming_cap_cents, 1050);
		await jan.locator('#stop-' + lineId, { hasText: T('spend.stop') }).click();
		await jan.locator('#flash', { hasText: lead(lang, 'spend.stopped') }).waitFor();
		await jan.locator('#spend-' + lineId + ' .pill', { hasText: T('spend.off') }).waitFor();
		await jan.locator('#stop-' + lineId, { hasText: T('spend.resume') }).waitFor();
		await checkPage(jan, lang, 'caps-stopped');
		await shot(jan, lang + '-account-caps-stopped');
		await jan.locator('#stop-' + lineId).click();
		await jan.locator('#flash', { hasText: lead(lang, 'spend.resumed') }).waitFor();
		await jan.locator('#spend-' + lineId + ' .pill', { hasText: T('spend.on') }).waitFor();
		await checkPage(jan, lang, 'caps-resumed');

		step(lang + ': customer pays the invoice (simulated payment)');
		await open.first().locator('button').click();
		await jan.locator('#flash', { hasText: lead(lang, 'pay.done') }).waitFor();
		await jan.locator('#invoices tbody tr', { hasText: T('invoices.open') }).waitFor({ state: 'detached' });
		assert.equal(norm(await jan.locator('#acc-balance').textContent()), norm(euro(lang, 0)));
		await checkPage(jan, lang, 'invoice-paid');

		step(lang + ': customer starts the termination and sees the prechecks');
		await jan.locator('#lines a.button').first().click();
		await jan.locator('#view-terminate').waitFor({ state: 'visible' });
		await jan.locator('#precheck-list li').first().waitFor();
		const checks = await jan.locator('#precheck-list').textContent();
		assert.ok(checks.includes(T('pre.no_open_invoices')), 'the paid invoice no longer shows as open');
		assert.ok(checks.includes(T('pre.notice', { days: 30 })), checks);
		assert.ok(checks.includes(T('pre.equipment')) || checks.includes(T('pre.no_equipment')), checks);
		await checkPage(jan, lang, 'terminate', true);
		await shot(jan, lang + '-terminate-prechecks');

		step(lang + ': an HTML page, an SVG or a program as the "copy" is refused, said in ' + lang);
		await jan.locator('#term-reason').fill('Moving abroad (Lisbon) at the end of the year.');
		await jan.locator('#term-doctype').selectOption('id_card');
		await jan.locator('#term-docnumber').fill('592-1234567-89');
		await jan.locator('#term-confirm').check();
		for (const bad of BAD_COPIES) {
			await jan.locator('#term-doccopy').setInputFiles(bad);
			await jan.locator('#terminate-form button[type=submit]').click();
			const want = T('err.bad_document', { why: T('doc.refused.' + bad.kind) });
			await jan.locator('#error', { hasText: want }).waitFor();
			assert.ok(/#terminate\//.test(jan.url()), 'still on the form after ' + bad.name + ': ' + jan.url());
			if (bad.kind === 'html') {
				await checkPage(jan, lang, 'refused-copy');
				await shot(jan, lang + '-refused-' + bad.name.replace('.', '-'));
			}
			await jan.evaluate(() => { document.getElementById('error').hidden = true; });
		}
		const none = await janCtx.request.get(BASE + '/api/cases');
		assert.equal((await none.json()).cases.length, 0, 'no case was made from a refused copy');

		await jan.locator('#term-doccopy').setInputFiles({ name: 'eid-front.png', mimeType: 'image/png', buffer: idCardPng() });
		await jan.locator('#terminate-form button[type=submit]').click();
		await jan.locator('#view-case').waitFor({ state: 'visible' });
		await jan.locator('#case-state', { hasText: T('state.submitted') }).waitFor();
		const caseId = Number(/#case\/(\d+)/.exec(jan.url())[1]);
		assert.ok(caseId > 0, 'case id in the URL');
		assert.ok((await jan.locator('#case-doc').textContent()).includes(T('case.copy_on_file')));
		assert.ok(lastMail().text.includes('Subject: ' + T('notice.subject.case', { id: caseId, state: T('state.submitted') })),
			'the confirmation e-mail is in ' + lang);
		await checkPage(jan, lang, 'case-submitted');
		await shot(jan, lang + '-case-submitted', lang + '-case-submitted');

		step(lang + ': staff logs in, sees the case in the queue with its checks');
		const staff = await staffCtx.newPage();
		await staff.goto(BASE + '/staff');
		await staff.locator('#view-login').waitFor({ state: 'visible' });
		await checkPage(staff, lang, 'staff-login');
		await staffLogin(staff);
		const row = staff.locator('#queue-case-' + caseId);
		await row.waitFor();
		assert.match(await row.textContent(), /Jan Peeters/);
		assert.ok((await row.textContent()).includes(T('staff.ready')));
		await checkPage(staff, lang, 'staff-queue');
		await shot(staff, lang + '-staff-queue');

		step(lang + ': staff opens the case: identity evidence and account checks');
		await row.locator('a').click();
		await staff.locator('#view-review').waitFor({ state: 'visible' });
		assert.equal((await staff.locator('#rv-docnumber').textContent()).trim(), '592-1234567-89');
		assert.match(await staff.locator('#rv-dochash').textContent(), /^[0-9a-f]{64}$/);
		await staff.waitForFunction(() => {
			const i = document.getElementById('rv-docimg');
			return i && i.complete && i.naturalWidth > 0;
		});
		assert.equal(await staff.locator('#rv-docimg').evaluate((i) => i.naturalWidth), 120, 'the uploaded copy comes back intact');
		assert.equal(await staff.locator('#rv-doccopy a[target]').count(), 0, 'the copy is never opened in a tab');
		const copy = await staffCtx.request.get(BASE + await staff.locator('#rv-docdownload').getAttribute('href'));
		assert.equal(copy.status(), 200);
		assert.match(copy.headers()['content-disposition'], /^attachment;/, 'the copy is a download');
		assert.ok(Buffer.compare(await copy.body(), idCardPng()) === 0, 'the download is the uploaded copy');
		assert.ok((await staff.locator('#rv-checks').textContent()).includes(T('staff.chk.no_invoices')));
		await checkPage(staff, lang, 'staff-review');
		await shot(staff, lang + '-staff-review-evidence', lang + '-staff-review');

		step(lang + ': staff approves');
		await staff.locator('#approve-note').fill('Identity matches the account holder; invoices settled.');
		await staff.locator('#approve-btn').click();
		await staff.locator('#flash', { hasText: lead(lang, 'staff.done.approve') }).waitFor();
		await checkPage(staff, lang, 'staff-approved');

		step(lang + ': customer sees the approval and every event with its reference');
		await jan.reload();
		await jan.locator('#view-case').waitFor({ state: 'visible' });
		const done = [T('state.approved'), T('state.service_stopped'), T('state.awaiting_deletion'), T('state.closed')];
		const state = (await jan.locator('#case-state').textContent()).trim();
		assert.ok(done.includes(state), 'state ' + state);
		const events = await jan.locator('#events tbody tr').allTextContents();
		assert.ok(events.some((e) => e.includes(T('state.approved'))), 'an approval event is listed: ' + events.join(' | '));
		const refs = (await jan.locator('#events tbody td.ref').allTextContents()).map((s) => s.trim()).filter(Boolean);
		assert.ok(refs.length >= 2, 'each state change carries a verification reference');
		if (state === T('state.closed')) {
			/* the signed record, and its printable view in the page's language */
			step(lang + ': the case is closed: the signed record and its printable view in ' + lang);
			const dl = jan.waitForEvent('download');
			await jan.locator('#record-download').click();
			const d = await dl;
			assert.equal(d.suggestedFilename(), 'termination-' + caseId + '.json');
			const rec = JSON.parse(fs.readFileSync(await d.path(), 'utf8'));
			assert.ok(rec.record && rec.signature && rec.signature.value && rec.certificate, 'a signed record');
			const href = await jan.locator('#record-view').getAttribute('href');
			assert.ok(href.endsWith('&lang=' + lang), href);
			const view = await janCtx.request.get(BASE + href);
			assert.equal(view.status(), 200);
			const html = await view.text();
			assert.ok(html.includes('<html lang="' + HTML_LANG[lang] + '">'), 'the record view is in ' + lang);
			assert.ok(html.includes(T('record.print.title', { id: caseId })), 'its heading in ' + lang);
			const printable = await janCtx.newPage();
			await printable.goto(BASE + href);
			await checkPage(printable, lang, 'record');
			await printable.close();
		}
		await checkPage(jan, lang, 'case-approved');
		await shot(jan, lang + '-customer-case-approved');
		if (state === T('state.closed')) {
			step(lang + ': the final invoice is a letter on the account page, with its reference and a print link');
			await jan.goto(BASE + '/#account');
			const letter = jan.locator('#letters li', { has: jan.locator('a', { hasText: T('letters.open') }) });
			await letter.first().waitFor();
			assert.match(await letter.first().locator('.ref').textContent(), /^OP-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
			assert.equal(await jan.locator('#letters li', { hasText: T('letters.none') }).count(), 0);
			await checkPage(jan, lang, 'account-letters');
			await shot(jan, lang + '-account-letters');
			await jan.goBack();
			await jan.locator('#view-case').waitFor({ state: 'visible' });
		}

		step(lang + ': "Was this really us?" with the reference of the last notice, in ' + lang);
		const mail = lastMail();
		assert.ok(refs.includes(mail.reference), mail.reference + ' is one of the case events\' references');
		assert.ok(mail.text.includes(T('notice.reference', { reference: mail.reference }).split('\n')[0]),
			'the notice\'s footer is in ' + lang);
		await jan.locator('nav a[href="#check"]').click();
		await jan.locator('#view-check').waitFor({ state: 'visible' });
		await jan.locator('#check-ref').fill(mail.reference.toLowerCase().replace(/-/g, ' '));
		await jan.locator('#check-form button[type=submit]').click();
		await jan.locator('#check-result.genuine', { hasText: T('verdict.genuine') }).waitFor();
		await checkPage(jan, lang, 'check-genuine');
		await shot(jan, lang + '-check-genuine');

		step(lang + ': a made-up reference, without logging in');
		const anonCtx = await newCtx();
		const anon = await anonCtx.newPage();
		await anon.goto(BASE + '/#check');
		await anon.locator('#check-ref').fill('OP-FAKE-2026');
		await anon.locator('#check-form button[type=submit]').click();
		await anon.locator('#check-result.fake', { hasText: T('verdict.fake') }).waitFor();
		await checkPage(anon, lang, 'check-not-us');
		await shot(anon, lang + '-check-not-us');

		step(lang + ': another customer cannot open this case by editing the URL');
		await customerLogin(anon, SOFIE);
		await anon.goto(BASE + '/#case/' + caseId);
		await anon.locator('#error', { hasText: T('err.not_found') }).waitFor();
		assert.equal(await anon.locator('#view-case').isVisible(), false, 'nothing of the case is shown');
		assert.equal(await anon.getByText('592-1234567-89').count(), 0);
		const api = await anon.request.get(BASE + '/api/case?id=' + caseId);
		assert.ok(api.status() === 403 || api.status() === 404, 'API refuses: ' + api.status());

		step(lang + ': second customer: staff asks for more information, she answers, staff rejects');
		await anon.goto(BASE + '/#account');
		await anon.locator('#lines a.button').first().click();
		const case2 = await submitCase(anon, lang, 'passport', 'EP1234567', 'Switching to a family plan.');
		await staff.goto(BASE + '/staff#case/' + case2);
		await staff.locator('#rv-id', { hasText: '#' + case2 }).waitFor();
		await staff.locator('#take-btn').click();
		await staff.locator('#rv-state', { hasText: T('state.in_review') }).waitFor();
		await staff.locator('#info-message').fill('Please upload the photo page of the passport.');
		await staff.locator('#info-form button[type=submit]').click();
		await staff.locator('#rv-state', { hasText: T('state.needs_info') }).waitFor();
		await anon.reload();
		await anon.locator('#respond-form').waitFor({ state: 'visible' });
		assert.match(await anon.locator('#respond-question').textContent(), /photo page/);
		await anon.locator('#respond-message').fill('Here is the photo page.');
		await anon.locator('#respond-copy').setInputFiles({ name: 'photo-page.png', mimeType: 'image/png', buffer: idCardPng() });
		await checkPage(anon, lang, 'customer-answers');
		await shot(anon, lang + '-customer-answers-question');
		await anon.locator('#respond-form button[type=submit]').click();
		await anon.locator('#case-state', { hasText: T('state.in_review') }).waitFor();
		await staff.reload();
		await staff.locator('#rv-state', { hasText: T('state.in_review') }).waitFor();
		await staff.locator('#reject-reason').fill('The passport number does not match our records.');
		await staff.locator('#reject-form button[type=submit]').click();
		await staff.locator('#rv-state', { hasText: T('state.rejected') }).waitFor();
		assert.equal(await staff.locator('#rv-actions').isVisible(), false, 'no decision forms on a decided case');
		await anon.reload();
		await anon.locator('#case-state', { hasText: T('state.rejected') }).waitFor();
		assert.match(await anon.locator('#case-decision').textContent(), /does not match our records/);
		await checkPage(anon, lang, 'customer-rejected');
		await shot(anon, lang + '-customer-sees-rejection');

		step(lang + ': she asks again; approved, her line (with a profile) waits for the deletion');
		await anon.goto(BASE + '/#account');
		await anon.locator('#lines a.button').first().click();
		const case3 = await submitCase(anon, lang, 'passport', 'EP7654321', 'Switching to a family plan.');
		await staff.goto(BASE + '/staff#case/' + case3);
		await staff.locator('#rv-id', { hasText: '#' + case3 }).waitFor();

		step(lang + ': her leased phone (run.sh) is not back: approval blocked until staff marks it received');
		const due = staff.locator('#rv-checks li', { hasText: T('staff.equip.item', { item: 'Smartphone (leased)', ref: 'RET-2026-0042' }) });
		await due.locator('button', { hasText: T('staff.equip.mark') }).waitFor();
		await staff.locator('#rv-checks li', { hasText: T('staff.block.equipment_due') }).first().waitFor();
		assert.equal(await staff.locator('#approve-btn').isDisabled(), true, 'no approval while equipment is due');
		await checkPage(staff, lang, 'staff-equipment-due');
		await shot(staff, lang + '-staff-equipment-due');
		await due.locator('button').click();
		await staff.locator('#flash', { hasText: T('staff.equip.done', { item: 'Smartphone (leased)' }) }).waitFor();
		await due.locator('.muted', { hasText: T('staff.equip.received') }).waitFor();
		await staff.locator('#approve-btn:enabled').waitFor();
		await checkPage(staff, lang, 'staff-equipment-received');
		await staff.locator('#approve-btn').click();
		await staff.locator('#flash', { hasText: lead(lang, 'staff.done.approve') }).waitFor();
		await anon.reload();
		await anon.locator('#case-state', { hasText: T('state.awaiting_deletion') }).waitFor();
		assert.ok((await anon.locator('#case-explain').textContent()).includes(T('state.awaiting_deletion.explain')));
		assert.equal(await anon.locator('#case-record').isVisible(), false, 'no record before the case closes');
		await checkPage(anon, lang, 'customer-awaiting-deletion');
		await shot(anon, lang + '-customer-awaiting-deletion');

		if (lang === 'en') {
			step('en: the language is changed on the page; the choice is stored on the customer and wins on the next visit');
			await jan.goto(BASE + '/#account');
			await jan.locator('#view-account').waitFor({ state: 'visible' });
			await jan.locator('#lang').selectOption('nl');
			await jan.locator('#h-account', { hasText: tr('nl', 'account.title') }).waitFor();
			assert.equal(await jan.evaluate(() => document.documentElement.lang), 'nl');
			await jan.locator('#lines tbody td[data-label="' + tr('nl', 'lines.number') + '"]').first().waitFor();
			assert.equal((await (await janCtx.request.get(BASE + '/api/me')).json()).lang, 'nl');
			/* a new browser that asks for English still gets Dutch once logged in */
			const again = await (await newCtx()).newPage();
			await again.goto(BASE + '/#login');
			await again.locator('#h-login', { hasText: T('login.title') }).waitFor();
			await customerLogin(again, JAN);
			await again.locator('#h-account', { hasText: tr('nl', 'account.title') }).waitFor();
			await again.locator('#lang').selectOption('en');
			await again.locator('#h-account', { hasText: T('account.title') }).waitFor();
			assert.equal((await (await janCtx.request.get(BASE + '/api/me')).json()).lang, 'en');
		}

		step(lang + ': staff\'s assisted request: a call-back code to the customer, a wrong one, the right one');
		await staff.locator('#nav-intake').click();
		await staff.locator('#view-intake').waitFor({ state: 'visible' });
		await checkPage(staff, lang, 'staff-intake');
		await staff.locator('#intake-customer').fill('2'); /* Sofie */
		await staff.locator('#intake-start-form button[type=submit]').click();
		await staff.locator('#flash', { hasText: lead(lang, 'staff.intake.sent') }).waitFor();
		await staff.locator('#intake-verify-form').waitFor({ state: 'visible' });
		assert.equal(await staff.locator('#intake-case-form').isVisible(), false, 'no request form before the code');
		await checkPage(staff, lang, 'staff-intake-sent');
		const cb = lastMail().text;
		assert.ok(cb.includes('Subject: ' + T('notice.callback.subject')), 'the call-back e-mail is in ' + lang);
		const code = /(?<!OP-)\b([A-Z2-9]{4}-[A-Z2-9]{4})\b/.exec(cb.replace(/OP-[A-Z0-9]{4}-[A-Z0-9]{4}/g, ''));
		assert.ok(code, 'the e-mail carries the call-back code');
		await staff.locator('#intake-code').fill(code[1] === 'ZZZZ-ZZZZ' ? 'YYYY-YYYY' : 'ZZZZ-ZZZZ');
		await staff.locator('#intake-verify-form button[type=submit]').click();
		await staff.locator('#error', { hasText: T('staff.intake.wrong') }).waitFor();
		await checkPage(staff, lang, 'staff-intake-wrong');
		await staff.locator('#intake-code').fill(code[1].toLowerCase());
		await staff.locator('#intake-verify-form button[type=submit]').click();
		await staff.locator('#flash', { hasText: T('staff.intake.verified') }).waitFor();
		await staff.locator('#intake-case-form').waitFor({ state: 'visible' });
		await checkPage(staff, lang, 'staff-intake-verified');
		await shot(staff, lang + '-staff-intake-verified');

		step(lang + ': a state change without the CSRF token is refused');
		const nocsrf = await anon.request.post(BASE + '/api/logout', { data: {} });
		assert.equal(nocsrf.status(), 403);
		assert.equal((await nocsrf.json()).error, 'csrf');
	} finally {
		for (const c of ctxs)
			await c.close();
	}
}

async function main() {
	fs.mkdirSync(ART, { recursive: true });
	const started = Date.now();
	const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
	const pages = [];
	const consoleErrors = [];
	try {
		for (const lang of LANGS) {
			const t0 = Date.now();
			await journey(browser, lang, consoleErrors, pages);
			console.log('browser_portal: ' + lang + ' journey passed in ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
		}
		assert.deepEqual(consoleErrors, [], 'no script errors or CSP violations in the pages');
		assert.deepEqual(headerErrors, [], 'every answer carries the security headers');
		assert.ok(headersChecked >= 30 * LANGS.length, 'headers checked on ' + headersChecked + ' answers');
		console.log('browser_portal: all steps passed in ' + LANGS.join(', ') + ' (' + pageChecks.pages +
			' page checks: lang, 1000 and 360 px, untranslated text, axe-core; ' + shots.length +
			' screenshots in ' + ART + '; ' + ((Date.now() - started) / 1000).toFixed(1) + ' s)');
	} catch (e) {
		for (let i = 0; i < pages.length; i++) {
			try {
				if (!pages[i].isClosed())
					await pages[i].screenshot({ path: path.join(ART, 'FAILED-page' + i + '.png'), fullPage: true });
			} catch (ignored) {
				/* a closed page has nothing to show */
			}
		}
		if (consoleErrors.length)
			console.error('script errors: ' + consoleErrors.join('\n'));
		throw e;
	} finally {
		await browser.close();
	}
}

main().catch((e) => {
	console.error('browser_portal FAILED: ' + (e && e.stack ? e.stack : e));
	process.exit(1);
});
