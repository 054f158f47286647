// app.js: the console's pages, routed by the URL fragment (#/vms, #/vm/ID,
// ...). Every action goes through the same REST API as any client; an engine
// fault is shown in full next to the control that caused it.
import { api, list, login, logout, session, bytes, when, el, ApiError } from '/api.js';
import { loadPermits, vmRefs, diskRefs, Permits } from '/perms.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
let pollTimer = null;
// the acting user's permits and the objects they inherit through, reloaded
// by route() on every page (perms.js)
let perm = new Permits([]);
let clusters = {};
let domains = {};
const byId = (xs) => Object.fromEntries(xs.map((x) => [x.id, x]));

async function loadAccess() {
  const seen = (path, key) => list(path, key).catch((e) => { if (e.status === 401) throw e; return []; });
  // permits that cannot be read enable nothing (the engine decides anyway)
  const permits = loadPermits().catch((e) => { if (e.status === 401) throw e; return new Permits([]); });
  const [p, cl, sd] = await Promise.all([permits, seen('/clusters', 'cluster'), seen('/storagedomains', 'storage_domain')]);
  perm = p;
  clusters = byId(cl);
  domains = byId(sd);
}

// NEED: [permit, refs] (refs from vmRefs/diskRefs), [permit, 'system'] or
// [permit, 'anywhere']; true when the acting user holds it there
function allowed(need) {
  if (!need) return true;
  const [permit, where] = need;
  if (where === 'system') return perm.maySystem(permit);
  if (where === 'anywhere') return perm.mayAnywhere(permit);
  return perm.may(permit, where);
}

// shows ERR (an ApiError or any Error) in the alert element SLOT, or clears it
function showFault(slot, err) {
  slot.textContent = '';
  if (!err) return;
  const text = err instanceof ApiError ? `${err.reason}${err.detail ? ': ' + err.detail : ''}` : String(err.message || err);
  slot.append(el('strong', {}, 'The engine refused: '), text);
}

// a button that runs FN, disabling itself meanwhile, with its own fault slot;
// disabled for good, saying why, when the acting user lacks NEED (allowed())
function actionButton(label, fn, attrs = {}, need = null) {
  const slot = el('span', { class: 'fault', role: 'alert' });
  const denied = !allowed(need);
  const off = denied || !!attrs.disabled;
  const b = el('button', { type: 'button', ...attrs, disabled: off,
    title: denied ? `not permitted: your roles give no ${need[0]} permit here` : attrs.title,
    'data-needs': need ? need[0] : null }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    showFault(slot, null);
    try { await fn(); } catch (e) { showFault(slot, e); } finally { b.disabled = off; }
  });
  return el('span', { class: 'action' }, b, slot);
}

function table(cols, rows, opts = {}) {
  // cols: [{key, label, render?, sort?}]; sortable by clicking the header
  let sortKey = opts.sortKey, asc = true;
  const tbody = el('tbody');
  const thead = el('thead');
  const wrap = el('div', { class: 'table-wrap' });
  const t = el('table', {}, opts.caption ? el('caption', {}, opts.caption) : null, thead, tbody);
  wrap.append(t);
  function draw() {
    const sorted = [...rows];
    if (sortKey) {
      const c = cols.find((x) => x.key === sortKey);
      const v = (r) => (c.sort ? c.sort(r) : r[sortKey] ?? '');
      sorted.sort((a, b) => {
        const x = v(a), y = v(b);
        const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return asc ? r : -r;
      });
    }
    thead.replaceChildren(el('tr', {}, cols.map((c) => {
      const state = sortKey === c.key ? (asc ? 'ascending' : 'descending') : 'none';
      const th = el('th', { scope: 'col', 'aria-sort': opts.sortable ? state : null });
      if (opts.sortable) {
        th.append(el('button', { type: 'button', class: 'sort', onclick: () => {
          if (sortKey === c.key) asc = !asc; else { sortKey = c.key; asc = true; }
          draw();
        } }, c.label, state === 'none' ? '' : state === 'ascending' ? ' ▲' : ' ▼'));
      } else th.append(c.label);
      return th;
    })));
    tbody.replaceChildren(...(sorted.length ? sorted.map((r) => el('tr', {}, cols.map((c) =>
      el('td', { 'data-label': c.label }, c.render ? c.render(r) : r[c.key] ?? ''))))
      : [el('tr', {}, el('td', { colspan: cols.length, class: 'empty' }, opts.empty || 'none'))]));
  }
  draw();
  return wrap;
}

function statusBadge(s) {
  return el('span', { class: `status status-${String(s || '').replace(/[^a-z_]/g, '')}` }, s || '');
}

function section(title, ...children) {
  return el('section', { 'aria-labelledby': 'h-' + title.replace(/\W/g, '') },
    el('h2', { id: 'h-' + title.replace(/\W/g, '') }, title), ...children);
}

