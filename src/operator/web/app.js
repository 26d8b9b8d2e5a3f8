/* esim-operator portal script: the shared helpers (JSON API calls with the
 * CSRF header, money and date formats for Belgium, safe DOM building) and the
 * customer portal of index.html. staff.html loads this file too, for the
 * helpers only, then staff.js. Text from the server is always inserted as
 * text nodes, never as HTML, so a hostile reason or note cannot run script. */
'use strict';

var Portal = (function () {
	var csrf = null;
	var LOCALES = ['en-BE', 'nl-BE', 'fr-BE'];

	function locale() {
		var l = null;
		try {
			l = window.localStorage.getItem('esim-locale');
		} catch (e) {
			l = null;
		}
		if (LOCALES.indexOf(l) >= 0)
			return l;
		var nav = (navigator.language || 'en').toLowerCase();
		if (nav.indexOf('nl') === 0)
			return 'nl-BE';
		if (nav.indexOf('fr') === 0)
			return 'fr-BE';
		return 'en-BE';
	}

	function setLocale(l) {
		try {
			window.localStorage.setItem('esim-locale', l);
		} catch (e) {
			/* private mode: the choice lasts for this page only */
		}
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
			return 'The service could not be reached. Check your connection and try again.';
		switch (err.code) {
		case 'unauthenticated':
		case 'bad_credentials':
			return 'Your login or password is not right, or your session has ended.';
		case 'locked':
			return 'Too many failed attempts. Wait a few minutes before you try again.';
		case 'csrf':
			return 'For your safety this page must be reloaded before you can continue.';
		case 'forbidden':
			return 'You are not allowed to do this.';
		case 'not_found':
			return 'This item does not exist or does not belong to your account.';
		case 'conflict':
			return 'This step is not possible now: ' + conflictText(err.message);
		case 'bad_document':
			return 'Your copy of the document was refused: ' + err.message +
				'. Please choose a photo or scan as JPEG, PNG or PDF.';
		default:
			return err.message || 'Something went wrong.';
		}
	}

	function conflictText(m) {
		var t = {
			open_invoices: 'invoices are still open.',
			already_paid: 'this invoice is already paid.',
			bad_state: 'the case is not in a state that allows it.',
			case_open: 'a termination request for this line is already open.'
		};
		return t[m] || m || 'a rule of the process refuses it.';
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

	var STATES = {
		submitted: ['Submitted', 'We received your request. A member of our staff will review it.'],
		in_review: ['In review', 'A member of our staff is reviewing your request.'],
		needs_info: ['More information needed', 'We need something more from you before we can decide. See the question below.'],
		approved: ['Approved', 'Your request is approved. We are stopping the service.'],
		rejected: ['Rejected', 'Your request was not accepted. The reason is below; you can submit a new request.'],
		service_stopped: ['Service stopped', 'The line no longer works. Next, delete the eSIM profile from your device.'],
		awaiting_deletion: ['Waiting for profile deletion', 'Delete the eSIM profile from your device (Settings › Mobile › eSIM › Delete, or "esim cancel"). The case closes when the device confirms the deletion.'],
		closed: ['Closed', 'Your case is closed. You can download the signed record of every step below.']
	};

	function stateLabel(s) {
		return (STATES[s] || [s])[0];
	}

	function stateExplain(s) {
		return (STATES[s] || [null, ''])[1];
	}

	function stateBadge(s) {
		return el('span', { 'class': 'state state-' + s, text: stateLabel(s) });
	}

	function initLocale(onChange) {
		var sel = $('locale');
		if (!sel)
			return;
		sel.value = locale();
		sel.addEventListener('change', function () {
			/* only numbers and dates follow: the text stays English, so
			 * the page's lang does too */
			setLocale(sel.value);
			onChange();
		});
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
		initLocale: initLocale
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
						'aria-label': 'Pay invoice ' + inv.number,
						onclick: function () { pay(inv); } }, 'Pay') :
					el('span', { 'class': 'muted', text: inv.paid_at ? 'paid ' + P.dateTime(inv.paid_at) : '' });
				tb.appendChild(el('tr', { id: 'invoice-' + inv.id },
					td(inv.number), td(inv.period), td(P.day(inv.due)),
					td(P.money(inv.amount_cents, inv.currency), 'num'),
					el('td', null, el('span', { 'class': 'pill ' + inv.status, text: inv.status === 'open' ? 'Open' : 'Paid' })),
					el('td', null, act)));
			});
			if (!(a.invoices || []).length)
				tb.appendChild(el('tr', null, el('td', { colspan: 6, 'class': 'muted', text: 'No invoices.' })));

			var lb = P.clear($('lines').tBodies[0]);
			(a.lines || []).forEach(function (l) {
				/* the precheck has the last word (can_submit); a terminated
				 * line has nothing left to end */
				var can = l.state !== 'terminated';
				lb.appendChild(el('tr', { id: 'line-' + l.id },
					td(P.msisdn(l.msisdn)), td(l.plan), el('td', { 'class': 'mono', text: l.iccid || '—' }),
					td(P.money(l.monthly_cents, 'EUR'), 'num'), td(l.state),
					el('td', null, can ? el('a', { href: '#terminate/' + l.id, 'class': 'button small',
						'aria-label': 'Terminate this line: ' + P.msisdn(l.msisdn) }, 'Terminate this line') : null)));
			});

			var ub = P.clear($('usage').tBodies[0]);
			(a.usage || []).forEach(function (u) {
				var line = (a.lines || []).filter(function (l) { return l.id === u.line_id; })[0];
				ub.appendChild(el('tr', null, td(P.dateTime(u.at)), td(line ? P.msisdn(line.msisdn) : String(u.line_id)),
					td(u.kind), td(new Intl.NumberFormat(document.getElementById('locale').value).format(u.amount) + ' ' + u.unit, 'num')));
			});
			if (!(a.usage || []).length)
				ub.appendChild(el('tr', null, el('td', { colspan: 4, 'class': 'muted', text: 'No usage recorded.' })));
			return P.api('GET', '/api/cases');
		}).then(function (c) {
			var cb = P.clear($('cases').tBodies[0]);
			(c.cases || []).forEach(function (k) {
				cb.appendChild(el('tr', null, td('#' + k.id), td(P.msisdn(k.msisdn)), td(P.dateTime(k.created)),
					el('td', null, P.stateBadge(k.state)),
					el('td', null, el('a', { href: '#case/' + k.id }, 'Status and steps'))));
			});
			if (!(c.cases || []).length)
				cb.appendChild(el('tr', null, el('td', { colspan: 5, 'class': 'muted', text: 'No termination requests.' })));
			show('account');
		}).catch(fail);
	}

	function pay(inv) {
		var amount = P.money(inv.amount_cents, inv.currency);
		P.showError('');
		P.api('POST', '/api/invoices/pay', { invoice_id: inv.id }).then(function (r) {
			return viewAccount().then(function () {
				P.flash('Thank you. Payment of ' + amount + ' for invoice ' + inv.number +
					' received (payment reference ' + r.payment.reference + ').');
			});
		}).catch(fail);
	}

	function checkItem(ok, text, detail) {
		return el('li', { 'class': ok ? 'ok' : 'todo' },
			el('span', { 'class': 'mark', 'aria-hidden': 'true', text: ok ? '✓' : '!' }),
			el('span', { 'class': 'sr-only', text: ok ? 'Done: ' : 'To do: ' }),
			el('strong', { text: text }), detail ? el('span', { 'class': 'detail', text: ' ' + detail }) : null);
	}

	function viewTerminate(lineId) {
		$('terminate-form').reset();
		return P.api('GET', '/api/lines/precheck?id=' + encodeURIComponent(lineId)).then(function (p) {
			$('term-msisdn').textContent = P.msisdn(p.line.msisdn);
			var list = P.clear($('precheck-list'));
			var open = p.open_invoices || [];
			list.appendChild(open.length ?
				checkItem(false, 'Open invoices: ' + P.money(p.open_total_cents, 'EUR') + '.',
					'You can submit now, but we can only approve once ' +
					open.map(function (i) { return i.number; }).join(', ') + (open.length > 1 ? ' are' : ' is') +
					' paid. You can pay on your account page.') :
				checkItem(true, 'No open invoices.'));
			var eq = p.leased_equipment || [];
			list.appendChild(eq.length ?
				checkItem(false, 'Leased equipment to return:',
					eq.map(function (e) { return e.item + (e.return_by ? ' (by ' + P.day(e.return_by) + ')' : ''); }).join('; ') + '.') :
				checkItem(true, 'No leased equipment to return.'));
			list.appendChild(checkItem(true, 'Notice period: ' + p.notice_period_days + ' days.',
				'The line can end on ' + P.day(p.earliest_end) + ' at the earliest.'));
			list.appendChild(checkItem(true, 'After approval, delete the eSIM profile from your device.',
				'Your device then sends us a signed proof of deletion, which goes into your record.'));
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
			P.showError('Please add a copy of your identity document.');
			return;
		}
		if (file.size > 4 * 1024 * 1024) {
			P.showError('The copy is larger than 4 MB. Please choose a smaller file.');
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
			P.flash('Your termination request was submitted as case #' + r['case'].id + '. We sent you a confirmation with a reference you can check.');
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
			$('case-line').textContent = P.msisdn(c.msisdn) + (c.iccid ? ' (eSIM ICCID ' + c.iccid + ')' : ' (no eSIM profile ordered)');
			$('case-reason').textContent = c.reason;
			$('case-doc').textContent = docLabel(c.document_type) + ' ' + c.document_number +
				(c.document_present ? ' · copy on file (encrypted)' : ' · copy erased') +
				(c.document_sha256 ? ' · SHA-256 ' + c.document_sha256.slice(0, 16) + '…' : '');
			$('case-created').textContent = P.dateTime(c.created);
			$('case-updated').textContent = P.dateTime(c.updated);
			$('case-explain').textContent = P.stateExplain(c.state);
			var dec = $('case-decision');
			dec.hidden = !c.decision_note;
			dec.textContent = c.decision_note ? 'Decision note: ' + c.decision_note : '';
			$('respond-form').hidden = c.state !== 'needs_info';
			$('respond-question').textContent = c.info_request || '';
			$('respond-form').setAttribute('data-case', String(c.id));
			$('case-record').hidden = c.state !== 'closed';
			$('record-proof').textContent = c.deletion_proof ?
				'It includes the signed proof, from your device\'s eSIM, that the profile was deleted.' :
				'No proof of profile deletion is attached to this case.';
			$('record-download').setAttribute('href', '/api/case/record?id=' + c.id);
			$('record-download').setAttribute('download', 'termination-' + c.id + '.json');
			$('record-view').setAttribute('href', '/api/case/record.html?id=' + c.id);
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
		return {
			id_card: 'Identity card',
			passport: 'Passport',
			driving_licence: 'Driving licence',
			residence_permit: 'Residence permit'
		}[t] || t || '';
	}

	function actorLabel(a) {
		a = a || '';
		if (a.indexOf('customer') === 0)
			return 'You';
		if (a.indexOf('staff') === 0)
			return 'Our staff';
		if (a === 'smdp')
			return 'eSIM platform';
		return 'System';
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
			P.flash('Thank you. Your answer was sent to our staff.');
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
				out.appendChild(el('h2', { text: 'Yes, this was us.' }));
				out.appendChild(el('p', { text: 'esimkit Mobile made this contact by ' + channelLabel(r.channel) +
					' on ' + P.dateTime(r.at) + '.' }));
				if (r.purpose)
					out.appendChild(el('p', { text: 'About: ' + r.purpose + '.' }));
				out.appendChild(el('p', { 'class': 'hint', text: 'Even so, we never ask for your password or a code. Log in yourself to see the details.' }));
			} else {
				out.className = 'card narrow verdict fake';
				out.appendChild(el('h2', { text: 'This was NOT us — hang up / do not act.' }));
				out.appendChild(el('p', { text: 'We have no record of a contact with the reference ' + ref.trim() + '. ' +
					'Do not pay, do not share codes or passwords, do not install anything. ' +
					'Hang up, delete the message, and log in to your account yourself if you are worried.' }));
			}
		}).catch(function (e) {
			P.clear(out);
			out.hidden = true;
			P.showError(P.explain(e));
		});
	}

	function channelLabel(c) {
		return { email: 'e-mail', sms: 'SMS', letter: 'letter', call: 'phone call' }[c] || c;
	}

	function login(ev) {
		ev.preventDefault();
		P.showError('');
		P.api('POST', '/api/login', { login: $('login-name').value.trim(), password: $('login-password').value }).then(function (r) {
			me = r;
			P.setCsrf(r.csrf);
			$('login-password').value = '';
			if (!location.hash || location.hash === '#login')
				location.hash = '#account';
			else
				route();
		}).catch(function (e) {
			P.showError(e instanceof P.ApiError && (e.status === 401) ?
				'Your e-mail address or password is not right.' : P.explain(e));
		});
	}

	function logout() {
		P.api('POST', '/api/logout', {}).catch(function () {}).then(function () {
			me = null;
			P.setCsrf(null);
			P.flash('You are logged out.');
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
		P.initLocale(route);
		P.api('GET', '/api/me').then(function (r) {
			if (r && r.role === 'customer') {
				me = r;
				P.setCsrf(r.csrf);
			}
		}).catch(function () {
			me = null;
		}).then(route);
	});
})();
