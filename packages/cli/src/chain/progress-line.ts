import { writeOut } from '../process-output.js';

/**
 * qemu-img's `-p` line for rebase and commit: `    (P/100%)` rewritten in place with `\r`, then a newline at the
 * end. qemu-img prints it whether or not stdout is a terminal, and so do we; `-q` silences it.
 */
export class ProgressLine {
  private readonly out: ((text: string) => void) | undefined;
  private shown = -1;

  constructor(enabled: boolean, out: (text: string) => void = writeOut) {
    this.out = enabled ? out : undefined;
    this.show(0);
  }

  /** Reports `done` of `total` units; prints only when the hundredth of a percent changed. */
  update(done: number, total: number): void {
    this.show(total <= 0 ? 100 : Math.floor((done / total) * 10000) / 100);
  }

  finish(): void {
    if (this.out === undefined) return;
    this.show(100);
    this.out('\n');
  }

  private show(percent: number): void {
    if (this.out === undefined || percent === this.shown) return;
    this.shown = percent;
    this.out(`    (${percent.toFixed(2)}/100%)\r`);
  }
}
