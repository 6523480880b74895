/**
 * Writing to a sink that may be destroyed under us (the other side of a copy failed or the copy
 * was aborted): waits that a plain `once(sink, 'drain')` would never end.
 * @internal
 * @module
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Writes `chunk`, and waits for room when the sink asks; rejects once the sink is destroyed. @internal */
export async function writeChunk(sink: Writable, chunk: Buffer): Promise<void> {
  if (sink.destroyed) throw sink.errored ?? new Error('The destination was closed');
  if (sink.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error | null) => {
      sink.off('drain', onDrain);
      sink.off('close', onClose);
      sink.off('error', done);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(sink.errored ?? new Error('The destination was closed'));
    sink.once('drain', onDrain);
    sink.once('close', onClose);
    sink.once('error', done);
  });
}

/** Ends the sink and waits until it has flushed everything (or failed). @internal */
export async function endSink(sink: Writable): Promise<void> {
  sink.end();
  await finished(sink);
}
