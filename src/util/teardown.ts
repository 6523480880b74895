/**
 * A last-in, first-out list of clean-up steps: Node 20 has no AsyncDisposableStack. Every step
 * runs even when an earlier one fails; the failures are thrown together afterwards.
 * @internal
 * @module
 */
import { FileServerError } from '../errors.js';

/** @internal */
export class Teardown {
  #steps: Array<{ name: string; run: () => unknown }> = [];

  /** Registers a step; steps run in reverse order of registration. */
  defer(name: string, run: () => unknown): void {
    this.#steps.push({ name, run });
  }

  /** True when no step is registered. */
  get empty(): boolean {
    return this.#steps.length === 0;
  }

  /** Runs and forgets every step; throws ERR_STOP_FAILED with an AggregateError cause if any failed. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step.run();
      } catch (error) {
        errors.push(
          Object.assign(error instanceof Error ? error : new Error(String(error)), { step: step.name }),
        );
      }
    }
    if (errors.length > 0) {
      const names = errors.map((e) => (e as { step: string }).step).join(', ');
      throw new FileServerError('ERR_STOP_FAILED', `Clean-up failed in: ${names}`, {
        cause: new AggregateError(errors, `${errors.length} clean-up step(s) failed`),
      });
    }
  }
}
