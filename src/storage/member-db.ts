import { Level } from 'level';
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';

/** One LevelDB per member; everything it keeps lives in sublevels of it, so one batch can span them. */
export type MemberDb = Level<Uint8Array, Uint8Array>;
export type SubDb = AbstractSublevel<MemberDb, string | Uint8Array, Uint8Array, Uint8Array>;

export async function openMemberDb(dir: string): Promise<MemberDb> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return db;
}

export function sublevel(db: MemberDb, name: string): SubDb {
  return db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
}

/** One operation of a batch on the member's database (use `sublevel` to target a section). */
export type BatchOp = AbstractBatchOperation<MemberDb, Uint8Array, Uint8Array>;
