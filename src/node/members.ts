import { Packr } from 'msgpackr';
import type { ConfChange, ConfState, NodeId } from '../raft/index.js';
import { sublevel, type BatchOp, type MemberDb, type SubDb } from '../storage/member-db.js';

const packr = new Packr({ useRecords: false });

/** What cairn knows of a member besides its Raft id: it travels in the conf change that adds it. */
export interface MemberInfo {
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
}

export interface MemberRecord extends MemberInfo {
  readonly id: NodeId;
  readonly isLearner: boolean;
}

export function encodeMemberInfo(info: MemberInfo): Uint8Array {
  return packr.pack({ name: info.name, peerUrls: [...info.peerUrls], clientUrls: [...info.clientUrls] });
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

function infoOf(raw: Partial<Record<keyof MemberInfo, unknown>>): MemberInfo {
  return { name: typeof raw.name === 'string' ? raw.name : '', peerUrls: strings(raw.peerUrls), clientUrls: strings(raw.clientUrls) };
}

export function decodeMemberInfo(bytes: Uint8Array | undefined): MemberInfo {
  if (!bytes || bytes.length === 0) return { name: '', peerUrls: [], clientUrls: [] };
  return infoOf(packr.unpack(bytes) as Partial<Record<keyof MemberInfo, unknown>>);
}

/**
 * The membership as the state machine has applied it, kept in the member's
 * database (written in the same batch as the applied index) and in memory.
 */
export class MemberRegistry {
  private readonly members = new Map<NodeId, MemberRecord>();
  private readonly section: SubDb;

  private constructor(db: MemberDb) {
    this.section = sublevel(db, MemberRegistry.SECTION);
  }

  /** The sublevel it keeps its records in (snapshots carry it, see MvccStore). */
  static readonly SECTION = 'members';

  static async open(db: MemberDb): Promise<MemberRegistry> {
    const registry = new MemberRegistry(db);
    await registry.reload();
    return registry;
  }

  /** Reads the records again (after a snapshot replaced them). */
  async reload(): Promise<void> {
    this.members.clear();
    for await (const [key, value] of this.section.iterator()) {
      const id = new TextDecoder().decode(key) as NodeId;
      const raw = packr.unpack(value) as Partial<Record<keyof MemberRecord, unknown>>;
      this.members.set(id, { id, ...infoOf(raw), isLearner: raw.isLearner === true });
    }
  }

  get(id: NodeId): MemberRecord | undefined {
    return this.members.get(id);
  }

  list(): MemberRecord[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * Records an applied conf change (with the config it produced) and returns the
   * batch operations that make it durable. Call in log order.
   */
  apply(cc: ConfChange, confState: ConfState): BatchOp[] {
    const key = new TextEncoder().encode(cc.nodeId);
    if (cc.type === 'removeNode') {
      this.members.delete(cc.nodeId);
      return [{ type: 'del', sublevel: this.section, key }];
    }
    const known = this.members.get(cc.nodeId);
    const info = cc.context && cc.context.length > 0 ? decodeMemberInfo(cc.context) : (known ?? decodeMemberInfo(undefined));
    const record: MemberRecord = {
      id: cc.nodeId,
      name: info.name || known?.name || '',
      peerUrls: info.peerUrls.length > 0 ? info.peerUrls : (known?.peerUrls ?? []),
      clientUrls: info.clientUrls.length > 0 ? info.clientUrls : (known?.clientUrls ?? []),
      isLearner: confState.learners.includes(cc.nodeId),
    };
    this.members.set(cc.nodeId, record);
    const value = packr.pack({ name: record.name, peerUrls: record.peerUrls, clientUrls: record.clientUrls, isLearner: record.isLearner });
    return [{ type: 'put', sublevel: this.section, key, value }];
  }
}
