/**
 * Small helpers so that every wait can be cancelled with an AbortSignal.
 * @internal
 * @module
 */
import { addAbortListener } from 'node:events';

/** Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts. @internal */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const listener = addAbortListener(signal, () => reject(signal.reason));
    promise.then(
      (value) => {
        listener[Symbol.dispose]();
        resolve(value);
      },
      (error: unknown) => {
        listener[Symbol.dispose]();
        reject(error);
      },
    );
  });
}

/**
 * A signal that aborts when any of `signals` does, or after `ms` with `timeoutReason()` (default:
 * a `TimeoutError` DOMException; `ms` undefined or infinite: never). Dispose it when the guarded
 * work is over: that detaches it from the sources and stops its timer. Not `AbortSignal.any` with
 * `AbortSignal.timeout`: on Node 20 a timeout signal that only `AbortSignal.any` refers to is
 * collected at the next garbage collection and never fires, so the wait it bounds could hang.
 * @internal
 */
export function abortSignalAfter(
  ms: number | undefined,
  signals: readonly (AbortSignal | undefined)[] = [],
  timeoutReason: () => unknown = () =>
    new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
): { readonly signal: AbortSignal } & Disposable {
  const controller = new AbortController();
  const listeners: Disposable[] = [];
  let timer: NodeJS.Timeout | undefined;
  const dispose = () => {
    clearTimeout(timer);
    for (const listener of listeners.splice(0)) listener[Symbol.dispose]();
  };
  const abort = (reason: unknown) => {
    dispose();
    controller.abort(reason);
  };
  for (const source of signals) {
    if (!source) continue;
    if (source.aborted) {
      abort(source.reason);
      break;
    }
    listeners.push(addAbortListener(source, () => abort(source.reason)));
  }
  if (!controller.signal.aborted && ms !== undefined && ms !== Number.POSITIVE_INFINITY) {
    timer = setTimeout(() => abort(timeoutReason()), ms).unref();
  }
  return { signal: controller.signal, [Symbol.dispose]: dispose };
}
