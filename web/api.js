// api.js: the engine's REST API in JSON, the SSO token kept in sessionStorage
// only (this tab's session), and the formatting every page shares.
const ROOT = '/ovirt-engine/api';
const TOKEN_KEY = 'snapback.token';
const USER_KEY = 'snapback.user';

export class ApiError extends Error {
  // reason and detail are the engine's <fault>, shown in full
  constructor(status, reason, detail) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.status = status;
    this.reason = reason;
    this.detail = detail;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get user() { return sessionStorage.getItem(USER_KEY); },
};

async function faultOf(resp) {
  let text = '';
  try { text = await resp.text(); } catch (_) { /* keep the status */ }
  try {
    const j = JSON.parse(text);
    if (j.fault) return new ApiError(resp.status, j.fault.reason, j.fault.detail);
    if (j.reason || j.detail) return new ApiError(resp.status, j.reason || resp.statusText, j.detail);
    if (j.error) return new ApiError(resp.status, j.error, j.error_description);
  } catch (_) { /* not JSON */ }
  return new ApiError(resp.status, `${resp.status} ${resp.statusText}`, text.trim());
}

export async function login(username, password) {
  const body = new URLSearchParams({ grant_type: 'password', scope: 'ovirt-app-api', username, password });
  const resp = await fetch('/ovirt-engine/sso/oauth/token', {
    method: 'POST', body, headers: { Accept: 'application/json' },
  });
  if (!resp.ok) throw await faultOf(resp);
  const j = await resp.json();
  sessionStorage.setItem(TOKEN_KEY, j.access_token);
  sessionStorage.setItem(USER_KEY, username);
}

export async function logout() {
  const token = session.token;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  if (!token) return;
  const body = new URLSearchParams({ scope: '', token });
  await fetch('/ovirt-engine/services/sso-logout', { method: 'POST', body });
}

// method, path below /ovirt-engine/api, optional JSON body; resolves to the
// parsed answer (or null), rejects with an ApiError holding the fault
export async function api(method, path, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${session.token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(ROOT + path, init);
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    window.dispatchEvent(new Event('snapback-logged-out'));
  }
  if (!resp.ok) throw await faultOf(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// the list under KEY of a collection answer: {"vm": [...]} -> [...]
export async function list(path, key) {
  const j = await api('GET', path);
  return (j && j[key]) || [];
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  let v = Number(n);
  if (!Number.isFinite(v)) return '';
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${UNITS[i]}`;
}

// an engine time in the browser's zone
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

// el('tag', {attr: v, onclick: f}, child...) -> an element; text children are
// text nodes, never HTML
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