// draws a page; the heading takes the focus when the page is new, not when
// polling redraws the same one (the keyboard user keeps their place)
function page(title, ...children) {
  const same = document.title === `${title} - snapback`;
  const active = document.activeElement?.id;
  document.title = `${title} - snapback`;
  view.replaceChildren(el('h1', { tabindex: '-1' }, title), ...children);
  const keep = same && active && document.getElementById(active);
  (keep || view.querySelector('h1')).focus();
}

// runs FN every MS after the previous run ended; a page that redraws itself
// calls repoll again, which ends the old chain
function repoll(fn, ms = 3000) {
  clearTimeout(pollTimer);
  const tick = async () => {
    const me = pollTimer;
    await fn().catch(() => {});
    if (pollTimer === me) pollTimer = setTimeout(tick, ms);
  };
  pollTimer = setTimeout(tick, ms);
}

// follows job JOBID in the status element OUT until it ends; rejects when it failed
async function followJob(jobId, out, what) {
  for (;;) {
    const j = await api('GET', `/jobs/${jobId}`);
    out.replaceChildren(`${what}: `, statusBadge(j.status), j.progress !== undefined ? ` ${j.progress}%` : '');
    if (j.status === 'finished') return j;
    if (j.status === 'failed' || j.status === 'aborted') throw new Error(`${what} failed: see the events of this VM`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ------------------------------------------------------------------ login
function loginPage() {
  nav.hidden = true;
  const slot = el('p', { class: 'fault', role: 'alert', id: 'login-fault' });
  // keep what was typed into the static form of console.html before this script ran
  const typed = (sel) => document.querySelector(`#static-login ${sel}`)?.value;
  const user = el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, value: typed('#username') ?? 'admin@internal' });
  const pass = el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, value: typed('#password') || null });
  const form = el('form', { class: 'login', onsubmit: async (e) => {
    e.preventDefault();
    showFault(slot, null);
    try {
      await login(user.value, pass.value);
      location.hash = '#/dashboard';
      route();
    } catch (err) { showFault(slot, err); }
  } },
  el('label', { for: 'username' }, 'User name'), user,
  el('label', { for: 'password' }, 'Password'), pass,
  el('button', { type: 'submit' }, 'Log in'), slot);
  page('Log in to snapback', form);
}

// ------------------------------------------------------------------ dashboard
async function dashboard() {
  // a user sees what their permissions show: a refused list is an empty one
  const seen = (path, key) => list(path, key).catch((e) => { if (e.status === 401) throw e; return []; });
  const [hosts, sds, vms, jobs, events] = await Promise.all([
    seen('/hosts', 'host'), seen('/storagedomains', 'storage_domain'), seen('/vms', 'vm'),
    seen('/jobs', 'job'), seen('/events?max=50', 'event')]);
  const byStatus = {};
  for (const v of vms) byStatus[v.status] = (byStatus[v.status] || 0) + 1;
  const sev = { error: 0, alert: 0, warning: 1, normal: 2 };
  const latest = [...events].sort((a, b) => (sev[a.severity] ?? 3) - (sev[b.severity] ?? 3)
    || String(b.time).localeCompare(String(a.time))).slice(0, 10);
  const running = jobs.filter((j) => j.status === 'started');
  page('Dashboard',
    el('div', { class: 'cards' },
      section('Hosts', table([{ key: 'name', label: 'Host' }, { key: 'status', label: 'State', render: (h) => statusBadge(h.status) }, { key: 'address', label: 'Address' }], hosts)),
      section('Storage domains', table([{ key: 'name', label: 'Domain' },
        { key: 'used', label: 'Used', render: (s) => bytes(s.used) },
        { key: 'available', label: 'Free', render: (s) => bytes(s.available) },
        { key: 'bar', label: 'Use', render: (s) => el('meter', { min: 0, max: Number(s.used) + Number(s.available), value: Number(s.used), 'aria-label': `${s.name} used` }) }], sds)),
      section('VMs by status', el('ul', { class: 'counts' }, Object.keys(byStatus).length ? Object.entries(byStatus).map(([s, n]) =>
        el('li', {}, statusBadge(s), ` ${n}`)) : el('li', {}, 'no VMs')), el('p', {}, el('a', { href: '#/vms' }, 'All VMs'))),
      section('Running jobs', jobsTable(running))),
    section('Latest events, errors first', eventsTable(latest)));
  repoll(async () => { if (location.hash.startsWith('#/dashboard')) await dashboard(); });
}

function jobsTable(jobs) {
  return table([{ key: 'description', label: 'Job' }, { key: 'status', label: 'Status', render: (j) => statusBadge(j.status) },
    { key: 'progress', label: 'Progress', render: (j) => j.status === 'started' ? el('progress', { max: 100, value: j.progress ?? undefined, 'aria-label': 'progress' }) : '' },
    { key: 'start_time', label: 'Started', render: (j) => when(j.start_time) },
    { key: 'end_time', label: 'Ended', render: (j) => when(j.end_time) }], jobs, { empty: 'no jobs' });
}

