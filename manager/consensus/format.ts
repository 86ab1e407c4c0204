// What the manager writes into Raft entries and snapshots around the store's
// own bytes: a one-byte tag per entry (a store transaction, or a member's
// address), and snapshots holding the member list next to the store state.

/** A manager in the Raft group: its Raft id, node id and the address other managers reach it at. */
export interface MemberRecord {
  raftId: string;
  nodeId: string;
  addr: string;
}

export const ENTRY_STORE = 1;
export const ENTRY_MEMBER = 2;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeMember(m: MemberRecord): Uint8Array {
  return enc.encode(JSON.stringify({ raftId: m.raftId, nodeId: m.nodeId, addr: m.addr }));
}

export function decodeMember(b: Uint8Array): MemberRecord {
  const o = JSON.parse(dec.decode(b)) as Partial<MemberRecord>;
  if (typeof o.raftId !== 'string' || typeof o.addr !== 'string') throw new Error('not a member record');
  return { raftId: o.raftId, nodeId: typeof o.nodeId === 'string' ? o.nodeId : '', addr: o.addr };
}

/** Snapshot layout: u32 length of the member list (JSON), the list, then the store's snapshot bytes. */
export function encodeState(members: MemberRecord[], store: Uint8Array): Uint8Array {
  const m = enc.encode(JSON.stringify(members));
  const out = new Uint8Array(4 + m.length + store.length);
  new DataView(out.buffer).setUint32(0, m.length);
  out.set(m, 4);
  out.set(store, 4 + m.length);
  return out;
}

export function decodeState(b: Uint8Array): { members: MemberRecord[]; store: Uint8Array } {
  if (b.length < 4) return { members: [], store: new Uint8Array(0) };
  const n = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
  if (4 + n > b.length) throw new Error(`manager snapshot is damaged: member list of ${n} bytes in ${b.length} bytes`);
  const members = (JSON.parse(dec.decode(b.subarray(4, 4 + n))) as unknown[]).map((x) => decodeMember(enc.encode(JSON.stringify(x))));
  return { members, store: b.subarray(4 + n) };
}
