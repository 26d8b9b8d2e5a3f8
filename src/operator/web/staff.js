/* esim-operator staff pages (staff.html): the review queue and the decision on
 * one termination case. The server enforces roles and workflow rules; this
 * script only shows the checks it returns and sends each decision with the
 * session's CSRF token (through Portal.api from app.js). */
'use strict';

(function () {
	var P = Portal;
	var el = P.el;
	var $ = P.$;
	var me = null;

	if (document.body.getAttribute('data-page') !== 'staff')
		return;

	var VIEWS = ['login', 'queue', 'review'];

	function show(name) {
		VIEWS.forEach(function (v) {
			$('view-' + v).hidden = v !== name;
		});
		$('nav-queue').hidden = !me;
		$('logout').hidden = !me;
		$('whoami').textContent = me ? me.name + ' (' + me.role + ')' : '';
	}

	function fail(err) {
		if (err instanceof P.ApiError && err.status === 401) {
			me = null;
			P.setCsrf(null);
			show('login');
		}
		P.showError(P.explain(err));
	}

	function td(text, cls) {
		return el('td', { 'class': cls, text: text });
	}

	function route() {
		var h = (location.hash || '#queue').slice(1).split('/');
		P.showError('');
		if (!me) {
			show('login');
			return;
		}
		if (h[0] === 'case' && h[1])
			return viewCase(h[1]);
		return viewQueue();
	}

	function checksSummary(k) {
		if (!k)
			return '';
		if (k.can_approve)
			return 'ready to approve';
		return 'blocked: ' + (k.blocking || []).map(blockText).join(', ');
	}

	function blockText(b) {
		return { open_invoices: 'open invoices', leased_equipment: 'leased equipment' }[b] || b;
	}

	function viewQueue() {
		return P.api('GET', '/api/staff/queue').then(function (r) {
			var tb = P.clear($('queue').tBodies[0]);
			(r.cases || []).forEach(function (c) {
				tb.appendChild(el('tr', { id: 'queue-case-' + c.id },
					td('#' + c.id), td(c.customer ? c.customer.name : ''), td(P.msisdn(c.msisdn)),
					td(P.dateTime(c.created)), el('td', null, P.stateBadge(c.state)),
					el('td', { 'class': c.checks && c.checks.can_approve ? 'good' : 'warn', text: checksSummary(c.checks) }),
					el('td', null, el('a', { href: '#case/' + c.id, 'class': 'button small',
						'aria-label': 'Review case ' + c.id }, 'Review'))));
			});
			if (!(r.cases || []).length)
				tb.appendChild(el('tr', null, el('td', { colspan: 7, 'class': 'muted', text: 'Nothing to review.' })));
			show('queue');
		}).catch(fail);
	}

	function checkItem(ok, text) {
		return el('li', { 'class': ok ? 'ok' : 'todo' },
			el('span', { 'class': 'mark', 'aria-hidden': 'true', text: ok ? '✓' : '!' }),
			el('span', { 'class': 'sr-only', text: ok ? 'Passed: ' : 'Blocking: ' }), text);
	}

	var current = null;

	function viewCase(id) {
		return P.api('GET', '/api/staff/case?id=' + encodeURIComponent(id)).then(function (r) {
			var c = r['case'];
			var cu = c.customer || {};
			var k = c.checks || {};
			current = c;
			$('rv-id').textContent = '#' + c.id;
			P.clear($('rv-state')).appendChild(P.stateBadge(c.state));
			P.clear($('rv-customer')).appendChild(document.createTextNode(cu.name || ''));
			$('rv-customer').appendChild(el('br'));
			$('rv-customer').appendChild(el('span', { 'class': 'muted', text: cu.login || '' }));
			$('rv-address').textContent = cu.address || '';
			$('rv-account').textContent = cu.account || '';
			$('rv-line').textContent = P.msisdn(c.msisdn) + (c.iccid ? ' · ICCID ' + c.iccid : ' · no eSIM profile ordered');
			$('rv-reason').textContent = c.reason;
			$('rv-created').textContent = P.dateTime(c.created);
			$('rv-doc').textContent = {
				id_card: 'Identity card', passport: 'Passport',
				driving_licence: 'Driving licence', residence_permit: 'Residence permit'
			}[c.document_type] || c.document_type;
			$('rv-docnumber').textContent = c.document_number;
			$('rv-dochash').textContent = c.document_sha256 || '';
			var box = P.clear($('rv-doccopy'));
			/* the copy is never opened as a page: an image is shown from the
			 * view route (served under a sandbox policy), anything else (a
			 * PDF) is only a download */
			var dl = '/api/staff/document?id=' + c.id;
			if (c.document_present) {
				var image = c.document_mime === 'image/jpeg' || c.document_mime === 'image/png';
				if (image)
					box.appendChild(el('img', { src: '/api/staff/document/view?id=' + c.id,
						alt: 'Copy of the identity document for case ' + c.id, id: 'rv-docimg' }));
				else
					box.appendChild(el('p', { 'class': 'muted', text: 'The copy is a PDF: download it to read it.' }));
				box.appendChild(el('p', null, el('a', { href: dl, download: '', id: 'rv-docdownload' },
					'Download the copy')));
			} else {
				box.appendChild(el('p', { 'class': 'muted', text: 'The copy has been erased (the case is closed); its hash is kept.' }));
			}

			var ul = P.clear($('rv-checks'));
			ul.appendChild(checkItem(!k.open_invoices, k.open_invoices ?
				k.open_invoices + ' open invoice(s): ' + P.money(k.open_total_cents, 'EUR') +
				(k.final_invoice_policy ? ' (final-invoice policy on: does not block)' : ' (blocks approval)') :
				'No open invoices'));
			ul.appendChild(checkItem(!k.leased_equipment, k.leased_equipment ?
				k.leased_equipment + ' leased item(s) to return' : 'No leased equipment'));
			ul.appendChild(checkItem(true, 'Notice period ' + k.notice_period_days + ' days'));
			ul.appendChild(checkItem(!!k.can_approve, k.can_approve ? 'Can be approved' :
				'Cannot be approved yet: ' + (k.blocking || []).map(blockText).join(', ')));

			var open = ['submitted', 'in_review', 'needs_info'].indexOf(c.state) >= 0;
			$('rv-actions').hidden = !open;
			$('take-form').hidden = c.state !== 'submitted';
			$('approve-btn').disabled = !k.can_approve || c.state === 'needs_info';

			var tb = P.clear($('rv-events').tBodies[0]);
			(r.events || []).forEach(function (e) {
				tb.appendChild(el('tr', null, td(P.dateTime(e.at)), el('td', null, P.stateBadge(e.state)),
					td(e.actor || ''), td(e.note || ''), el('td', { 'class': 'mono ref', text: e.reference || '' })));
			});
			show('review');
		}).catch(fail);
	}

	function act(path, body, done) {
		P.showError('');
		return P.api('POST', path, body).then(function (r) {
			/* the message comes once the page shows the new state, so that
			 * what it says and what the page shows always agree */
			return viewCase(r['case'].id).then(function () {
				P.flash(done + ' Case #' + r['case'].id + ' is now: ' + P.stateLabel(r['case'].state) + '.');
			});
		}).catch(fail);
	}

	function login(ev) {
		ev.preventDefault();
		P.showError('');
		P.api('POST', '/api/staff/login', { login: $('login-name').value.trim(), password: $('login-password').value }).then(function (r) {
			me = r;
			P.setCsrf(r.csrf);
			$('login-password').value = '';
			route();
		}).catch(function (e) {
			P.showError(e instanceof P.ApiError && e.status === 401 ? 'Login or password is not right.' : P.explain(e));
		});
	}

	document.addEventListener('DOMContentLoaded', function () {
		$('login-form').addEventListener('submit', login);
		$('take-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/take', { case_id: current.id }, 'Taken into review.');
		});
		$('approve-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/approve', { case_id: current.id, note: $('approve-note').value.trim() }, 'Approved.');
		});
		$('reject-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/reject', { case_id: current.id, reason: $('reject-reason').value.trim() }, 'Rejected.');
		});
		$('info-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/request-info', { case_id: current.id, message: $('info-message').value.trim() }, 'Question sent.');
		});
		$('logout').addEventListener('click', function () {
			P.api('POST', '/api/logout', {}).catch(function () {}).then(function () {
				me = null;
				P.setCsrf(null);
				location.hash = '';
				show('login');
			});
		});
		window.addEventListener('hashchange', function () {
			P.flash('');
			route();
		});
		P.initLocale(route);
		P.api('GET', '/api/me').then(function (r) {
			if (r && (r.role === 'reviewer' || r.role === 'admin')) {
				me = r;
				P.setCsrf(r.csrf);
			}
		}).catch(function () {
			me = null;
		}).then(route);
	});
})();