function eventsTable(events) {
  return table([{ key: 'time', label: 'Time', render: (e) => when(e.time) },
    { key: 'severity', label: 'Severity', render: (e) => statusBadge(e.severity) },
    { key: 'description', label: 'Event' }], events, { empty: 'no events' });
}

// ------------------------------------------------------------------ VMs
async function vmsPage(query) {
  const q = el('input', { id: 'search', type: 'search', name: 'search', value: query || '', placeholder: 'name=web* and status=up' });
  const slot = el('p', { class: 'fault', role: 'alert' });
  let vms = [];
  try { vms = await list('/vms' + (query ? '?search=' + encodeURIComponent(query) : ''), 'vm'); } catch (e) { showFault(slot, e); }
  const name = el('input', { id: 'new-vm-name', required: true });
  const mem = el('input', { id: 'new-vm-mem', type: 'number', min: 64, value: 128 });
  const disk = el('input', { id: 'new-vm-disk', type: 'number', min: 0, value: 1 });
  const incr = el('input', { id: 'new-vm-incremental', type: 'checkbox', checked: true });
  const cslot = el('p', { class: 'fault', role: 'alert' });
  const create = el('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    showFault(cslot, null);
    try {
      const vm = await api('POST', '/vms', { name: name.value, cluster: { name: 'Default' }, template: { name: 'Blank' }, memory: Number(mem.value) * 1048576 });
      if (Number(disk.value) > 0) await addDisk(vm.id, `${name.value}-disk`, Number(disk.value) * 1073741824, incr.checked);
      location.hash = `#/vm/${vm.id}`;
    } catch (err) { showFault(cslot, err); }
  } }, el('label', { for: 'new-vm-name' }, 'Name'), name, el('label', { for: 'new-vm-mem' }, 'Memory (MiB)'), mem,
  el('label', { for: 'new-vm-disk' }, 'Disk (GiB)'), disk,
  el('label', { for: 'new-vm-incremental' }, 'Incremental backup'), incr, el('button', { type: 'submit' }, 'Create VM'), cslot);
  page('Virtual machines',
    el('form', { role: 'search', class: 'inline', onsubmit: (e) => { e.preventDefault(); location.hash = '#/vms?search=' + encodeURIComponent(q.value); } },
      el('label', { for: 'search' }, 'Search'), q, el('button', { type: 'submit' }, 'Search'), slot),
    table([{ key: 'name', label: 'Name', render: (v) => el('a', { href: `#/vm/${v.id}` }, v.name) },
      { key: 'status', label: 'Status', render: (v) => statusBadge(v.status) },
      { key: 'memory', label: 'Memory', render: (v) => bytes(v.memory), sort: (v) => Number(v.memory) },
      { key: 'description', label: 'Description' }], vms, { sortable: true, sortKey: 'name', empty: 'no VMs match' }),
    allowed(['create_vm', 'anywhere']) ? section('New VM', create) : null);
}

