/**
 * Ctrl-C and SIGTERM for the CLI, the only part of the package that touches process signals.
 * The first signal asks for a clean stop; a second one cuts the grace period short.
 * @internal
 * @module
 */

/** Signals the CLI handles. */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** What the commands wait on. */
export interface Interrupts extends Disposable {
  /** Aborted by the first signal; its reason is the signal name. */
  readonly stop: AbortSignal;
  /** Aborted by the second signal. */
  readonly force: AbortSignal;
  /** Resolves with the first signal's name. */
  readonly received: Promise<NodeJS.Signals>;
}

/** Installs SIGINT/SIGTERM handlers until disposed. */
export function trapInterrupts(): Interrupts {
  const stop = new AbortController();
  const force = new AbortController();
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => {
    resolve = r;
  });
  const handler = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) {
      stop.abort(signal);
      resolve(signal);
    } else force.abort(signal);
  };
  for (const signal of SIGNALS) process.on(signal, handler);
  return {
    stop: stop.signal,
    force: force.signal,
    received,
    [Symbol.dispose]() {
      for (const signal of SIGNALS) process.off(signal, handler);
    },
  };
}
