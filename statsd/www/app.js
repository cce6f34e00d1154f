/*
 * grepop dashboard: polls statsd's JSON API every second and renders the POP
 * card and one page of the sites table. No framework and nothing loaded from
 * elsewhere. API: docs/architecture.md, "HTTP (stats.http)".
 *
 * Filters, sort order and page live in the URL's hash, so a wall screen
 * that reloads keeps its view. Each site's recent throughput is kept here,
 * one sample per new site message, for the sparklines.
 */
'use strict';

const POLL_MS = 1000;
const TIMEOUT_MS = 3000;
const PER_PAGE = 100;
const HISTORY = 40;			/* samples per sparkline: 40 s */
const HISTORY_KEEP_MS = 5 * 60 * 1000;	/* forget sites not shown for this long */
const SVG_NS = 'http://www.w3.org/2000/svg';

const view = { name: '', status: '', type: '', order: 'asc', page: 1 };
const samples = new Map();		/* site name -> {seq, rx: [], tx: [], seen} */
let lastOk = 0;
let pollTimer = null;
let generation = 0;			/* bumps when the view changes */

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(props || {})) {
		if (k === 'class')
			e.className = v;
		else if (k === 'text')
			e.textContent = v;
		else
			e.setAttribute(k, v);
	}
	for (const c of children)
		if (c !== null && c !== undefined)
			e.append(c);
	return e;
}

/* ---- formatting ---- */

function fmtRate(kbps) {
	if (kbps === null || kbps === undefined)
		return '—';
	if (kbps >= 1e6)
		return (kbps / 1e6).toFixed(2) + ' Gbps';
	if (kbps >= 1e3)
		return (kbps / 1e3).toFixed(2) + ' Mbps';
	return kbps.toFixed(1) + ' Kbps';
}

/* Seconds between two ISO times, or null. */
function ageSeconds(iso, nowIso) {
	if (!iso)
		return null;
	const now = nowIso ? Date.parse(nowIso) : Date.now();
	return Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
}

function fmtAge(seconds) {
	if (seconds === null)
		return 'never';
	if (seconds < 60)
		return seconds + 's ago';
	if (seconds < 3600)
		return Math.floor(seconds / 60) + 'm ago';
	if (seconds < 86400)
		return Math.floor(seconds / 3600) + 'h ago';
	return Math.floor(seconds / 86400) + 'd ago';
}

function fmtSince(seconds) {
	return fmtAge(seconds).replace(' ago', '');
}

const TRAFFIC_LABELS = { 'user': 'User', 'iot': 'IoT', 'mixed': 'Mixed', 'machine': 'Machine',
	'guest-wifi': 'Guest Wi-Fi' };
const STATUS_LABELS = { up: 'Up', down: 'Down', disabled: 'Disabled' };

/* ---- the POP card ---- */

function renderAccept(pop) {
	const badge = $('pop-accept');
	const mode = pop.accept_mode;
	if (pop.accepting_new_tunnels && mode === 'accept') {
		badge.className = 'badge ok';
		badge.textContent = 'Accepting new tunnels';
	} else if (mode === 'drain') {
		badge.className = 'badge bad';
		badge.textContent = 'Draining — not accepting new tunnels';
	} else {
		badge.className = 'badge warn';
		/* a non-breaking hyphen: "no-new" stays on one line */
		badge.textContent = 'Not accepting new tunnels (' + mode.replace(/-/g, '\u2011') + ')';
	}
	badge.dataset.mode = mode;
}

function renderServices(pop) {
	const list = $('pop-services');
	const items = Object.entries(pop.services || {}).map(([name, svc]) => {
		const health = svc.health || 'unknown';
		const since = ageSeconds(svc.since, pop.time);
		return el('li', { class: 'svc svc-' + health, 'data-service': name },
			el('span', { class: 'dot', 'aria-hidden': 'true' }),
			el('span', { class: 'svc-name', text: name.toUpperCase() }),
			el('span', { class: 'svc-health', text: health }),
			since === null ? null : el('span', { class: 'muted', text: 'for ' + fmtSince(since) }));
	});
	list.replaceChildren(...items);
	if (!items.length)
		list.append(el('li', { class: 'muted', text: 'no checks configured' }));
}

function renderPop(pop) {
	document.title = pop.name + ' · grepop';
	$('pop-name').textContent = pop.name;
	$('pop-location').textContent = pop.location || '';
	$('pop-gateway').textContent = pop.gateway_ip || '—';
	$('pop-probe').textContent = pop.probe_ip || '—';
	$('pop-backups').textContent = (pop.backup_pops || []).join(', ') || 'none';
	const hd = $('pop-healthd');
	hd.textContent = pop.healthd === 'alive' ? 'healthd alive' : 'healthd ' + pop.healthd
		+ ': failing closed';
	hd.className = pop.healthd === 'alive' ? 'ok-text' : 'bad-text';
	renderAccept(pop);
	renderServices(pop);
	const c = pop.sites || {};
	for (const k of ['total', 'up', 'down', 'disabled'])
		$('count-' + k).textContent = c[k] === undefined ? '—' : c[k];
}

