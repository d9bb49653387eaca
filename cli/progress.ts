// A one-line progress indicator for long commands (`cairn bench`): on stderr, and
// only when stderr is a terminal, so pipes and files never see it.

const REDRAW_MS = 200;

export interface ProgressOptions {
  readonly label: string;
  readonly total: number;
  /** How many are done so far (polled at each redraw). */
  readonly done: () => number;
  readonly stream?: NodeJS.WriteStream;
}

export class Progress {
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #stream: NodeJS.WriteStream;
  readonly #started = performance.now();

  constructor(private readonly options: ProgressOptions) {
    this.#stream = options.stream ?? process.stderr;
    if (!this.#stream.isTTY) return;
    this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
    this.#timer.unref();
  }

  #draw(): void {
    const done = Math.min(this.options.done(), this.options.total);
    const seconds = (performance.now() - this.#started) / 1000;
    const percent = this.options.total > 0 ? Math.floor((100 * done) / this.options.total) : 100;
    const width = 30;
    const filled = Math.round((width * percent) / 100);
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    this.#stream.write(`\r${this.options.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.options.total} ${percent}% ${rate}/s\u001b[K`);
  }

  /** Stops redrawing and clears the line. */
  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#stream.write('\r\u001b[K');
  }
}
