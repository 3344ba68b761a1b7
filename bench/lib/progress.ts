/**
 * The one progress display of a bench run, on stderr: `[fan-out N=100 ours] 340/1000 deliveries`. On a terminal
 * the line is redrawn in place (at most every 100 ms); otherwise a line is printed at most every 5 s.
 */
export class Progress {
  private label = '';
  private unit = '';
  private total = 0;
  private done = 0;
  private active = false;
  private lastDraw = 0;
  private readonly tty: boolean;
  private readonly interval: number;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true;
    this.interval = this.tty ? 100 : 5_000;
  }

  start(label: string, total: number, unit: string): void {
    if (this.active) this.finish();
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.done = 0;
    this.active = true;
    this.lastDraw = 0;
    this.draw(true);
  }

  update(done: number): void {
    if (!this.active) return;
    this.done = done;
    this.draw(false);
  }

  /** Ends the current line, optionally with a result. */
  finish(result?: string): void {
    if (!this.active) return;
    this.active = false;
    const text = `${this.line()}${result === undefined ? '' : ` — ${result}`}`;
    this.stream.write(this.tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }

  /** A line of its own (a note between phases). */
  note(text: string): void {
    if (this.tty && this.active) this.stream.write('\r\x1b[2K');
    this.stream.write(`${text}\n`);
    if (this.active) this.draw(true);
  }

  private line(): string {
    return `[${this.label}] ${this.done}/${this.total} ${this.unit}`;
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < this.interval) return;
    this.lastDraw = now;
    this.stream.write(this.tty ? `\r\x1b[2K${this.line()}` : `${this.line()}\n`);
  }
}
