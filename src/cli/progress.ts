/**
 * A one-line progress bar for a terminal: bytes, percentage, rate over the last seconds, ETA.
 * @internal
 * @module
 */
import type { CopyProgress } from '../copy/copy.js';
import { formatBytes, formatClock, formatRate } from './output.js';

/** How far back the rate looks, so that it follows changes without jumping. */
const WINDOW_MS = 3000;

/** Draws progress on a terminal stream, rewriting one line. */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #label: string;
  readonly #samples: Array<{ t: number; bytes: number }> = [];
  #drawn = false;

  constructor(stream: NodeJS.WriteStream, label: string) {
    this.#stream = stream;
    this.#label = label;
  }

  /** Redraws the line for `progress`. */
  update(progress: CopyProgress): void {
    const now = performance.now();
    this.#samples.push({ t: now, bytes: progress.bytes });
    while (this.#samples.length > 2 && now - this.#samples[0]!.t > WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!;
    const rate = now > first.t ? ((progress.bytes - first.bytes) * 1000) / (now - first.t) : 0;
    this.#stream.write(`\r${this.render(progress, rate, this.#stream.columns || 80)}\x1b[K`);
    this.#drawn = true;
  }

  /** Ends the line so that later output starts on a fresh one. */
  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }

  /** The text of the line, at most `columns` wide. */
  render({ bytes, total }: CopyProgress, rate: number, columns: number): string {
    const parts = [formatRate(rate)];
    if (total !== undefined && total > 0) {
      const fraction = Math.min(1, bytes / total);
      const eta = rate > 0 ? formatClock((total - bytes) / rate) : '--:--';
      parts.unshift(
        `${String(Math.floor(fraction * 100)).padStart(3)}%`,
        `${formatBytes(bytes)}/${formatBytes(total)}`,
      );
      parts.push(`ETA ${eta}`);
      const tail = parts.join('  ');
      const barWidth = Math.min(30, columns - tail.length - this.#label.length - 6);
      if (barWidth >= 10) {
        const filled = Math.round(fraction * barWidth);
        return `${this.#label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${tail}`;
      }
      return `${this.#label} ${tail}`.slice(0, columns - 1);
    }
    return `${this.#label} ${formatBytes(bytes)}  ${parts.join('  ')}`.slice(0, columns - 1);
  }
}
