// `-o table`: rows under a header, each column as wide as its widest cell, in
// etcdctl's boxed style, so a person can read it and `etcdctl -w table` users
// recognise it.

export interface Column {
  readonly title: string;
  /** Numbers read best right-aligned. Default left. */
  readonly align?: 'left' | 'right';
}

/** Escapes what would break a row (line breaks, tabs, other control characters). */
export function cellText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

function pad(text: string, width: number, align: 'left' | 'right' | 'center'): string {
  const room = width - [...text].length;
  if (room <= 0) return text;
  if (align === 'right') return ' '.repeat(room) + text;
  if (align === 'center') return ' '.repeat(Math.floor(room / 2)) + text + ' '.repeat(Math.ceil(room / 2));
  return text + ' '.repeat(room);
}

/** The table as text, ending with a newline. Cells are escaped with cellText(). */
export function formatTable(columns: readonly Column[], rows: readonly (readonly (string | number | boolean)[])[]): string {
  const cells = rows.map((row) => columns.map((_, i) => cellText(String(row[i] ?? ''))));
  const widths = columns.map((c, i) => Math.max([...c.title].length, ...cells.map((row) => [...row[i]].length)));
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+\n';
  const line = (values: readonly string[], align: (i: number) => 'left' | 'right' | 'center'): string =>
    '|' + values.map((v, i) => ` ${pad(v, widths[i], align(i))} `).join('|') + '|\n';
  let out = rule + line(columns.map((c) => c.title), () => 'center') + rule;
  for (const row of cells) out += line(row, (i) => columns[i].align ?? 'left');
  if (cells.length > 0) out += rule;
  return out;
}
