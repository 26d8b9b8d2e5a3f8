/* Browser test of the esim-operator portal: the customer's termination request
 * and the staff approval, driven in headless Debian Chromium by playwright-core
 * against a live `esim-operator serve` seeded with `init-demo`. Each step
 * leaves a screenshot in ARTIFACTS for docs/journey.md and for whoever reads a
 * failed CI run. Started by run.sh, which sets the environment below. */
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const BASE = process.env.PORTAL_BASE_URL;
const ART = process.env.PORTAL_ARTIFACTS;
const MODULES = process.env.PORTAL_NODE_MODULES;
const CHROMIUM = process.env.PORTAL_CHROMIUM || '/usr/bin/chromium';
const MAILDIR = process.env.PORTAL_MAILDIR;
const { chromium } = require(path.join(MODULES, 'playwright-core'));

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
async function shot(page, name) {
	shotNo++;
	const file = path.join(ART, String(shotNo).padStart(2, '0') + '-' + name + '.png');
	await page.screenshot({ path: file, fullPage: true });
	shots.push(file);
	console.log('  screenshot ' + path.basename(file));
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
	{ name: 'passport.html', mimeType: 'text/html', names: /HTML/,
		buffer: Buffer.from('<!DOCTYPE html><script>fetch("/api/me")</script>') },
	{ name: 'passport.svg', mimeType: 'image/svg+xml', names: /SVG/,
		buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>') },
	{ name: 'passport.exe', mimeType: 'application/x-msdownload', names: /executable/,
		buffer: Buffer.concat([Buffer.from('MZ\x90\x00', 'latin1'), Buffer.alloc(64)]) },
];

/* Every answer of the portal carries the security headers; the identity
 * copy's image view has its own, stricter policy. Failures are collected
 * and checked at the end. */
const headerErrors = [];
let headersChecked = 0;
function checkHeaders(resp) {
	const url = resp.url();
	if (!url.startsWith(BASE))
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

/* The reference of the newest notice in the operator's maildir: what a
 * customer would read in the e-mail and type into "Was this really us?". */
function lastMailedReference() {
	const dir = path.join(MAILDIR, 'new');
	const files = fs.readdirSync(dir).map((f) => path.join(dir, f))
		.sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs || a.localeCompare(b, 'en', { numeric: true }));
	assert.ok(files.length > 0, 'the operator e-mailed notices');
	const m = /Verification reference: (OP-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(fs.readFileSync(files[files.length - 1], 'utf8'));
	assert.ok(m, 'the notice carries a verification reference');
	return m[1];
}

async function customerLogin(page, who) {
	await page.goto(BASE + '/#login');
	await page.getByLabel('E-mail address').fill(who.login);
	await page.getByLabel('Password').fill(who.password);
	await page.getByRole('button', { name: 'Log in' }).click();
	await page.locator('#view-account').waitFor({ state: 'visible' });
}

async function main() {
	fs.mkdirSync(ART, { recursive: true });
	const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
	const opts = { viewport: { width: 1000, height: 720 }, deviceScaleFactor: 1, locale: 'nl-BE',
		timezoneId: 'Europe/Brussels', acceptDownloads: true };
	const janCtx = await browser.newContext(opts);
	const staffCtx = await browser.newContext({ ...opts, locale: 'en-BE' });
	const sofieCtx = await browser.newContext({ ...opts, locale: 'fr-BE' });
	const pages = [];
	const consoleErrors = [];
	for (const ctx of [janCtx, staffCtx, sofieCtx]) {
		ctx.setDefaultTimeout(10000);
		ctx.on('response', checkHeaders); /* pages, scripts, styles, API, images */
		ctx.on('page', (p) => {
			pages.push(p);
			/* the server's CSP forbids inline script and style: a page that
			 * relied on either would log a violation here */
			p.on('console', (m) => {
				if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text()))
					consoleErrors.push('csp: ' + m.text());
			});
		});
	}
	try {
		const jan = await janCtx.newPage();
		jan.on('pageerror', (e) => consoleErrors.push('jan: ' + e.message));

		step('customer logs in');
		await jan.goto(BASE + '/#login');
		await jan.locator('#view-login').waitFor({ state: 'visible' });
		await shot(jan, 'customer-login');
		await jan.getByLabel('E-mail address').fill(JAN.login);
		await jan.getByLabel('Password').fill(JAN.password);
		await jan.getByRole('button', { name: 'Log in' }).click();
		await jan.locator('#view-account').waitFor({ state: 'visible' });
		await assert.doesNotReject(jan.getByText('Jan Peeters').first().waitFor());

		step('customer sees the open invoice, formatted for nl-BE');
		const open = jan.locator('#invoices tbody tr', { hasText: 'Open' });
		await open.first().waitFor();
		assert.equal(await open.count(), 1, 'one open invoice');
		const bal = (await jan.locator('#acc-balance').textContent()).replace(/\s/g, ' ');
		assert.match(bal, /€\s?42,50/, 'balance shown as EUR 42,50 in nl-BE, got ' + bal);
		await shot(jan, 'account-open-invoice');

		step('customer pays the invoice (simulated payment)');
		await open.first().getByRole('button', { name: /^Pay invoice/ }).click();
		await jan.locator('#flash', { hasText: 'Payment of' }).waitFor();
		await jan.locator('#invoices tbody tr', { hasText: 'Open' }).waitFor({ state: 'detached' });
		assert.match((await jan.locator('#acc-balance').textContent()).replace(/\s/g, ' '), /€\s?0,00/);
		await shot(jan, 'invoice-paid');

		step('customer starts the termination and sees the prechecks');
		await jan.getByRole('link', { name: /^Terminate this line/ }).first().click();
		await jan.locator('#view-terminate').waitFor({ state: 'visible' });
		await jan.locator('#precheck-list li').first().waitFor();
		const checks = await jan.locator('#precheck-list').textContent();
		assert.match(checks, /No open invoices/, 'the paid invoice no longer shows as open');
		assert.match(checks, /Notice period: \d+ days/);
		assert.match(checks, /equipment/i);
		await shot(jan, 'terminate-prechecks');

		step('customer gives reason, identity document and an uploaded copy, and submits');
		await jan.getByLabel('Why do you want to end this line?').fill('Moving abroad (Lisbon) at the end of the year.');
		await jan.getByLabel('Document type').selectOption('id_card');
		await jan.getByLabel('Document number').fill('592-1234567-89');
		await jan.getByLabel(/I understand/).check();

		step('an HTML page, an SVG or a program as the "copy" is refused with a visible error');
		for (const bad of BAD_COPIES) {
			await jan.getByLabel(/Copy of the document/).setInputFiles(bad);
			await jan.getByRole('button', { name: 'Submit termination request' }).click();
			const err = jan.locator('#error');
			await err.waitFor({ state: 'visible' });
			await jan.waitForFunction(() => /refused/.test(document.getElementById('error').textContent));
			const text = await err.textContent();
			assert.match(text, /refused/, bad.name + ': ' + text);
			assert.match(text, bad.names, bad.name + ' named in: ' + text);
			assert.match(text, /JPEG, PNG or PDF/, bad.name + ': ' + text);
			assert.ok(/#terminate\//.test(jan.url()), 'still on the form after ' + bad.name + ': ' + jan.url());
			await shot(jan, 'refused-' + bad.name.replace('.', '-'));
			await jan.evaluate(() => { document.getElementById('error').hidden = true; });
		}
		const none = await janCtx.request.get(BASE + '/api/cases');
		assert.equal((await none.json()).cases.length, 0, 'no case was made from a refused copy');

		await jan.getByLabel(/Copy of the document/).setInputFiles({ name: 'eid-front.png', mimeType: 'image/png',
			buffer: idCardPng() });
		await shot(jan, 'terminate-form-filled');
		await jan.getByRole('button', { name: 'Submit termination request' }).click();
		await jan.locator('#view-case').waitFor({ state: 'visible' });
		await jan.locator('#case-state', { hasText: 'Submitted' }).waitFor();
		const caseId = Number(/#case\/(\d+)/.exec(jan.url())[1]);
		assert.ok(caseId > 0, 'case id in the URL');
		assert.ok(await jan.locator('#events tbody tr').count() >= 1, 'the submission is an event');
		assert.match(await jan.locator('#case-doc').textContent(), /copy on file/);
		await shot(jan, 'case-submitted');

		step('staff logs in and sees the case in the queue with its checks');
		const staff = await staffCtx.newPage();
		staff.on('pageerror', (e) => consoleErrors.push('staff: ' + e.message));
		await staff.goto(BASE + '/staff');
		await staff.getByLabel('Login name').fill(REVIEWER.login);
		await staff.getByLabel('Password').fill(REVIEWER.password);
		await staff.getByRole('button', { name: 'Log in' }).click();
		const row = staff.locator('#queue-case-' + caseId);
		await row.waitFor();
		assert.match(await row.textContent(), /Jan Peeters/);
		assert.match(await row.textContent(), /ready to approve/);
		await shot(staff, 'staff-queue');

		step('staff opens the case: identity evidence and account checks');
		await row.getByRole('link', { name: 'Review case ' + caseId }).click();
		await staff.locator('#view-review').waitFor({ state: 'visible' });
		assert.equal((await staff.locator('#rv-docnumber').textContent()).trim(), '592-1234567-89');
		assert.match(await staff.locator('#rv-dochash').textContent(), /^[0-9a-f]{64}$/);
		const img = staff.locator('#rv-docimg');
		await img.waitFor();
		await staff.waitForFunction(() => {
			const i = document.getElementById('rv-docimg');
			return i && i.complete && i.naturalWidth > 0;
		});
		assert.equal(await img.evaluate((i) => i.naturalWidth), 120, 'the uploaded copy comes back intact');
		assert.match(await img.getAttribute('src'), /^\/api\/staff\/document\/view\?id=\d+$/, 'the image comes from the sandboxed view');
		assert.equal(await staff.locator('#rv-doccopy a[target]').count(), 0, 'the copy is never opened in a tab');
		const dlHref = await staff.locator('#rv-docdownload').getAttribute('href');
		const copy = await staffCtx.request.get(BASE + dlHref);
		assert.equal(copy.status(), 200);
		assert.match(copy.headers()['content-disposition'], /^attachment;/, 'the copy is a download');
		assert.equal(copy.headers()['content-type'], 'image/png', 'with its checked type');
		assert.equal(copy.headers()['x-content-type-options'], 'nosniff');
		assert.ok(Buffer.compare(await copy.body(), idCardPng()) === 0, 'the download is the uploaded copy');
		assert.match(await staff.locator('#rv-checks').textContent(), /No open invoices/);
		await shot(staff, 'staff-review-evidence');

		step('staff approves');
		await staff.getByLabel('Note (optional)').fill('Identity matches the account holder; invoices settled.');
		await staff.getByRole('button', { name: 'Approve' }).click();
		await staff.locator('#flash', { hasText: 'Approved.' }).waitFor();
		await staff.locator('#rv-state', { hasText: /Approved|Service stopped|Waiting for profile deletion|Closed/ }).waitFor();
		await shot(staff, 'staff-approved');

		step('customer sees the approval and every event with its reference');
		await jan.reload();
		await jan.locator('#view-case').waitFor({ state: 'visible' });
		const state = (await jan.locator('#case-state').textContent()).trim();
		assert.match(state, /Approved|Service stopped|Waiting for profile deletion|Closed/);
		const events = await jan.locator('#events tbody tr').allTextContents();
		assert.ok(events.some((e) => /Approved/.test(e)), 'an approval event is listed: ' + events.join(' | '));
		const refs = (await jan.locator('#events tbody td.ref').allTextContents()).map((s) => s.trim()).filter(Boolean);
		assert.ok(refs.length >= 2, 'each state change carries a verification reference');
		if (/Closed/.test(state)) {
			const dl = jan.waitForEvent('download');
			await jan.getByRole('link', { name: /Download the signed record/ }).click();
			const d = await dl;
			const saved = path.join(ART, d.suggestedFilename());
			await d.saveAs(saved);
			assert.equal(d.suggestedFilename(), 'termination-' + caseId + '.json');
			const rec = JSON.parse(fs.readFileSync(saved, 'utf8'));
			assert.ok(rec.record && rec.signature && rec.signature.value && rec.certificate, 'a signed record');
			assert.equal(rec.record['case'].id, caseId);
			const view = await janCtx.request.get(BASE + (await jan.locator('#record-view').getAttribute('href')));
			assert.equal(view.status(), 200);
			assert.match(view.headers()['content-type'], /text\/html/);
		}
		await shot(jan, 'customer-case-approved');

		step('"Was this really us?" with the reference of the last notice the operator e-mailed');
		const real = lastMailedReference();
		assert.ok(refs.includes(real), real + ' is one of the case events\' references');
		await jan.getByRole('link', { name: 'Was this really us?' }).first().click();
		await jan.locator('#view-check').waitFor({ state: 'visible' });
		await jan.getByLabel('Reference you were given').fill(real.toLowerCase().replace(/-/g, ' '));
		await jan.getByRole('button', { name: 'Check' }).click();
		await jan.locator('#check-result.genuine', { hasText: 'Yes, this was us.' }).waitFor();
		await shot(jan, 'check-genuine');

		step('"Was this really us?" with a made-up reference, without logging in');
		const anon = await sofieCtx.newPage();
		anon.on('pageerror', (e) => consoleErrors.push('anon: ' + e.message));
		await anon.goto(BASE + '/#check');
		await anon.getByLabel('Reference you were given').fill('OP-FAKE-2026');
		await anon.getByRole('button', { name: 'Check' }).click();
		const fake = anon.locator('#check-result.fake');
		await fake.waitFor();
		assert.match(await fake.textContent(), /This was NOT us — hang up \/ do not act/);
		await shot(anon, 'check-not-us');

		step('another customer cannot open this case by editing the URL');
		await customerLogin(anon, SOFIE);
		await anon.goto(BASE + '/#case/' + caseId);
		await anon.locator('#error', { hasText: 'does not exist or does not belong to your account' }).waitFor();
		assert.equal(await anon.locator('#view-case').isVisible(), false, 'nothing of the case is shown');
		assert.equal(await anon.getByText('592-1234567-89').count(), 0);
		const api = await anon.request.get(BASE + '/api/case?id=' + caseId);
		assert.ok(api.status() === 403 || api.status() === 404, 'API refuses: ' + api.status());
		const rec = await anon.request.get(BASE + '/api/case/record?id=' + caseId);
		assert.ok(rec.status() === 403 || rec.status() === 404, 'record refused: ' + rec.status());
		await shot(anon, 'other-customer-refused');

		step('second customer: staff asks for more information, she answers, staff rejects with a reason');
		await anon.goto(BASE + '/#account');
		await anon.getByRole('link', { name: /^Terminate this line/ }).first().click();
		await anon.locator('#terminate-form').waitFor({ state: 'visible' });
		await anon.getByLabel('Why do you want to end this line?').fill('Switching to a family plan.');
		await anon.getByLabel('Document type').selectOption('passport');
		await anon.getByLabel('Document number').fill('EP1234567');
		await anon.getByLabel(/Copy of the document/).setInputFiles({ name: 'passport.png', mimeType: 'image/png',
			buffer: idCardPng() });
		await anon.getByLabel(/I understand/).check();
		await anon.getByRole('button', { name: 'Submit termination request' }).click();
		await anon.locator('#case-state', { hasText: 'Submitted' }).waitFor();
		const case2 = Number(/#case\/(\d+)/.exec(anon.url())[1]);
		assert.notEqual(case2, caseId);

		await staff.goto(BASE + '/staff#case/' + case2);
		await staff.locator('#rv-id', { hasText: '#' + case2 }).waitFor();
		await staff.getByRole('button', { name: 'Take this case into review' }).click();
		await staff.locator('#rv-state', { hasText: 'In review' }).waitFor();
		assert.equal(await staff.locator('#take-form').isVisible(), false);
		await staff.getByLabel('What do you need from the customer?').fill('Please upload the photo page of the passport.');
		await staff.getByRole('button', { name: 'Ask for more information' }).click();
		await staff.locator('#rv-state', { hasText: 'More information needed' }).waitFor();

		await anon.reload();
		await anon.locator('#respond-form').waitFor({ state: 'visible' });
		assert.match(await anon.locator('#respond-question').textContent(), /photo page/);
		await anon.getByLabel('Your answer').fill('Here is the photo page.');
		await anon.getByLabel(/New copy of a document/).setInputFiles({ name: 'photo-page.png', mimeType: 'image/png',
			buffer: idCardPng() });
		await shot(anon, 'customer-answers-question');
		await anon.getByRole('button', { name: 'Send answer' }).click();
		await anon.locator('#case-state', { hasText: 'In review' }).waitFor();

		await staff.reload();
		await staff.locator('#rv-state', { hasText: 'In review' }).waitFor();
		await staff.getByLabel(/Reason for rejection/).fill('The passport number does not match our records.');
		await staff.getByRole('button', { name: 'Reject' }).click();
		await staff.locator('#rv-state', { hasText: 'Rejected' }).waitFor();
		assert.equal(await staff.locator('#rv-actions').isVisible(), false, 'no decision forms on a decided case');

		await anon.reload();
		await anon.locator('#case-state', { hasText: 'Rejected' }).waitFor();
		assert.match(await anon.locator('#case-decision').textContent(), /does not match our records/);
		await shot(anon, 'customer-sees-rejection');

		step('second customer asks again; approved, her line (with a profile) waits for the deletion');
		await anon.goto(BASE + '/#account');
		await anon.getByRole('link', { name: /^Terminate this line/ }).first().click();
		await anon.locator('#terminate-form').waitFor({ state: 'visible' });
		await anon.getByLabel('Why do you want to end this line?').fill('Switching to a family plan.');
		await anon.getByLabel('Document type').selectOption('passport');
		await anon.getByLabel('Document number').fill('EP7654321');
		await anon.getByLabel(/Copy of the document/).setInputFiles({ name: 'passport.png', mimeType: 'image/png',
			buffer: idCardPng() });
		await anon.getByLabel(/I understand/).check();
		await anon.getByRole('button', { name: 'Submit termination request' }).click();
		await anon.locator('#case-state', { hasText: 'Submitted' }).waitFor();
		const case3 = Number(/#case\/(\d+)/.exec(anon.url())[1]);
		await staff.goto(BASE + '/staff#case/' + case3);
		await staff.locator('#rv-id', { hasText: '#' + case3 }).waitFor();
		await staff.getByRole('button', { name: 'Approve' }).click();
		await staff.locator('#flash', { hasText: 'Approved.' }).waitFor();
		await anon.reload();
		await anon.locator('#case-state', { hasText: 'Waiting for profile deletion' }).waitFor();
		assert.match(await anon.locator('#case-explain').textContent(), /Delete the eSIM profile/);
		assert.equal(await anon.locator('#case-record').isVisible(), false, 'no record before the case closes');
		await shot(anon, 'customer-awaiting-deletion');

		step('a state change without the CSRF token is refused');
		const nocsrf = await anon.request.post(BASE + '/api/logout', { data: {} });
		assert.equal(nocsrf.status(), 403);
		assert.equal((await nocsrf.json()).error, 'csrf');

		assert.deepEqual(consoleErrors, [], 'no script errors or CSP violations in the pages');
		assert.deepEqual(headerErrors, [], 'every answer carries the security headers');
		assert.ok(headersChecked >= 30, 'headers checked on ' + headersChecked + ' answers');
		console.log('browser_portal: all steps passed (' + shots.length + ' screenshots in ' + ART + ')');
	} catch (e) {
		for (let i = 0; i < pages.length; i++) {
			try {
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
