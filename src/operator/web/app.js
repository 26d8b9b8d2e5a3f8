/* esim-operator portal script: the shared helpers (JSON API calls with the
 * CSRF header, the language catalogues and money and date formats in the
 * page's language, safe DOM building) and the
 * customer portal of index.html. staff.html loads this file too, for the
 * helpers only, then staff.js. Text from the server is always inserted as
 * text nodes, never as HTML, so a hostile reason or note cannot run script. */
'use strict';

var Portal = (function () {
	var csrf = null;
	/* The four languages and the formats that go with each (Belgian usage
	 * for the three national ones, mainland usage for Chinese). */
	var LANGS = ['en', 'nl', 'fr', 'zh'];
	var LOCALE = { en: 'en-BE', nl: 'nl-BE', fr: 'fr-BE', zh: 'zh-CN' };
	var HTML_LANG = { en: 'en', nl: 'nl', fr: 'fr', zh: 'zh-CN' };
	var cur = 'en';
	var cat = {};
	var onLangChange = null;
	var langSaver = null;

	function locale() {
		return LOCALE[cur];
	}

	function lang() {
		return cur;
	}

	/* The catalogue string for key with {name} placeholders filled in. A
	 * missing key shows as the key itself (tests/i18n/check_catalogues.py
	 * keeps that from reaching a release). */
	function t(key, vars) {
		var s = Object.prototype.hasOwnProperty.call(cat, key) ? cat[key] : key;
		return s.replace(/\{(\w+)\}/g, function (m, k) {
			return vars && vars[k] !== undefined && vars[k] !== null ? String(vars[k]) : m;
		});
	}

	/* Elements carry data-i18n="key" (their text) and
	 * data-i18n-attr="attr:key;attr:key" (attributes such as aria-label). */
	function applyI18n(root) {
		var i, n, list = (root || document).querySelectorAll('[data-i18n]');
		for (i = 0; i < list.length; i++) {
			n = list[i];
			n.textContent = t(n.getAttribute('data-i18n'));
		}
		list = (root || document).querySelectorAll('[data-i18n-attr]');
		for (i = 0; i < list.length; i++) {
			n = list[i];
			n.getAttribute('data-i18n-attr').split(';').forEach(function (pair) {
				var kv = pair.split(':');
				if (kv.length === 2)
					n.setAttribute(kv[0].trim(), t(kv[1].trim()));
			});
		}
		document.documentElement.setAttribute('lang', HTML_LANG[cur]);
		var sel = $('lang');
		if (sel)
			sel.value = cur;
	}

	function storedChoice() {
		var l = null;
		try {
			l = window.localStorage.getItem('esim-lang');
		} catch (e) {
			l = null;
		}
		return LANGS.indexOf(l) >= 0 ? l : null;
	}

	/* Loads a catalogue from the server (GET /api/i18n): with no language
	 * the server picks one from the browser's Accept-Language. */
	function loadLang(l) {
		return fetch('/api/i18n' + (l ? '?lang=' + encodeURIComponent(l) : ''), {
			credentials: 'same-origin', headers: { 'Accept': 'application/json' }
		}).then(function (r) {
			if (!r.ok)
				throw new Error('catalogue ' + r.status);
			return r.json();
		}).then(function (j) {
			cur = LANGS.indexOf(j.lang) >= 0 ? j.lang : 'en';
			cat = j.messages || {};
			applyI18n(document);
		});
	}

	/* A language chosen on the page: kept in this browser, and for a
	 * logged-in customer on the account too (langSaver), so that notices
	 * follow. */
	function chooseLang(l, remember, quiet) {
		if (LANGS.indexOf(l) < 0 || (l === cur && Object.keys(cat).length))
			return Promise.resolve();
		if (remember) {
			try {
				window.localStorage.setItem('esim-lang', l);
			} catch (e) {
				/* private mode: the choice lasts for this page only */
			}
		}
		return loadLang(l).then(function () {
			if (remember && langSaver)
				return langSaver(l);
		}).then(function () {
			if (onLangChange && !quiet)
				onLangChange();
		});
	}

	/* Each body cell of a table.data gets its column's name as data-label,
	 * which style.css shows in front of it on narrow screens (the cards).
	 * A column whose heading is for screen readers only gets none. */
	function labelTables() {
		var tables = document.querySelectorAll('table.data');
		for (var t = 0; t < tables.length; t++) {
			var head = tables[t].tHead && tables[t].tHead.rows[0];
			if (!head)
				continue;
			var names = [];
			for (var i = 0; i < head.cells.length; i++) {
				var th = head.cells[i];
				var sr = th.querySelector('.sr-only');
				var text = th.textContent.replace(/\s+/g, ' ').trim();
				names.push(sr && sr.textContent.trim() === text ? '' : text);
			}
			var rows = tables[t].tBodies[0] ? tables[t].tBodies[0].rows : [];
			for (var r = 0; r < rows.length; r++)
				for (var c = 0; c < rows[r].cells.length; c++) {
					var cell = rows[r].cells[c];
					if (cell.colSpan > 1 || !names[c])
						cell.removeAttribute('data-label');
					else
						cell.setAttribute('data-label', names[c]);
				}
		}
	}

	function setLangSaver(fn) {
		langSaver = fn;
	}

	function money(cents, currency) {
		if (typeof cents !== 'number')
			return '';
		return new Intl.NumberFormat(locale(), {
			style: 'currency',
			currency: currency || 'EUR'
		}).format(cents / 100);
	}

	function dateTime(iso) {
		if (!iso)
			return '';
		var d = new Date(iso);
		if (isNaN(d.getTime()))
			return String(iso);
		return new Intl.DateTimeFormat(locale(), {
			dateStyle: 'medium',
			timeStyle: 'short',
			timeZone: 'Europe/Brussels'
		}).format(d);
	}

	function day(ymd) {
		if (!ymd)
			return '';
		var d = new Date(ymd + 'T12:00:00Z');
		if (isNaN(d.getTime()))
			return String(ymd);
		return new Intl.DateTimeFormat(locale(), {
			dateStyle: 'medium',
			timeZone: 'Europe/Brussels'
		}).format(d);
	}

	/* +32470123456 -> +32 470 12 34 56, the way Belgians write mobiles. */
	function msisdn(s) {
		if (!s)
			return '';
		var m = /^\+32(4\d\d)(\d\d)(\d\d)(\d\d)$/.exec(s || '');
		return m ? '+32 ' + m[1] + ' ' + m[2] + ' ' + m[3] + ' ' + m[4] : (s || '');
	}

	function el(tag, attrs) {
		var n = document.createElement(tag);
		var k;
		for (k in attrs || {}) {
			if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] === null || attrs[k] === undefined)
				continue;
			if (k === 'text')
				n.textContent = attrs[k];
			else if (k === 'class')
				n.className = attrs[k];
			else if (k.indexOf('on') === 0)
				n.addEventListener(k.slice(2), attrs[k]);
			else
				n.setAttribute(k, attrs[k]);
		}
		for (var i = 2; i < arguments.length; i++) {
			var c = arguments[i];
			if (c === null || c === undefined)
				continue;
			n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
		}
		return n;
	}

	function $(id) {
		return document.getElementById(id);
	}

	function clear(n) {
		while (n.firstChild)
			n.removeChild(n.firstChild);
		return n;
	}

	function ApiError(status, code, message) {
		this.status = status;
		this.code = code;
		this.message = message || code || ('HTTP ' + status);
	}

	/* One JSON call. Every POST carries the session's CSRF token (the API
	 * refuses state changes without it); the cookie goes along by itself. */
	function api(method, path, body) {
		var headers = { 'Accept': 'application/json' };
		var opts = { method: method, credentials: 'same-origin', headers: headers };
		if (method !== 'GET') {
			headers['Content-Type'] = 'application/json';
			if (csrf)
				headers['X-CSRF-Token'] = csrf;
			opts.body = JSON.stringify(body || {});
		}
		return fetch(path, opts).then(function (r) {
			return r.text().then(function (t) {
				var data = null;
				try {
					data = t ? JSON.parse(t) : null;
				} catch (e) {
					data = null;
				}
				if (!r.ok)
					throw new ApiError(r.status, data && data.error, data && data.message);
				return data;
			});
		});
	}

	function setCsrf(t) {
		csrf = t || null;
	}

	function flash(text) {
		var f = $('flash');
		f.textContent = text;
		f.hidden = !text;
	}

	function showError(text) {
		var e = $('error');
		e.textContent = text || '';
		e.hidden = !text;
	}

	/* Error text for people: what happened and what to do, never a stack. */
	function explain(err) {
		if (!(err instanceof ApiError))
			return t('err.network');
		switch (err.code) {
		case 'unauthenticated':
		case 'bad_credentials':
			return t('err.unauthenticated');
		case 'locked':
			return t('err.locked');
		case 'csrf':
			return t('err.csrf');
		case 'forbidden':
			return t('err.forbidden');
		case 'not_found':
			return t('err.not_found');
		case 'conflict':
			return t('err.conflict', { why: conflictText(err.message) });
		case 'bad_document':
			return t('err.bad_document', { why: documentText(err.message) });
		default:
			return err.message || t('err.other');
		}
	}

	function conflictText(m) {
		var known = ['open_invoices', 'already_paid', 'bad_state', 'case_open', 'line_terminated'];
		return known.indexOf(m) >= 0 ? t('conflict.' + m) : t('conflict.other');
	}

	/* The server names what a refused copy looks like (document.c, in
	 * English for its log); the page says the same in the reader's
	 * language. */
	function documentText(m) {
		var kinds = [[/SVG/, 'svg'], [/HTML/, 'html'], [/XML/, 'xml'], [/executable/, 'exe'],
			[/GIF/, 'gif'], [/ZIP/, 'zip'], [/declared type/, 'mismatch'], [/empty/, 'empty'],
			[/4 MiB/, 'size']];
		for (var i = 0; i < kinds.length; i++)
			if (kinds[i][0].test(m || ''))
				return t('doc.refused.' + kinds[i][1]);
		return t('doc.refused.unknown');
	}

	/* Reads a chosen file as base64 without its data: URL prefix. */
	function fileBase64(file) {
		return new Promise(function (resolve, reject) {
			var r = new FileReader();
			r.onload = function () {
				var s = String(r.result);
				resolve(s.slice(s.indexOf(',') + 1));
			};
			r.onerror = function () {
				reject(r.error);
			};
			r.readAsDataURL(file);
		});
	}

	var STATES = ['submitted', 'in_review', 'needs_info', 'approved', 'rejected', 'service_stopped',
		'awaiting_deletion', 'closed'];

	function stateLabel(s) {
		return STATES.indexOf(s) >= 0 ? t('state.' + s) : s;
	}

	function stateExplain(s) {
		return STATES.indexOf(s) >= 0 ? t('state.' + s + '.explain') : '';
	}

	/* "2026-10" -> "October 2026" in the page's language */
	function month(ym) {
		var m = /^(\d{4})-(\d{2})$/.exec(ym || '');
		if (!m)
			return ym || '';
		return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: 'long', timeZone: 'UTC' })
			.format(new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 15)));
	}

	function number(n) {
		return new Intl.NumberFormat(locale()).format(n);
	}

	function stateBadge(s) {
		return el('span', { 'class': 'state state-' + s, text: stateLabel(s) });
	}

	/* The language chooser of every page; onChange re-draws the page. */
	function initLang(onChange) {
		onLangChange = onChange;
		var sel = $('lang');
		if (sel)
			sel.addEventListener('change', function () {
				chooseLang(sel.value, true);
			});
		return loadLang(storedChoice());
	}

	return {
		api: api,
		ApiError: ApiError,
		setCsrf: setCsrf,
		money: money,
		dateTime: dateTime,
		day: day,
		msisdn: msisdn,
		el: el,
		$: $,
		clear: clear,
		flash: flash,
		showError: showError,
		explain: explain,
		fileBase64: fileBase64,
		stateLabel: stateLabel,
		stateExplain: stateExplain,
		stateBadge: stateBadge,
		month: month,
		number: number,
		t: t,
		lang: lang,
		storedChoice: storedChoice,
		chooseLang: chooseLang,
		setLangSaver: setLangSaver,
		applyI18n: applyI18n,
		labelTables: labelTables,
		initLang: initLang
	};
})();