// a new qcow2 disk; INCREMENTAL: it keeps dirty bitmaps for incremental backups
async function addDisk(vmId, alias, size, incremental = false) {
  const d = await api('POST', '/disks', { alias, provisioned_size: size, format: 'cow', sparse: true,
    ...(incremental ? { backup: 'incremental' } : {}),
    storage_domains: { storage_domain: [{ name: 'data' }] } });
  for (let i = 0; i < 60; i++) {
    const cur = await api('GET', `/disks/${d.id}`);
    if (cur.status !== 'locked') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (vmId) await api('POST', `/vms/${vmId}/diskattachments`, { disk: { id: d.id }, interface: 'virtio_scsi', bootable: false, active: true });
  return d;
}

async function vmPage(id) {
  const vm = await api('GET', `/vms/${id}`);
  const [atts, snaps, vms, events, jobs] = await Promise.all([
    list(`/vms/${id}/diskattachments`, 'disk_attachment'), list(`/vms/${id}/snapshots`, 'snapshot'), list('/vms', 'vm'),
    list('/events?max=500', 'event').catch(() => []), list(`/jobs?search=${encodeURIComponent(`vm.id=${id}`)}`, 'job').catch(() => [])]);
  // the consistency a snapshot achieved, as the engine's completion event says it
  const consistency = (s) => {
    const e = events.find((x) => x.vm?.id === id && String(x.description).startsWith(`snapshot '${s.description}' creation`));
    if (!e) return '';
    const m = /\(([^)]*)\)\s*$/.exec(e.description);
    return m ? m[1] : 'completed';
  };
  const disks = await Promise.all(atts.map((a) => api('GET', `/disks/${a.disk.id}`).catch(() => ({ id: a.disk.id }))));
  const diskOf = Object.fromEntries(disks.map((d) => [d.id, d]));
  const reload = () => vmPage(id);
  const refs = vmRefs(vm, clusters);
  const act = (verb) => actionButton(verb[0].toUpperCase() + verb.slice(1), async () => { await api('POST', `/vms/${id}/${verb}`, {}); await reload(); },
    { id: `vm-${verb}` }, ['vm_basic_operations', refs]);
  // snapshot attachments: the VM and snapshot they come from (snapshots belong to one VM)
  const origin = {};
  for (const a of atts.filter((x) => x.disk.snapshot)) {
    for (const v of vms) {
      const s = await api('GET', `/vms/${v.id}/snapshots/${a.disk.snapshot.id}`).catch(() => null);
      if (s) { origin[a.id] = { vm: v, snap: s }; break; }
    }
  }
  const srcInfo = (a) => {
    const o = origin[a.id];
    return el('span', { class: 'snapmark' }, 'disk snapshot ',
      o ? [el('q', {}, o.snap.description), ' of VM ', el('a', { href: `#/vm/${o.vm.id}` }, o.vm.name)]
        : el('code', {}, a.disk.snapshot.id));
  };
  const backups = await backupSections(id, atts, refs, reload);
  // a snapshot being removed merges into its parent: its status and the
  // removal job's progress, redrawn by the polling below
  const merging = (s) => {
    if (s.snapshot_status !== 'locked') return statusBadge(s.snapshot_status);
    const j = jobs.find((x) => x.status === 'started' && String(x.description).includes(`'${s.description}'`));
    return el('span', { class: 'merge' }, statusBadge(s.snapshot_status), ' ',
      el('progress', { max: 100, value: j ? Number(j.progress) : undefined, 'aria-label': `snapshot ${s.description} progress` }),
      j ? ` ${j.description}: ${j.progress}%` : '');
  };
  const snapDesc = el('input', { id: 'snap-desc', value: 'snapshot' });
  const ovaDir = el('input', { id: 'ova-dir', placeholder: '/var/lib/snapback/ova' });
  const ovaFile = el('input', { id: 'ova-file', value: `${vm.name}.ova` });
  const ovaState = el('span', { id: 'ova-export-state', role: 'status' });
  const snapNeed = ['manipulate_vm_snapshots', refs];
  page(`VM ${vm.name}`,
    el('p', {}, 'Status: ', statusBadge(vm.status), ` · memory ${bytes(vm.memory)} · `,
      el('a', { href: `#/activity?vm=${id}` }, 'its events and jobs')),
    el('div', { class: 'toolbar' }, act('start'), act('shutdown'), act('stop'),
      actionButton('Attach a disk snapshot…', async () => attachDialog(vms, id, reload), { id: 'open-attach' }, ['attach_disk', refs]),
    ),
    section('Export as OVA', el('div', { class: 'inline' },
      el('label', { for: 'ova-dir' }, 'Host directory'), ovaDir,
      el('label', { for: 'ova-file' }, 'File name'), ovaFile,
      actionButton('Export', async () => {
        const a = await api('POST', `/vms/${id}/exporttopathonhost`, { host: { name: 'localhost' }, directory: ovaDir.value, filename: ovaFile.value });
        if (a?.job?.id) await followJob(a.job.id, ovaState, 'export');
      }, { id: 'ova-export' }, ['import_export_vm', refs]), ovaState)),
    section('Disks and attachments', table([
      { key: 'alias', label: 'Disk', render: (a) => diskOf[a.disk.id]?.alias || a.disk.id },
      { key: 'size', label: 'Size', render: (a) => bytes(diskOf[a.disk.id]?.provisioned_size) },
      { key: 'interface', label: 'Interface' },
      { key: 'kind', label: 'Kind', render: (a) => a.disk.snapshot ? srcInfo(a) : 'disk' },
      { key: 'actions', label: 'Actions', render: (a) => el('span', {},
        actionButton('Detach', async () => { await api('DELETE', `/vms/${id}/diskattachments/${a.id}`); await reload(); },
          { 'aria-label': `Detach ${diskOf[a.disk.id]?.alias || a.id}`, class: 'detach' }, ['configure_vm_storage', refs]),
        a.disk.snapshot || !allowed(['backup_disk', diskRefs(diskOf[a.disk.id], domains, [vm], clusters)]) ? ''
          : el('a', { href: `#/transfers?download=${a.disk.id}` }, 'Download')) }], atts, { empty: 'no disks' })),
    section('Snapshots',
      el('div', { class: 'inline' }, el('label', { for: 'snap-desc' }, 'Description'), snapDesc,
        actionButton('Create snapshot', async () => { await api('POST', `/vms/${id}/snapshots`, { description: snapDesc.value, persist_memorystate: false }); await reload(); },
          { id: 'snap-create' }, snapNeed)),
      table([{ key: 'description', label: 'Snapshot' }, { key: 'snapshot_type', label: 'Type' },
        { key: 'snapshot_status', label: 'Status', render: merging },
        { key: 'date', label: 'Date', render: (s) => when(s.date) },
        { key: 'consistency', label: 'Consistency', render: consistency },
        { key: 'actions', label: 'Actions', render: (s) => s.snapshot_type === 'active' ? '' : el('span', {},
          actionButton('Remove', async () => { await api('DELETE', `/vms/${id}/snapshots/${s.id}`); await reload(); },
            { 'aria-label': `Remove snapshot ${s.description}`, class: 'snap-remove' }, snapNeed),
          actionButton('Restore', async () => { await api('POST', `/vms/${id}/snapshots/${s.id}/restore`, {}); await reload(); },
            { 'aria-label': `Restore snapshot ${s.description}` }, snapNeed),
          atts.some((a) => !a.disk.snapshot && allowed(['backup_disk', diskRefs(diskOf[a.disk.id], domains, [vm], clusters)]))
            ? el('a', { href: `#/transfers?vm=${id}&snapshot=${s.id}&download=${atts.find((a) => !a.disk.snapshot).disk.id}`,
              'aria-label': `Download the disks of snapshot ${s.description}` }, 'Download disks') : '') }],
      snaps, { empty: 'no snapshots' })),
    ...backups.sections);
  // live: a merge, a snapshot being taken, a backup on its way
  repoll(async () => {
    if (location.hash !== `#/vm/${id}` || document.querySelector('dialog[open]')) return;
    const cur = await list(`/vms/${id}/snapshots`, 'snapshot');
    const busy = (xs) => xs.some((s) => s.snapshot_status === 'locked');
    if (busy(cur) || busy(snaps) || cur.length !== snaps.length || await backups.moving()) await reload();
  }, 1000);
}

