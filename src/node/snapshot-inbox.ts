import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Message, SnapshotMetadata } from '../raft/index.js';

/**
 * Snapshots streamed in from the leader wait here, on disk, between arriving
 * (the transport) and being installed (the Raft loop, once the core accepted the
 * snapshot and its metadata is durable). One file per (index, term).
 */
export class SnapshotInbox {
  constructor(private readonly dir: string) {}

  private fileFor(index: number, term: number): string {
    return join(this.dir, `incoming-${index}-${term}.snap`);
  }

  /** Writes the whole body to disk and syncs it. Older incoming files are removed. */
  async receive(message: Message, body: AsyncIterable<Uint8Array>): Promise<void> {
    const metadata = message.snapshot?.metadata;
    if (!metadata) throw new Error('snap message without snapshot metadata');
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('incoming-')) await rm(join(this.dir, name), { force: true });
    }
    const file = await open(this.fileFor(metadata.index, metadata.term), 'w');
    try {
      for await (const chunk of body) await file.write(chunk);
      await file.sync();
    } finally {
      await file.close();
    }
  }

  /** The image for this snapshot, read back from disk; the file is removed once read to its end. */
  async *take(metadata: SnapshotMetadata): AsyncIterable<Uint8Array> {
    const path = this.fileFor(metadata.index, metadata.term);
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
    await rm(path, { force: true });
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}