/* ---- the customer portal (index.html) ---------------------------------- */
(function () {
	var P = Portal;
	var el = P.el;
	var $ = P.$;
	var me = null;
	var keepFlash = false;

	if (document.body.getAttribute('data-page') !== 'customer')
		return;

	var VIEWS = ['login', 'account', 'terminate', 'case', 'check'];

	function show(name) {
		VIEWS.forEach(function (v) {
			$('view-' + v).hidden = v !== name;
		});
		$('nav-account').hidden = !me;
		$('nav-login').hidden = !!me;
		$('logout').hidden = !me;
		var h = $('view-' + name).querySelector('h1');
		document.title = (h ? h.textContent.replace(/\s+/g, ' ').trim() + ' - ' : '') + 'esimkit Mobile';
		P.labelTables();
	}

	function fail(err) {
		if (err instanceof P.ApiError && err.status === 401 && err.code !== 'bad_credentials') {
			me = null;
			P.setCsrf(null);
			show('login');
		}
		P.showError(P.explain(err));
	}

	/* #account, #terminate/LINE, #case/ID, #check, #login */
	function route() {
		var h = (location.hash || '#account').slice(1).split('/');
		P.showError('');
		/* a message survives only the navigation that announced it */
		if (!keepFlash)
			P.flash('');
		keepFlash = false;
		if (h[0] === 'check') {
			show('check');
			return;
		}
		if (!me) {
			show('login');
			return;
		}
		if (h[0] === 'terminate' && h[1])
			return viewTerminate(h[1]);
		if (h[0] === 'case' && h[1])
			return viewCase(h[1]);
		return viewAccount();
	}

	function td(text, cls) {
		return el('td', { 'class': cls, text: text });
	}

	function viewAccount() {
		return P.api('GET', '/api/account').then(function (a) {
			var acc = a.account;
			$('acc-name').textContent = acc.name;
			$('acc-number').textContent = acc.number;
			$('acc-address').textContent = acc.address;
			$('acc-balance').textContent = P.money(acc.balance_cents, acc.currency);
			$('acc-balance').className = 'amount' + (acc.balance_cents > 0 ? ' due' : '');

			var tb = P.clear($('invoices').tBodies[0]);
			(a.invoices || []).forEach(function (inv) {
				var act = inv.status === 'open' ?
					el('button', { type: 'button', 'class': 'primary small', 'data-invoice': inv.id,
						'aria-label': P.t('invoices.pay_label', { number: inv.number }),
						onclick: function () { pay(inv); } }, P.t('invoices.pay')) :
					el('span', { 'class': 'muted', text: inv.paid_at ? P.t('invoices.paid_at', { when: P.dateTime(inv.paid_at) }) : '' });
				tb.appendChild(el('tr', { id: 'invoice-' + inv.id },
					td(inv.number), td(P.month(inv.period)), td(P.day(inv.due)),
					td(P.money(inv.amount_cents, inv.currency), 'num'),
					el('td', null, el('span', { 'class': 'pill ' + inv.status, text: inv.status === 'open' ? P.t('invoices.open') : P.t('invoices.paid') })),
					el('td', null, act)));
			});
			if (!(a.invoices || []).length)
				tb.appendChild(el('tr', null, el('td', { colspan: 6, 'class': 'muted', text: P.t('invoices.none') })));

			var lb = P.clear($('lines').tBodies[0]);
			(a.lines || []).forEach(function (l) {
				/* the precheck has the last word (can_submit); a terminated
				 * line has nothing left to end */
				var can = l.state !== 'terminated';
				lb.appendChild(el('tr', { id: 'line-' + l.id },
					td(P.msisdn(l.msisdn)), td(l.plan), el('td', { 'class': 'mono', text: l.iccid || '—' }),
					td(P.money(l.monthly_cents, 'EUR'), 'num'), td(lineState(l.state)),
					el('td', null, can ? el('a', { href: '#terminate/' + l.id, 'class': 'button small',
						'aria-label': P.t('lines.terminate_label', { msisdn: P.msisdn(l.msisdn) }) },
						P.t('lines.terminate')) : null)));
			});

			var ub = P.clear($('usage').tBodies[0]);
			(a.usage || []).forEach(function (u) {
				var line = (a.lines || []).filter(function (l) { return l.id === u.line_id; })[0];
				ub.appendChild(el('tr', null, td(P.dateTime(u.at)), td(line ? P.msisdn(line.msisdn) : String(u.line_id)),
					td(usageKind(u.kind) + (u.roaming ? ' · ' + P.t('usage.roaming') : '')),
					td(P.number(u.amount) + ' ' + usageUnit(u.unit), 'num'), usageStatus(u)));
			});
			if (!(a.usage || []).length)
				ub.appendChild(el('tr', null, el('td', { colspan: 5, 'class': 'muted', text: P.t('usage.none') })));
			spendTable(a.lines || []);
			var lt = P.clear($('letters'));
			(a.letters || []).forEach(function (x) {
				lt.appendChild(el('li', null, P.dateTime(x.at) + ' · ' + x.subject + ' · ',
					el('span', { 'class': 'mono ref', text: x.reference }), ' ',
					el('a', { href: '/api/letter?id=' + x.id, target: '_blank', rel: 'noopener' }, P.t('letters.open'))));
			});
			if (!(a.letters || []).length)
				lt.appendChild(el('li', { 'class': 'muted', text: P.t('letters.none') }));
			return P.api('GET', '/api/cases');
		}).then(function (c) {
			var cb = P.clear($('cases').tBodies[0]);
			(c.cases || []).forEach(function (k) {
				cb.appendChild(el('tr', null, td('#' + k.id), td(P.msisdn(k.msisdn)), td(P.dateTime(k.created)),
					el('td', null, P.stateBadge(k.state)),
					el('td', null, el('a', { href: '#case/' + k.id }, P.t('cases.status_link')))));
			});
			if (!(c.cases || []).length)
				cb.appendChild(el('tr', null, el('td', { colspan: 5, 'class': 'muted', text: P.t('cases.none') })));
			show('account');
		}).catch(fail);
	}

	function pay(inv) {
		var amount = P.money(inv.amount_cents, inv.currency);
		P.showError('');
		P.api('POST', '/api/invoices/pay', { invoice_id: inv.id }).then(function (r) {
			return viewAccount().then(function () {
				P.flash(P.t('pay.done', { amount: amount, number: inv.number, reference: r.payment.reference }));
			});
		}).catch(fail);
	}

	function checkItem(ok, text, detail) {
		return el('li', { 'class': ok ? 'ok' : 'todo' },
			el('span', { 'class': 'mark', 'aria-hidden': 'true', text: ok ? '✓' : '!' }),
			el('span', { 'class': 'sr-only', text: ok ? P.t('check.done') + ' ' : P.t('check.todo') + ' ' }),
			el('strong', { text: text }), detail ? el('span', { 'class': 'detail', text: ' ' + detail }) : null);
	}

	function viewTerminate(lineId) {
		$('terminate-form').reset();
		return P.api('GET', '/api/lines/precheck?id=' + encodeURIComponent(lineId)).then(function (p) {
			$('term-msisdn').textContent = P.msisdn(p.line.msisdn);
			var list = P.clear($('precheck-list'));
			var open = p.open_invoices || [];
			list.appendChild(open.length ?
				checkItem(false, P.t('pre.open_invoices', { amount: P.money(p.open_total_cents, 'EUR') }),
					P.t(open.length > 1 ? 'pre.open_invoices.many' : 'pre.open_invoices.one',
						{ numbers: open.map(function (i) { return i.number; }).join(', ') })) :
				checkItem(true, P.t('pre.no_open_invoices')));
			var eq = p.leased_equipment || [];
			list.appendChild(eq.length ?
				checkItem(false, P.t('pre.equipment'),
					eq.map(function (e) {
						return e.item + (e.return_by ? ' ' + P.t('pre.return_by', { date: P.day(e.return_by) }) : '');
					}).join('; ')) :
				checkItem(true, P.t('pre.no_equipment')));
			list.appendChild(checkItem(true, P.t('pre.notice', { days: p.notice_period_days }),
				P.t('pre.notice.end', { date: P.day(p.earliest_end) })));
			list.appendChild(checkItem(true, P.t('pre.delete'), P.t('pre.delete.detail')));
			$('precheck-open-case').hidden = !p.open_case;
			if (p.open_case)
				$('precheck-case-link').setAttribute('href', '#case/' + p.open_case.id);
			$('terminate-form').hidden = !p.can_submit;
			$('terminate-form').setAttribute('data-line', String(p.line.id));
			show('terminate');
		}).catch(function (e) {
			show('terminate');
			$('terminate-form').hidden = true;
			P.clear($('precheck-list'));
			fail(e);
		});
	}

	function submitTermination(ev) {
		ev.preventDefault();
		var f = $('terminate-form');
		var file = $('term-doccopy').files[0];
		P.showError('');
		if (!file) {
			P.showError(P.t('terminate.no_copy'));
			return;
		}
		if (file.size > 4 * 1024 * 1024) {
			P.showError(P.t('terminate.too_big'));
			return;
		}
		var btn = f.querySelector('button[type=submit]');
		btn.disabled = true;
		P.fileBase64(file).then(function (b64) {
			var body = {
				line_id: Number(f.getAttribute('data-line')),
				reason: $('term-reason').value.trim(),
				document_type: $('term-doctype').value,
				document_number: $('term-docnumber').value.trim(),
				document_copy: b64
			};
			/* the server judges the type by the content; the browser's
			 * guess (from the name) is only a claim it must agree with */
			if (file.type)
				body.document_mime = file.type;
			return P.api('POST', '/api/cases', body);
		}).then(function (r) {
			P.flash(P.t('terminate.submitted', { id: r['case'].id }));
			keepFlash = true;
			location.hash = '#case/' + r['case'].id;
		}).catch(fail).then(function () {
			btn.disabled = false;
		});
	}

	function viewCase(id) {
		return P.api('GET', '/api/case?id=' + encodeURIComponent(id)).then(function (r) {
			var c = r['case'];
			$('case-id').textContent = '#' + c.id;
			P.clear($('case-state')).appendChild(P.stateBadge(c.state));
			$('case-line').textContent = P.msisdn(c.msisdn) + ' ' +
				(c.iccid ? P.t('case.iccid', { iccid: c.iccid }) : P.t('case.no_profile'));
			$('case-reason').textContent = c.reason;
			$('case-doc').textContent = docLabel(c.document_type) + ' ' + c.document_number +
				' · ' + (c.document_present ? P.t('case.copy_on_file') : P.t('case.copy_erased')) +
				(c.document_sha256 ? ' · SHA-256 ' + c.document_sha256.slice(0, 16) + '…' : '');
			$('case-created').textContent = P.dateTime(c.created);
			$('case-updated').textContent = P.dateTime(c.updated);
			$('case-explain').textContent = P.stateExplain(c.state);
			var dec = $('case-decision');
			dec.hidden = !c.decision_note;
			dec.textContent = c.decision_note ? P.t('case.decision', { note: c.decision_note }) : '';
			$('respond-form').hidden = c.state !== 'needs_info';
			$('respond-question').textContent = c.info_request || '';
			$('respond-form').setAttribute('data-case', String(c.id));
			$('case-record').hidden = c.state !== 'closed';
			$('record-proof').textContent = c.deletion_proof ?
				P.t('record.proof') : P.t('record.no_proof');
			$('record-download').setAttribute('href', '/api/case/record?id=' + c.id);
			$('record-download').setAttribute('download', 'termination-' + c.id + '.json');
			$('record-view').setAttribute('href', '/api/case/record.html?id=' + c.id + '&lang=' + P.lang());
			var tb = P.clear($('events').tBodies[0]);
			(r.events || []).forEach(function (e) {
				tb.appendChild(el('tr', null, td(P.dateTime(e.at)), el('td', null, P.stateBadge(e.state)),
					td(actorLabel(e.actor)), td(e.note || ''), el('td', { 'class': 'mono ref', text: e.reference || '' })));
			});
			show('case');
		}).catch(function (e) {
			/* Another customer's case answers 404 like a missing one: show
			 * nothing of the page but the error. */
			show('case');
			$('view-case').hidden = true;
			fail(e);
		});
	}

	function docLabel(t) {
		return ['id_card', 'passport', 'driving_licence', 'residence_permit'].indexOf(t) >= 0 ?
			P.t('doc.' + t) : t || '';
	}

	function lineState(s) {
		return ['ordered', 'active', 'stopped', 'terminated'].indexOf(s) >= 0 ? P.t('line.state.' + s) : s;
	}

	function usageKind(k) {
		return ['data', 'voice', 'sms'].indexOf(k) >= 0 ? P.t('usage.kind.' + k) : k;
	}

	/* a charging system's record: charged, included or refused (and why) */
	function usageStatus(u) {
		if (u.status === 'refused')
			return el('td', null, el('span', { 'class': 'pill open', text: P.t('usage.refused', { reason: usageReason(u.reason) }) }));
		if (!u.record_id)
			return td('');
		return td(u.cents > 0 ? P.t('usage.rated', { amount: P.money(u.cents, 'EUR') }) : P.t('usage.included'));
	}

	function usageReason(r) {
		return ['cap_reached', 'roaming_cap_reached', 'services_stopped', 'line_closed'].indexOf(r) >= 0 ?
			P.t('usage.reason.' + r) : r || '';
	}

	function euros(cents) {
		return cents === null || cents === undefined ? '' : (cents / 100).toFixed(2);
	}

	/* "25", "12.50", "12,50" -> cents; "" -> null (no cap); NaN when not an amount */
	function cents(text) {
		var v = text.trim().replace(',', '.');
		if (!v)
			return null;
		return /^\d{1,6}(\.\d{1,2})?$/.test(v) ? Math.round(parseFloat(v) * 100) : NaN;
	}

	/* each line's spend this month, its caps and the stop switch */
	function spendTable(lines) {
		var sb = P.clear($('spend').tBodies[0]);
		lines.forEach(function (l) {
			var m = el('input', { id: 'cap-' + l.id, inputmode: 'decimal', size: '7', value: euros(l.cap_cents),
				'aria-label': P.t('spend.cap_label', { msisdn: P.msisdn(l.msisdn) }) });
			var r = el('input', { id: 'rcap-' + l.id, inputmode: 'decimal', size: '7', value: euros(l.roaming_cap_cents),
				'aria-label': P.t('spend.roaming_label', { msisdn: P.msisdn(l.msisdn) }) });
			var closed = l.state === 'terminated';
			var spent = P.money(l.month_spent_cents || 0, 'EUR') + (l.month_roaming_spent_cents ?
				' (' + P.t('spend.roaming_spent', { amount: P.money(l.month_roaming_spent_cents, 'EUR') }) + ')' : '');
			sb.appendChild(el('tr', { id: 'spend-' + l.id }, td(P.msisdn(l.msisdn)), td(spent, 'num'),
				el('td', null, m), el('td', null, r, ' ',
					el('button', { type: 'button', 'class': 'small', disabled: closed ? '' : null,
						onclick: function () { saveCaps(l, m.value, r.value); } }, P.t('spend.save'))),
				el('td', null, el('span', { 'class': 'pill ' + (l.services_stopped ? 'open' : 'paid'),
					text: l.services_stopped ? P.t('spend.off') : P.t('spend.on') }), ' ',
					closed ? null : el('button', { type: 'button', 'class': l.services_stopped ? 'small' : 'small danger',
						id: 'stop-' + l.id, onclick: function () { setStop(l, !l.services_stopped); } },
						l.services_stopped ? P.t('spend.resume') : P.t('spend.stop')))));
		});
	}

	function saveCaps(l, monthly, roaming) {
		var m = cents(monthly), r = cents(roaming);
		P.showError('');
		if ((m !== null && isNaN(m)) || (r !== null && isNaN(r)))
			return P.showError(P.t('spend.bad'));
		P.api('POST', '/api/lines/caps', { line_id: l.id, cap_cents: m, roaming_cap_cents: r }).then(function () {
			return viewAccount().then(function () {
				P.flash(P.t('spend.saved', { msisdn: P.msisdn(l.msisdn) }));
			});
		}).catch(fail);
	}

	function setStop(l, stop) {
		P.showError('');
		P.api('POST', '/api/lines/stop', { line_id: l.id, stopped: stop }).then(function () {
			return viewAccount().then(function () {
				P.flash(P.t(stop ? 'spend.stopped' : 'spend.resumed', { msisdn: P.msisdn(l.msisdn) }));
			});
		}).catch(fail);
	}

	function usageUnit(u) {
		return ['min', 'sms'].indexOf(u) >= 0 ? P.t('usage.unit.' + u) : u;
	}

	function actorLabel(a) {
		a = a || '';
		if (a.indexOf('customer') === 0)
			return P.t('actor.you');
		if (a.indexOf('staff') === 0)
			return P.t('actor.staff');
		if (a === 'smdp')
			return P.t('actor.smdp');
		return P.t('actor.system');
	}

	function respond(ev) {
		ev.preventDefault();
		var f = $('respond-form');
		var file = $('respond-copy').files[0];
		var id = Number(f.getAttribute('data-case'));
		(file ? P.fileBase64(file) : Promise.resolve(null)).then(function (b64) {
			var body = { case_id: id, message: $('respond-message').value.trim() };
			if (b64) {
				body.document_copy = b64;
				if (file.type)
					body.document_mime = file.type;
			}
			return P.api('POST', '/api/case/respond', body);
		}).then(function () {
			f.reset();
			P.flash(P.t('respond.sent'));
			return viewCase(id);
		}).catch(fail);
	}

	function check(ev) {
		ev.preventDefault();
		var out = $('check-result');
		var ref = $('check-ref').value;
		P.api('POST', '/api/reference/check', { reference: ref }).then(function (r) {
			P.clear(out);
			out.hidden = false;
			if (r.genuine) {
				out.className = 'card narrow verdict genuine';
				out.appendChild(el('h2', { text: P.t('verdict.genuine') }));
				out.appendChild(el('p', { text: P.t('verdict.genuine.how', { channel: channelLabel(r.channel),
					when: P.dateTime(r.at) }) }));
				if (r.purpose)
					out.appendChild(el('p', { text: P.t('verdict.about', { purpose: purposeLabel(r.purpose) }) }));
				out.appendChild(el('p', { 'class': 'hint', text: P.t('verdict.genuine.hint') }));
			} else {
				out.className = 'card narrow verdict fake';
				out.appendChild(el('h2', { text: P.t('verdict.fake') }));
				out.appendChild(el('p', { text: P.t('verdict.fake.text', { reference: ref.trim() }) }));
			}
		}).catch(function (e) {
			P.clear(out);
			out.hidden = true;
			P.showError(P.explain(e));
		});
	}

	function channelLabel(c) {
		var parts = String(c || '').split('+').map(function (x) {
			return ['email', 'sms', 'letter', 'call'].indexOf(x) >= 0 ? P.t('channel.' + x) : x;
		});
		return parts.join(' + ');
	}

	/* "termination case 12: approved" (op_case_move) -> in the reader's words */
	function purposeLabel(p) {
		var m = /^termination case (\d+): (.+)$/.exec(p || '');
		if (!m)
			return p;
		var what = m[2] === 'deletion reminder' ? P.t('purpose.reminder') : P.stateLabel(m[2]);
		return P.t('purpose.case', { id: m[1], what: what });
	}

	function login(ev) {
		ev.preventDefault();
		P.showError('');
		P.api('POST', '/api/login', { login: $('login-name').value.trim(), password: $('login-password').value }).then(function (r) {
			return P.api('GET', '/api/me');
		}).then(function (r) {
			me = r;
			P.setCsrf(r.csrf);
			$('login-password').value = '';
			return adoptLanguage(r);
		}).then(function () {
			if (!location.hash || location.hash === '#login')
				location.hash = '#account';
			else
				route();
		}).catch(function (e) {
			P.showError(e instanceof P.ApiError && (e.status === 401) ?
				P.t('login.bad') : P.explain(e));
		});
	}

	/* Logged in: the customer's stored language wins over the browser's;
	 * a customer who never chose one keeps the page's, stored now so that
	 * notices go out in it. */
	function adoptLanguage(r) {
		if (r.lang && r.lang !== P.lang())
			return P.chooseLang(r.lang, false, true);
		if (!r.lang)
			return saveLanguage(P.lang());
		return Promise.resolve();
	}

	function saveLanguage(l) {
		if (!me)
			return Promise.resolve();
		return P.api('POST', '/api/me/lang', { lang: l }).then(function () {
			me.lang = l;
		}).catch(fail);
	}

	function logout() {
		P.api('POST', '/api/logout', {}).catch(function () {}).then(function () {
			me = null;
			P.setCsrf(null);
			P.flash(P.t('logout.done'));
			keepFlash = true;
			if (location.hash === '#login')
				route();
			else
				location.hash = '#login';
		});
	}

	document.addEventListener('DOMContentLoaded', function () {
		$('login-form').addEventListener('submit', login);
		$('terminate-form').addEventListener('submit', submitTermination);
		$('respond-form').addEventListener('submit', respond);
		$('check-form').addEventListener('submit', check);
		$('logout').addEventListener('click', logout);
		window.addEventListener('hashchange', route);
		P.setLangSaver(saveLanguage);
		P.initLang(route).then(function () {
			return P.api('GET', '/api/me');
		}).then(function (r) {
			if (r && r.role === 'customer') {
				me = r;
				P.setCsrf(r.csrf);
				return adoptLanguage(r);
			}
		}).catch(function () {
			me = null;
		}).then(route);
	});
})();