const BACKUP_DONE = ['succeeded', 'failed'];

// the VM's checkpoints and backups (oVirt's Backup API): start a full or an
// incremental backup, its phase live, finalize; delete the root checkpoint.
// Resolves to {sections, moving()}: no sections when the engine has no backups.
async function backupSections(id, atts, refs, reload) {
  let cps, bks;
  try {
    [cps, bks] = await Promise.all([list(`/vms/${id}/checkpoints`, 'checkpoint'), list(`/vms/${id}/backups`, 'backup')]);
  } catch (_) { return { sections: [], moving: async () => false }; }
  const need = ['backup_disk', refs];
  const byDate = (a, b) => String(a.creation_date).localeCompare(String(b.creation_date));
  cps.sort(byDate);
  bks.sort(byDate).reverse();
  const last = cps[cps.length - 1];
  const root = cps.find((c) => !c.parent_id) || cps[0];
  const disks = atts.filter((a) => !a.disk.snapshot).map((a) => ({ id: a.disk.id }));
  const start = (incremental) => actionButton(incremental ? 'Start incremental backup' : 'Start full backup', async () => {
    const body = { disks: { disk: disks } };
    if (incremental) {
      if (!last) throw new Error('no checkpoint yet: take a full backup first');
      body.from_checkpoint_id = last.id;
    }
    await api('POST', `/vms/${id}/backups`, body);
    await reload();
  }, { id: incremental ? 'backup-incremental' : 'backup-full', disabled: incremental && !last,
    title: incremental && !last ? 'no checkpoint yet: take a full backup first' : null }, need);
  const sections = [
    section('Backups',
      el('div', { class: 'toolbar' }, start(false), start(true),
        el('span', {}, last ? ['incremental from checkpoint ', el('code', {}, last.id.slice(0, 8))] : 'no checkpoint yet')),
      table([{ key: 'id', label: 'Backup', render: (b) => b.description || b.id.slice(0, 8) },
        { key: 'phase', label: 'Phase', render: (b) => el('span', { class: 'backup-phase' }, statusBadge(b.phase)) },
        { key: 'from_checkpoint_id', label: 'Kind', render: (b) => b.from_checkpoint_id ? 'incremental' : 'full' },
        { key: 'creation_date', label: 'Created', render: (b) => when(b.creation_date) },
        { key: 'actions', label: 'Actions', render: (b) => b.phase === 'ready'
          ? actionButton('Finalize', async () => { await api('POST', `/vms/${id}/backups/${b.id}/finalize`, {}); await reload(); },
            { 'aria-label': `Finalize backup ${b.id.slice(0, 8)}`, class: 'backup-finalize' }, need) : '' }],
      bks, { empty: 'no backups' })),
    section('Checkpoints', table([{ key: 'id', label: 'Checkpoint', render: (c) => el('code', {}, c.id) },
      { key: 'parent_id', label: 'Parent', render: (c) => c.parent_id ? el('code', {}, c.parent_id.slice(0, 8)) : 'root' },
      { key: 'state', label: 'State', render: (c) => statusBadge(c.state) },
      { key: 'creation_date', label: 'Created', render: (c) => when(c.creation_date) },
      { key: 'actions', label: 'Actions', render: (c) => c === root
        ? actionButton('Delete', async () => { await api('DELETE', `/vms/${id}/checkpoints/${c.id}`); await reload(); },
          { 'aria-label': `Delete root checkpoint ${c.id.slice(0, 8)}`, class: 'checkpoint-delete' }, need) : '' }],
    cps, { empty: 'no checkpoints' }))];
  const moving = async () => {
    if (bks.some((b) => !BACKUP_DONE.includes(b.phase) && b.phase !== 'ready')) return true;
    const cur = await list(`/vms/${id}/backups`, 'backup');
    return cur.length !== bks.length || cur.some((b) => bks.find((x) => x.id === b.id)?.phase !== b.phase);
  };
  return { sections, moving };
}

