// perms.js: what the acting user may do, and where, read the way any oVirt
// client reads it: the user from the API root's <authenticated_user>, the
// grants from /users/{id}/permissions and /groups/{id}/permissions of the
// user's groups, each role's permits from /roles/{id}/permits. A grant holds
// on its object and everything below it (system > data center > cluster >
// VM; data center > storage domain > disk; a disk also below the VMs it is
// attached to), as the engine decides in cmd/perm.c.
//
// The console only uses this to hide or disable controls: the engine still
// decides every request, and a refusal is still shown as its fault.
import { api, list } from '/api.js';

// the object a permission is on: its element name in the permission
const KINDS = ['data_center', 'cluster', 'storage_domain', 'host', 'vm', 'template', 'disk'];

export class Permits {
  // grants: [{kind, id, permits: Set of permit names}]
  constructor(grants) {
    this.grants = grants;
  }

  // true when PERMIT (oVirt's name, e.g. 'vm_basic_operations') holds on the
  // first of REFS ([{kind, id}]: the object, then its ancestors)
  may(permit, refs = []) {
    return this.grants.some((g) => g.permits.has(permit)
      && (g.kind === 'system' || refs.some((r) => r && r.kind === g.kind && r.id === g.id)));
  }

  // true when PERMIT holds on the system itself (routes checked at system level)
  maySystem(permit) {
    return this.grants.some((g) => g.kind === 'system' && g.permits.has(permit));
  }

  // true when PERMIT holds anywhere (creating: the cluster or domain is picked later)
  mayAnywhere(permit) {
    return this.grants.some((g) => g.permits.has(permit));
  }
}

// the acting user's Permits; one round of requests per login (the console
// reloads it on each page, so a grant changed meanwhile shows at once)
export async function loadPermits() {
  const root = await api('GET', '/');
  const me = root?.authenticated_user?.id;
  if (!me) return new Permits([]);
  const [own, groups] = await Promise.all([
    list(`/users/${me}/permissions`, 'permission'),
    list(`/users/${me}/groups`, 'group').catch(() => [])]);
  const fromGroups = await Promise.all(groups.map((g) => list(`/groups/${g.id}/permissions`, 'permission').catch(() => [])));
  const perms = own.concat(...fromGroups);
  const roles = {};
  await Promise.all([...new Set(perms.map((p) => p.role?.id).filter(Boolean))].map(async (id) => {
    const permits = await list(`/roles/${id}/permits`, 'permit');
    roles[id] = { permits: new Set(permits.map((p) => p.name)) };
  }));
  return new Permits(perms.filter((p) => roles[p.role?.id]).map((p) => {
    const kind = KINDS.find((k) => p[k]?.id) || 'system';
    return { kind, id: kind === 'system' ? null : p[kind].id, ...roles[p.role.id] };
  }));
}

// the refs a VM's permits come from: the VM, its cluster, that cluster's data
// center (CLUSTERS: the clusters the user sees, by id)
export function vmRefs(vm, clusters) {
  const c = vm?.cluster?.id;
  return [{ kind: 'vm', id: vm?.id }, c && { kind: 'cluster', id: c },
    clusters?.[c]?.data_center?.id && { kind: 'data_center', id: clusters[c].data_center.id }];
}

// the refs of a disk: the disk, its storage domain and that domain's data
// centers (DOMAINS by id), and the refs of the VMS it is attached to
export function diskRefs(disk, domains, vms = [], clusters = {}) {
  const sds = disk?.storage_domains?.storage_domain || [];
  const refs = [{ kind: 'disk', id: disk?.id }];
  for (const s of sds) {
    refs.push({ kind: 'storage_domain', id: s.id });
    for (const dc of domains?.[s.id]?.data_centers?.data_center || []) refs.push({ kind: 'data_center', id: dc.id });
  }
  for (const v of vms) refs.push(...vmRefs(v, clusters));
  return refs;
}
