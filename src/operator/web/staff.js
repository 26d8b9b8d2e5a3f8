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

	var VIEWS = ['login', 'queue', 'review', 'intake'];
	var intake = null; /* the call-back in progress: {id, customer} */

	function show(name) {
		VIEWS.forEach(function (v) {
			$('view-' + v).hidden = v !== name;
		});
		$('nav-queue').hidden = !me;
		$('nav-intake').hidden = !me;
		$('logout').hidden = !me;
		$('whoami').textContent = me ? me.name + ' (' + roleText(me.role) + ')' : '';
		var h = $('view-' + name).querySelector('h1');
		document.title = (h ? h.textContent.replace(/\s+/g, ' ').trim() + ' - ' : '') + 'esimkit Mobile';
		P.labelTables();
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
		if (h[0] === 'intake')
			return show('intake');
		return viewQueue();
	}

	function checksSummary(k) {
		if (!k)
			return '';
		if (k.can_approve)
			return P.t('staff.ready');
		return P.t('staff.blocked', { what: (k.blocking || []).map(blockText).join(', ') });
	}

	function blockText(b) {
		return ['open_invoices', 'leased_equipment', 'equipment_due'].indexOf(b) >= 0 ? P.t('staff.block.' + b) : b;
	}

	function docText(t) {
		return ['id_card', 'passport', 'driving_licence', 'residence_permit'].indexOf(t) >= 0 ?
			P.t('doc.' + t) : t || '';
	}

	function roleText(r) {
		return ['reviewer', 'admin'].indexOf(r) >= 0 ? P.t('staff.role.' + r) : r;
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
						'aria-label': P.t('staff.review_label', { id: c.id }) }, P.t('staff.review')))));
			});
			if (!(r.cases || []).length)
				tb.appendChild(el('tr', null, el('td', { colspan: 7, 'class': 'muted', text: P.t('staff.nothing') })));
			show('queue');
		}).catch(fail);
	}

	function checkItem(ok, text) {
		return el('li', { 'class': ok ? 'ok' : 'todo' },
			el('span', { 'class': 'mark', 'aria-hidden': 'true', text: ok ? '✓' : '!' }),
			el('span', { 'class': 'sr-only', text: (ok ? P.t('staff.passed') : P.t('staff.blocking')) + ' ' }), text);
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
			$('rv-line').textContent = P.msisdn(c.msisdn) + ' · ' + (c.iccid ? 'ICCID ' + c.iccid : P.t('staff.no_profile'));
			$('rv-reason').textContent = c.reason;
			$('rv-created').textContent = P.dateTime(c.created);
			$('rv-doc').textContent = docText(c.document_type);
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
						alt: P.t('staff.doc_alt', { id: c.id }), id: 'rv-docimg' }));
				else
					box.appendChild(el('p', { 'class': 'muted', text: P.t('staff.doc_pdf') }));
				box.appendChild(el('p', null, el('a', { href: dl, download: '', id: 'rv-docdownload' },
					P.t('staff.doc_download'))));
			} else {
				box.appendChild(el('p', { 'class': 'muted', text: P.t('staff.doc_erased') }));
			}

			var ul = P.clear($('rv-checks'));
			ul.appendChild(checkItem(!k.open_invoices, k.open_invoices ?
				P.t(k.final_invoice_policy ? 'staff.chk.invoices.policy' : 'staff.chk.invoices',
					{ n: k.open_invoices, amount: P.money(k.open_total_cents, 'EUR') }) :
				P.t('staff.chk.no_invoices')));
			ul.appendChild(checkItem(!k.leased_equipment, k.leased_equipment ?
				P.t('staff.chk.equipment', { n: k.leased_equipment }) : P.t('staff.chk.no_equipment')));
			(c.equipment || []).forEach(function (e) {
				var txt = P.t('staff.equip.item', { item: e.item, ref: e.return_ref || '—' });
				var li = checkItem(!!e.received, txt);
				li.appendChild(document.createTextNode(' '));
				li.appendChild(e.received ? el('span', { 'class': 'muted', text: P.t('staff.equip.received') }) :
					el('button', { type: 'button', 'class': 'small', onclick: function () { received(e); } },
						P.t('staff.equip.mark')));
				ul.appendChild(li);
			});
			ul.appendChild(checkItem(true, P.t('staff.chk.notice', { days: k.notice_period_days })));
			(c.letters || []).forEach(function (x) {
				var li = checkItem(true, P.t('staff.letter', { subject: x.subject, reference: x.reference }));
				li.appendChild(document.createTextNode(' '));
				li.appendChild(el('a', { href: '/api/staff/letter?id=' + x.id, target: '_blank', rel: 'noopener' },
					P.t('letters.open')));
				ul.appendChild(li);
			});
			ul.appendChild(checkItem(!!k.can_approve, k.can_approve ? P.t('staff.chk.can') :
				P.t('staff.chk.cannot', { what: (k.blocking || []).map(blockText).join(', ') })));

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
				P.flash(P.t(done, { id: r['case'].id, state: P.stateLabel(r['case'].state) }));
			});
		}).catch(fail);
	}

	/* a leased item back: checked against its return reference */
	function received(e) {
		P.showError('');
		P.api('POST', '/api/staff/equipment/received', { equipment_id: e.id, return_ref: e.return_ref }).then(function () {
			return viewCase(current.id).then(function () {
				P.flash(P.t('staff.equip.done', { item: e.item }));
			});
		}).catch(fail);
	}

	/* assisted intake: code to the customer, read back, then the request */
	function intakeStart(ev) {
		ev.preventDefault();
		P.showError('');
		var cust = parseInt($('intake-customer').value, 10);
		P.api('POST', '/api/staff/intake/start', { customer_id: cust }).then(function (r) {
			intake = { id: r.intake_id, customer: r.customer_id };
			$('intake-verify-form').hidden = false;
			$('intake-case-form').hidden = true;
			P.flash(P.t('staff.intake.sent', { when: P.dateTime(r.expires) }));
		}).catch(fail);
	}

	function intakeVerify(ev) {
		ev.preventDefault();
		P.showError('');
		P.api('POST', '/api/staff/intake/verify', { intake_id: intake && intake.id, code: $('intake-code').value }).then(function () {
			$('intake-code').value = '';
			$('intake-verify-form').hidden = true;
			$('intake-case-form').hidden = false;
			P.flash(P.t('staff.intake.verified'));
		}).catch(function (e) {
			if (e instanceof P.ApiError && e.code === 'code_mismatch')
				return P.showError(P.t('staff.intake.wrong'));
			fail(e);
		});
	}

	function intakeCase(ev) {
		ev.preventDefault();
		P.showError('');
		P.api('POST', '/api/staff/intake/case', { intake_id: intake && intake.id,
			line_id: parseInt($('intake-line').value, 10), reason: $('intake-reason').value.trim(),
			document_type: $('intake-doctype').value, document_number: $('intake-docnumber').value.trim() }).then(function (r) {
			intake = null;
			$('intake-case-form').hidden = true;
			location.hash = '#case/' + r['case'].id;
			P.flash(P.t('staff.intake.opened', { id: r['case'].id }));
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
			P.showError(e instanceof P.ApiError && e.status === 401 ? P.t('staff.login.bad') : P.explain(e));
		});
	}

	document.addEventListener('DOMContentLoaded', function () {
		$('login-form').addEventListener('submit', login);
		$('intake-start-form').addEventListener('submit', intakeStart);
		$('intake-verify-form').addEventListener('submit', intakeVerify);
		$('intake-case-form').addEventListener('submit', intakeCase);
		$('take-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/take', { case_id: current.id }, 'staff.done.take');
		});
		$('approve-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/approve', { case_id: current.id, note: $('approve-note').value.trim() }, 'staff.done.approve');
		});
		$('reject-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/reject', { case_id: current.id, reason: $('reject-reason').value.trim() }, 'staff.done.reject');
		});
		$('info-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			act('/api/staff/case/request-info', { case_id: current.id, message: $('info-message').value.trim() }, 'staff.done.info');
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
		P.initLang(route).then(function () {
			return P.api('GET', '/api/me');
		}).then(function (r) {
			if (r && (r.role === 'reviewer' || r.role === 'admin')) {
				me = r;
				P.setCsrf(r.csrf);
			}
		}).catch(function () {
			me = null;
		}).then(route);
	});
})();