// the seed's flow: source VM -> its snapshot -> a disk of it -> target VM
async function attachDialog(vms, targetId, done) {
  const src = el('select', { id: 'attach-src' }, el('option', { value: '' }, '(pick a VM)'), vms.map((v) => el('option', { value: v.id }, v.name)));
  const snap = el('select', { id: 'attach-snap', disabled: true });
  const disk = el('select', { id: 'attach-disk', disabled: true });
  // only the targets the user may attach disks to
  const tgt = el('select', { id: 'attach-target' }, vms.filter((v) => allowed(['attach_disk', vmRefs(v, clusters)]))
    .map((v) => el('option', { value: v.id, selected: v.id === targetId }, v.name)));
  const slot = el('p', { class: 'fault', role: 'alert', id: 'attach-fault' });
  const dlg = el('dialog', { 'aria-labelledby': 'attach-title', class: 'attach' });
  const closeBtn = el('button', { type: 'button', onclick: () => { dlg.close(); dlg.remove(); } }, 'Close');
  src.addEventListener('change', async () => {
    showFault(slot, null);
    snap.replaceChildren(); disk.replaceChildren(); snap.disabled = disk.disabled = true;
    if (!src.value) return;
    try {
      const snaps = (await list(`/vms/${src.value}/snapshots`, 'snapshot')).filter((s) => s.snapshot_type !== 'active');
      snap.replaceChildren(...snaps.map((s) => el('option', { value: s.id }, `${s.description} (${when(s.date)})`)));
      snap.disabled = !snaps.length;
      snap.dispatchEvent(new Event('change'));
    } catch (e) { showFault(slot, e); }
  });
  snap.addEventListener('change', async () => {
    disk.replaceChildren();
    if (!snap.value) return;
    try {
      const ds = await list(`/vms/${src.value}/snapshots/${snap.value}/disks`, 'disk');
      disk.replaceChildren(...ds.map((d) => el('option', { value: d.id }, d.alias || d.name || d.id)));
      disk.disabled = !ds.length;
    } catch (e) { showFault(slot, e); }
  });
  const form = el('form', { method: 'dialog', onsubmit: async (e) => {
    e.preventDefault();
    showFault(slot, null);
    try {
      await api('POST', `/vms/${tgt.value}/diskattachments`, { disk: { id: disk.value, snapshot: { id: snap.value } }, interface: 'virtio_scsi', bootable: false, active: true });
      dlg.close(); dlg.remove();
      await done();
    } catch (err) { showFault(slot, err); }
  } },
  el('h2', { id: 'attach-title' }, 'Attach a disk snapshot'),
  el('label', { for: 'attach-src' }, 'Source VM'), src,
  el('label', { for: 'attach-snap' }, 'Snapshot'), snap,
  el('label', { for: 'attach-disk' }, 'Disk'), disk,
  el('label', { for: 'attach-target' }, 'Target VM'), tgt,
  el('div', { class: 'toolbar' }, el('button', { type: 'submit', id: 'attach-submit' }, 'Attach'), closeBtn), slot);
  dlg.append(form);
  document.body.append(dlg);
  dlg.showModal();
}

