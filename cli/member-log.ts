// Member log lines as `cairn cluster up` shows them: each prefixed with its
// member's name (coloured on a terminal), pino's JSON made readable:
// `n1 | 12:00:01.123 INFO  became leader leader=5f0c...`.

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the prefix already says. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'member', 'id']);
const COLOURS = [36, 33, 35, 32, 34, 31, 37];

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value && typeof value === 'object' && 'message' in value && typeof (value as { message: unknown }).message === 'string') {
    return JSON.stringify((value as { message: string }).message);
  }
  return JSON.stringify(value);
}

/** One pino JSON line as text; anything else as it is. */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const level = (LEVELS[record.level as number] ?? String(record.level ?? '')).padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !HIDDEN.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  return [time, level, typeof record.msg === 'string' ? record.msg : '', ...fields].filter(Boolean).join(' ');
}

/** A writer of member lines: `name | text`, the names padded alike and coloured when `colour`. */
export function memberLinePrinter(names: readonly string[], colour: boolean, write: (text: string) => void = (t) => process.stdout.write(t)): (member: string, line: string) => void {
  const width = Math.max(...names.map((n) => n.length));
  return (member, line) => {
    if (line.trim() === '') return;
    const index = Math.max(0, names.indexOf(member));
    const name = member.padEnd(width);
    const prefix = colour ? `\u001b[${COLOURS[index % COLOURS.length]}m${name} |\u001b[0m` : `${name} |`;
    write(`${prefix} ${readableLogLine(line)}\n`);
  };
}