/* ---- sparklines ---- */

function remember(site, now) {
	let h = samples.get(site.name);
	if (!h) {
		h = { seq: null, rx: [], tx: [], seen: now };
		samples.set(site.name, h);
	}
	h.seen = now;
	if (h.seq === site.seq)
		return h;
	h.seq = site.seq;
	h.rx.push(site.rx_kbps || 0);
	h.tx.push(site.tx_kbps || 0);
	if (h.rx.length > HISTORY) {
		h.rx.shift();
		h.tx.shift();
	}
	return h;
}

function forgetOld(now) {
	for (const [name, h] of samples)
		if (now - h.seen > HISTORY_KEEP_MS)
			samples.delete(name);
}

function points(values, max, w, h) {
	const step = w / (HISTORY - 1);
	const x0 = w - (values.length - 1) * step;
	return values.map((v, i) => (x0 + i * step).toFixed(1) + ','
		+ (h - 1 - (v / max) * (h - 2)).toFixed(1)).join(' ');
}

function sparkline(h, name) {
	const w = 120, ht = 28;
	const svg = document.createElementNS(SVG_NS, 'svg');
	svg.setAttribute('viewBox', `0 0 ${w} ${ht}`);
	svg.setAttribute('width', w);
	svg.setAttribute('height', ht);
	svg.setAttribute('class', 'spark');
	svg.setAttribute('role', 'img');
	const last = h.rx.length - 1;
	svg.setAttribute('aria-label', `${name} throughput, last ${h.rx.length} s: now rx `
		+ `${fmtRate(h.rx[last])}, tx ${fmtRate(h.tx[last])}`);
	const max = Math.max(1, ...h.rx, ...h.tx);
	const base = document.createElementNS(SVG_NS, 'line');
	base.setAttribute('x1', 0);
	base.setAttribute('x2', w);
	base.setAttribute('y1', ht - 0.5);
	base.setAttribute('y2', ht - 0.5);
	base.setAttribute('class', 'base');
	svg.append(base);
	for (const [cls, values] of [['tx', h.tx], ['rx', h.rx]]) {
		if (values.length < 2)
			continue;
		const line = document.createElementNS(SVG_NS, 'polyline');
		line.setAttribute('points', points(values, max, w, ht));
		line.setAttribute('class', cls);
		svg.append(line);
	}
	return svg;
}

/* ---- the sites table ---- */

function statusCell(site) {
	const st = site.status in STATUS_LABELS ? site.status : 'down';
	return el('td', { class: 'status st-' + st, 'data-status': site.status },
		el('span', { class: 'icon', 'aria-hidden': 'true' }),
		el('span', { class: 'status-text', text: STATUS_LABELS[st] || site.status }));
}

function keepaliveCell(site) {
	const ks = site.keepalive_status;
	if (ks === 'off')
		return el('td', { class: 'ka muted', text: 'off' });
	const age = ageSeconds(site.last_keepalive, site.time);
	return el('td', { class: 'ka ' + (ks === 'seen' ? 'ka-seen' : 'ka-missing') },
		el('span', { class: 'ka-state', text: ks }),
		el('span', { class: 'muted ka-age',
			text: age === null ? 'never seen' : 'last seen ' + fmtAge(age) }));
}

function siteRow(site, h) {
	const backups = (site.pop_backup || []).join(', ');
	return el('tr', { 'data-site': site.name },
		statusCell(site),
		el('td', { class: 'name', text: site.name }),
		el('td', { class: 'mono', text: site.source_ip }),
		keepaliveCell(site),
		el('td', {}, el('span', { text: site.pop }),
			backups ? el('span', { class: 'muted', text: ' / ' + backups }) : null),
		el('td', { class: 'num rx', text: fmtRate(site.rx_kbps) }),
		el('td', { class: 'num tx', text: fmtRate(site.tx_kbps) }),
		el('td', { class: 'trend' }, sparkline(h, site.name)),
		el('td', { class: 'muted',
			text: fmtAge(ageSeconds(site.last_user_traffic, site.time)) }),
		el('td', { class: 'type', text: TRAFFIC_LABELS[site.traffic_type]
			|| site.traffic_type }));
}

function renderSites(reply) {
	const now = Date.now();
	const pages = Math.max(1, Math.ceil(reply.total / reply.per_page));
	const rows = reply.sites.map((s) => siteRow(s, remember(s, now)));
	$('site-rows').replaceChildren(...rows);
	forgetOld(now);
	view.page = reply.page;
	const first = reply.total ? (reply.page - 1) * reply.per_page + 1 : 0;
	const last = Math.min(reply.total, reply.page * reply.per_page);
	$('range').textContent = `${first}–${last} of ${reply.total}`;
	$('page-info').textContent = `Page ${reply.page} of ${pages}`;
	$('first').disabled = $('prev').disabled = reply.page <= 1;
	$('next').disabled = $('last').disabled = reply.page >= pages;
	$('empty').hidden = reply.total > 0;
	view.pages = pages;
}