// ------------------------------------------------------------------ transfers
async function waitPhase(tid, want) {
  for (let i = 0; i < 240; i++) {
    const t = await api('GET', `/imagetransfers/${tid}`);
    if (want.includes(t.phase)) return t;
    if (String(t.phase).startsWith('finished_failure') || t.phase === 'cancelled') throw new Error(`transfer ${tid} ended in phase ${t.phase}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`transfer ${tid} did not reach ${want.join(' or ')}`);
}

async function transfersPage(params) {
  const all = await list('/disks', 'disk');
  // the disks this user may download (BACKUP_DISK; a disk inherits from its VMs)
  const vmsOf = {};
  if (!perm.maySystem('backup_disk')) {
    for (const v of await list('/vms', 'vm')) {
      for (const a of await list(`/vms/${v.id}/diskattachments`, 'disk_attachment').catch(() => []))
        if (!a.disk.snapshot) (vmsOf[a.disk.id] ||= []).push(v);
    }
  }
  const disks = all.filter((d) => allowed(['backup_disk', diskRefs(d, domains, vmsOf[d.id], clusters)]));
  // a snapshot's description by its id, for the VM the page was opened for
  const snapNames = params.get('vm') ? Object.fromEntries((await list(`/vms/${params.get('vm')}/snapshots`, 'snapshot').catch(() => []))
    .map((x) => [x.id, x.description])) : {};
  const dslot = el('p', { class: 'fault', role: 'alert', id: 'download-fault' });
  const dsel = el('select', { id: 'download-disk' }, disks.map((d) => el('option', { value: d.id, selected: d.id === params.get('download') }, `${d.alias} (${bytes(d.provisioned_size)})`)));
  // what to read: the disk as it is now, or one of its disk snapshots
  // (an image transfer with <snapshot id>: the chain up to that volume)
  const ssel = el('select', { id: 'download-snapshot' });
  const fillSnapshots = async () => {
    ssel.replaceChildren(el('option', { value: '' }, 'current data'));
    if (!dsel.value) return;
    const ds = await list(`/disks/${dsel.value}/disksnapshots`, 'disk_snapshot').catch(() => []);
    ssel.append(...ds.map((x) => el('option', { value: x.id, selected: x.snapshot?.id === params.get('snapshot'),
      'data-snapshot': x.snapshot?.id }, `snapshot ${snapNames[x.snapshot?.id] ?? (x.snapshot?.id || x.id).slice(0, 8)}`)));
  };
  dsel.addEventListener('change', () => { params.delete('snapshot'); fillSnapshots(); });
  await fillSnapshots();
  const dlink = el('p', { id: 'download-link' });
  const file = el('input', { id: 'upload-file', type: 'file' });
  const alias = el('input', { id: 'upload-alias', value: 'uploaded' });
  const prog = el('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'upload progress' });
  const uslot = el('p', { class: 'fault', role: 'alert', id: 'upload-fault' });
  const ustate = el('p', { id: 'upload-state', role: 'status' });
  page('Image transfers',
    section('Download a disk or a disk snapshot',
      el('div', { class: 'inline' }, el('label', { for: 'download-disk' }, 'Disk'), dsel,
        el('label', { for: 'download-snapshot' }, 'Data'), ssel,
        actionButton('Prepare download', async () => {
          showFault(dslot, null);
          const snap = ssel.value;
          const t = await api('POST', '/imagetransfers', { direction: 'download', format: 'raw',
            ...(snap ? { snapshot: { id: snap } } : { disk: { id: dsel.value } }) });
          const cur = await waitPhase(t.id, ['transferring']);
          const d = disks.find((x) => x.id === dsel.value);
          const name = `${d?.alias || 'disk'}${snap ? '-' + snap.slice(0, 8) : ''}`;
          dlink.replaceChildren(el('a', { href: cur.transfer_url, download: `${name}.raw`, id: 'download-anchor' }, `Download ${name}`),
            ' ', actionButton('Finish', async () => { await api('POST', `/imagetransfers/${t.id}/finalize`, {}); dlink.replaceChildren('finished'); }, { id: 'download-finish' }));
        }, { id: 'download-prepare', disabled: !disks.length }), dslot), dlink),
    !allowed(['create_disk', 'anywhere']) ? null : section('Upload an image into a new disk',
      el('form', { class: 'inline', onsubmit: async (e) => {
        e.preventDefault();
        showFault(uslot, null);
        try {
          const f = file.files[0];
          if (!f) throw new Error('choose a file first');
          const size = Math.ceil(f.size / 1048576) * 1048576;
          ustate.textContent = 'creating the disk';
          const d = await api('POST', '/disks', { alias: alias.value, provisioned_size: size, format: 'raw', sparse: true, storage_domains: { storage_domain: [{ name: 'data' }] } });
          for (let i = 0; i < 60 && (await api('GET', `/disks/${d.id}`)).status === 'locked'; i++) await new Promise((r) => setTimeout(r, 500));
          const t = await api('POST', '/imagetransfers', { direction: 'upload', format: 'raw', disk: { id: d.id } });
          const cur = await waitPhase(t.id, ['transferring']);
          ustate.textContent = 'uploading';
          await new Promise((resolve, reject) => {
            const x = new XMLHttpRequest();
            x.open('PUT', cur.transfer_url);
            x.upload.onprogress = (ev) => { if (ev.lengthComputable) prog.value = Math.round((100 * ev.loaded) / ev.total); };
            x.onload = () => (x.status < 300 ? resolve() : reject(new Error(`upload answered ${x.status}: ${x.responseText}`)));
            x.onerror = () => reject(new Error('upload failed: the data URL did not answer'));
            x.send(f);
          });
          prog.value = 100;
          await api('POST', `/imagetransfers/${t.id}/finalize`, {});
          await waitPhase(t.id, ['finished_success']);
          ustate.textContent = `uploaded into disk ${alias.value} (${d.id})`;
        } catch (err) { ustate.textContent = ''; showFault(uslot, err); }
      } },
      el('label', { for: 'upload-file' }, 'Image file (raw)'), file,
      el('label', { for: 'upload-alias' }, 'New disk name'), alias,
      el('button', { type: 'submit', id: 'upload-submit' }, 'Upload'), prog, ustate, uslot)),
    allowed(['import_export_vm', 'system']) ? section('Import an OVA', ovaImportForm()) : null);
}

function ovaImportForm() {
  const path = el('input', { id: 'ova-path', placeholder: '/var/tmp/vm.ova' });
  const name = el('input', { id: 'ova-name', placeholder: 'new VM name' });
  const state = el('span', { id: 'ova-import-state', role: 'status' });
  return el('div', { class: 'inline' }, el('label', { for: 'ova-path' }, 'OVA file on the host'), path,
    el('label', { for: 'ova-name' }, 'VM name'), name,
    actionButton('Import', async () => {
      const a = await api('POST', '/externalvmimports', { name: name.value, provider: 'ova', url: path.value,
        cluster: { name: 'Default' }, storage_domain: { name: 'data' } });
      if (a?.job?.id) await followJob(a.job.id, state, 'import');
      if (a?.vm?.id) state.append(' ', el('a', { href: `#/vm/${a.vm.id}` }, `VM ${name.value}`));
    }, { id: 'ova-import' }), state);
}

