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

/** `signal` combined with a timeout; either may be absent. @internal */
export function withTimeout(
  signal: AbortSignal | undefined,
  ms: number | undefined,
): AbortSignal | undefined {
  const timeout = ms === undefined || ms === Number.POSITIVE_INFINITY ? undefined : AbortSignal.timeout(ms);
  if (!timeout) return signal;
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}