/* ---- polling ---- */

function sitesUrl() {
	const q = new URLSearchParams({ page: view.page, per_page: PER_PAGE });
	if (view.order === 'desc')
		q.set('order', 'desc');
	if (view.name)
		q.set('name', view.name);
	if (view.status)
		q.set('status', view.status);
	if (view.type)
		q.set('traffic_type', view.type);
	return 'api/v1/sites?' + q.toString();
}

async function getJson(url) {
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
	try {
		const r = await fetch(url, { cache: 'no-store', signal: ctl.signal });
		if (!r.ok) {
			const e = new Error(url + ': HTTP ' + r.status);
			e.status = r.status;
			throw e;
		}
		return await r.json();
	} finally {
		clearTimeout(timer);
	}
}

function renderConn(ok, error) {
	const conn = $('conn');
	if (ok) {
		conn.className = 'conn conn-ok';
		conn.textContent = 'Live · ' + new Date(lastOk).toISOString().slice(11, 19) + ' UTC';
		return;
	}
	conn.className = 'conn conn-bad';
	conn.textContent = lastOk
		? `No data for ${fmtSince(Math.round((Date.now() - lastOk) / 1000))}, retrying`
		: 'Cannot reach statsd, retrying';
	conn.title = String(error);
}

async function poll() {
	clearTimeout(pollTimer);
	const gen = generation;
	try {
		const [pop, sites] = await Promise.all([getJson('api/v1/pop'), getJson(sitesUrl())]);
		if (gen !== generation)
			return;	/* the view changed meanwhile: that poll is on its way */
		renderPop(pop);
		if (sites.page > 1 && sites.sites.length === 0 && sites.total > 0) {
			/* the sites shrank under this page: show the last one */
			changeView({ page: Math.ceil(sites.total / sites.per_page) });
			return;
		}
		renderSites(sites);
		lastOk = Date.now();
		renderConn(true);
		document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
	} catch (e) {
		if (gen === generation && e.status === 400 && view.order === 'desc') {
			/* a statsd without the order parameter: sort A to Z only */
			$('sort-name').disabled = true;
			$('sort-name').title = 'This statsd sorts A to Z only';
			changeView({ order: 'asc', page: 1 });
			return;
		}
		if (gen === generation)
			renderConn(false, e);
	}
	if (gen === generation)
		pollTimer = setTimeout(poll, POLL_MS);
}

/* ---- the view: filters, sort, page; kept in the URL hash ---- */

function saveView() {
	const q = new URLSearchParams();
	for (const k of ['name', 'status', 'type'])
		if (view[k])
			q.set(k, view[k]);
	if (view.order !== 'asc')
		q.set('order', 'desc');
	if (view.page > 1)
		q.set('page', view.page);
	window.history.replaceState(null, '', '#' + q.toString());
}

function loadView() {
	const q = new URLSearchParams(location.hash.slice(1));
	view.name = q.get('name') || '';
	view.status = q.get('status') || '';
	view.type = q.get('type') || '';
	view.order = q.get('order') === 'desc' ? 'desc' : 'asc';
	view.page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
	$('filter-name').value = view.name;
	$('filter-status').value = view.status;
	$('filter-type').value = view.type;
}

function renderSort() {
	const asc = view.order === 'asc';
	$('sort-arrow').textContent = asc ? '▲' : '▼';
	$('th-name').setAttribute('aria-sort', asc ? 'ascending' : 'descending');
	$('sort-name').setAttribute('aria-label', 'Name, sorted ' + (asc ? 'A to Z' : 'Z to A')
		+ '; change order');
}

function changeView(changes) {
	Object.assign(view, changes);
	generation++;
	saveView();
	renderSort();
	poll();
}

function bindControls() {
	let typing = null;
	$('filter-name').addEventListener('input', (e) => {
		clearTimeout(typing);
		typing = setTimeout(() => changeView({ name: e.target.value.trim(), page: 1 }), 200);
	});
	$('filter-status').addEventListener('change',
		(e) => changeView({ status: e.target.value, page: 1 }));
	$('filter-type').addEventListener('change',
		(e) => changeView({ type: e.target.value, page: 1 }));
	$('sort-name').addEventListener('click',
		() => changeView({ order: view.order === 'asc' ? 'desc' : 'asc', page: 1 }));
	$('first').addEventListener('click', () => changeView({ page: 1 }));
	$('prev').addEventListener('click', () => changeView({ page: Math.max(1, view.page - 1) }));
	$('next').addEventListener('click', () => changeView({ page: view.page + 1 }));
	$('last').addEventListener('click', () => changeView({ page: view.pages || 1 }));
}

document.addEventListener('DOMContentLoaded', () => {
	loadView();
	renderSort();
	bindControls();
	window.addEventListener('hashchange', () => {
		loadView();
		changeView({});
	});
	poll();
});