// ------------------------------------------------------------------ events and jobs
async function activityPage(params) {
  const vms = await list('/vms', 'vm');
  const vmSel = el('select', { id: 'f-vm' }, el('option', { value: '' }, 'all VMs'), vms.map((v) => el('option', { value: v.id, selected: v.id === params.get('vm') }, v.name)));
  const sevSel = el('select', { id: 'f-sev' }, ['', 'error', 'warning', 'normal'].map((s) => el('option', { value: s, selected: s === (params.get('severity') || '') }, s || 'all severities')));
  const since = el('input', { id: 'f-since', type: 'datetime-local', value: params.get('since') || '' });
  const evBox = el('div', { id: 'events' });
  const jobBox = el('div', { id: 'jobs' });
  async function refresh() {
    // jobs name no VM in oVirt's model: the engine finds a VM's jobs by search
    const jobPath = vmSel.value ? `/jobs?search=${encodeURIComponent(`vm.id=${vmSel.value}`)}` : '/jobs';
    const [events, jobs] = await Promise.all([list('/events?max=200', 'event'), list(jobPath, 'job')]);
    const t0 = since.value ? new Date(since.value).getTime() : 0;
    const keep = (x, t) => (!t0 || new Date(t).getTime() >= t0);
    evBox.replaceChildren(eventsTable(events.filter((e) => (!vmSel.value || e.vm?.id === vmSel.value)
      && (!sevSel.value || e.severity === sevSel.value) && keep(e, e.time))));
    jobBox.replaceChildren(jobsTable(jobs.filter((j) => keep(j, j.start_time))));
  }
  for (const c of [vmSel, sevSel, since]) c.addEventListener('change', refresh);
  page('Events and jobs',
    el('div', { class: 'inline', role: 'group', 'aria-label': 'filters' },
      el('label', { for: 'f-vm' }, 'VM'), vmSel, el('label', { for: 'f-sev' }, 'Severity'), sevSel,
      el('label', { for: 'f-since' }, 'Since'), since),
    section('Events', evBox), section('Jobs', jobBox));
  await refresh();
  repoll(async () => { if (location.hash.startsWith('#/activity')) await refresh(); });
}

// ------------------------------------------------------------------ routing
async function route() {
  clearTimeout(pollTimer);
  pollTimer = null;
  if (!session.token) { loginPage(); return; }
  nav.hidden = false;
  document.getElementById('who').textContent = session.user || '';
  const [path, qs] = (location.hash.slice(1) || '/dashboard').split('?');
  const params = new URLSearchParams(qs || '');
  for (const a of nav.querySelectorAll('a')) a.setAttribute('aria-current', path.startsWith(a.getAttribute('href').slice(1)) ? 'page' : 'false');
  try {
    await loadAccess();
    if (path.startsWith('/vm/')) await vmPage(path.slice(4));
    else if (path === '/vms') await vmsPage(params.get('search'));
    else if (path === '/transfers') await transfersPage(params);
    else if (path === '/activity') await activityPage(params);
    else await dashboard();
  } catch (e) {
    if (!session.token) { loginPage(); return; }
    const slot = el('p', { class: 'fault', role: 'alert' });
    showFault(slot, e);
    page('Error', slot);
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  await logout();
  location.hash = '';
  loginPage();
});
window.addEventListener('hashchange', route);
window.addEventListener('snapback-logged-out', loginPage);
route();
