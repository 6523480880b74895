/**
 * An interactive CLI over a byte stream (an SSH shell channel with a pty): learns the prompt,
 * runs one command at a time, answers dialog prompts, and knows when the command is done
 * because the prompt is back.
 * @internal
 * @module
 */
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { FileServerError } from '../errors.js';
import type { Logger } from '../log.js';
import { type Dialog, type DialogStep, type ExecuteOptions, hideSecrets } from './device.js';

// CSI and OSC sequences and two-character escapes (colours, titles, bracketed paste...).
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
// Control characters but \n and \t, once CRs have been turned into line breaks.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;
// An escape sequence or CR cut off at the end of a chunk: kept for the next chunk.
const UNFINISHED = /(?:\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?|\r)$/;

const INTERRUPT_WAIT_MS = 3000;
const PROMPT_SETTLE_MS = 200;
const DEFAULT_MAX_ANSWERS = 3;
/** Bound on prompts answered in one command, whatever the dialog says. */
const MAX_DIALOG_ROUNDS = 50;

/** @internal */
export interface CliSessionOptions {
  /** Matches a prompt line before the first prompt is learned. */
  readonly promptPattern: RegExp;
  /** Default command timeout. */
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Device name for messages. */
  readonly label: string;
}

type Check<T> = () => T | undefined;

/** @internal */
export class CliSession {
  readonly #stream: Duplex;
  readonly #options: CliSessionOptions;
  readonly #decoder = new StringDecoder('utf8');
  #carry = '';
  #buffer = '';
  #closed: Error | undefined;
  #wake: (() => void) | undefined;
  #prompt: RegExp | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stream: Duplex, options: CliSessionOptions) {
    this.#stream = stream;
    this.#options = options;
    stream.on('data', (chunk: Buffer) => this.#receive(chunk));
    const closed = (error?: Error) => {
      this.#closed ??= new FileServerError(
        'ERR_DEVICE_CONNECTION',
        `The CLI session to ${options.label} closed${error ? `: ${error.message}` : ''}`,
        error ? { cause: error } : {},
      );
      this.#wake?.();
    };
    stream.on('close', () => closed());
    stream.on('end', () => closed());
    stream.on('error', closed);
  }

  /** False once the stream closed or a command could not be interrupted. */
  get usable(): boolean {
    return this.#closed === undefined;
  }

  /** The prompt learned at start, as a pattern that also accepts configuration modes. */
  get prompt(): RegExp | undefined {
    return this.#prompt;
  }

  /**
   * Waits for the first prompt (a last line matching `promptPattern` followed by a short
   * silence) and learns it. Resolves with the prompt text.
   */
  async start(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    const text = await this.#until<string>(
      () => this.#settledPrompt(this.#options.promptPattern),
      options.timeoutMs ?? this.#options.timeoutMs,
      options.signal,
      'the first prompt',
    );
    this.learnPrompt(text);
    this.#buffer = '';
    return text;
  }

  /**
   * Takes `prompt` (e.g. `R1#`) as the prompt from now on; its mode variants (`R1(config)#`,
   * `R1>`) count too.
   */
  learnPrompt(prompt: string): void {
    const base = prompt.trimEnd().replace(/[#>$%]$/, '');
    const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    this.#prompt = new RegExp(`^${escaped}(?:\\([^)\\n]*\\))?[#>$%] ?$`);
    this.#options.log('%s: prompt %j', this.#options.label, prompt.trimEnd());
  }

  /** Runs `command`; commands from concurrent callers run one after another. */
  run(command: string, options: ExecuteOptions = {}): Promise<string> {
    const result = this.#queue.then(() => this.#run(command, options));
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Closes the stream. */
  close(): void {
    this.#closed ??= new FileServerError(
      'ERR_DEVICE_CONNECTION',
      `The CLI session to ${this.#options.label} was closed`,
    );
    this.#stream.destroy();
    this.#wake?.();
  }

  async #run(command: string, options: ExecuteOptions): Promise<string> {
    if (this.#closed) throw this.#closed;
    if (!this.#prompt) throw new FileServerError('ERR_INVALID_STATE', 'The CLI session has not started');
    const { label, log } = this.#options;
    const secrets = options.secrets ?? [];
    const shown = hideSecrets(command, secrets);
    log('%s: run %j', label, shown);
    this.#buffer = '';
    const state = { from: 0, counts: new Map<DialogStep, number>(), rounds: 0 };
    this.#stream.write(`${command}\n`);
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    try {
      const output = await this.#until(
        () => this.#progress(options.dialog ?? [], state, secrets, shown),
        timeoutMs,
        options.signal,
        `the prompt after ${JSON.stringify(shown)}`,
      );
      return hideSecrets(output, secrets);
    } catch (error) {
      const seen = hideSecrets(this.#body(), secrets);
      if (error instanceof FileServerError && error.code === 'ERR_DEVICE_COMMAND_FAILED') {
        await this.#interrupt();
        throw error;
      }
      const closed = this.#closedError();
      if (closed && error === closed) {
        throw new FileServerError(
          'ERR_DEVICE_CONNECTION',
          `${closed.message} while running ${JSON.stringify(shown)}`,
          {
            cause: closed,
            details: { device: label, command: shown, output: seen },
          },
        );
      }
      await this.#interrupt();
      if (error instanceof FileServerError && error.code === 'ERR_DEVICE_TIMEOUT') {
        throw new FileServerError(
          'ERR_DEVICE_TIMEOUT',
          `${label}: ${JSON.stringify(shown)} did not finish within ${timeoutMs} ms`,
          {
            details: { device: label, command: shown, output: seen, timeoutMs },
          },
        );
      }
      throw error;
    }
  }

  /** Read through a method: TypeScript keeps `#closed` narrowed to undefined inside #run. */
  #closedError(): Error | undefined {
    return this.#closed;
  }

  /** Output after the echoed command line. */
  #body(): string {
    const eol = this.#buffer.indexOf('\n');
    return eol < 0 ? '' : this.#buffer.slice(eol + 1);
  }

  /** Answers prompts that appeared; returns the output once the device prompt is back. */
  #progress(
    dialog: Dialog,
    state: { from: number; counts: Map<DialogStep, number>; rounds: number },
    secrets: readonly string[],
    shown: string,
  ): string | undefined {
    const body = this.#body();
    for (;;) {
      const hit = firstMatch(dialog, body.slice(state.from));
      if (!hit) break;
      const { step, match } = hit;
      const count = (state.counts.get(step) ?? 0) + 1;
      state.counts.set(step, count);
      state.rounds++;
      const name = step.name ?? step.pattern.source;
      if (count > (step.max ?? DEFAULT_MAX_ANSWERS) || state.rounds > MAX_DIALOG_ROUNDS) {
        throw new FileServerError(
          'ERR_DEVICE_COMMAND_FAILED',
          `${this.#options.label}: the prompt "${name}" came back ${count} times while running ${JSON.stringify(shown)}${step.secret ? ' (credentials refused?)' : ''}`,
          {
            details: {
              device: this.#options.label,
              command: shown,
              output: hideSecrets(body, secrets),
              reason: step.secret ? 'credentials-refused' : 'prompt-repeated',
              prompt: name,
            },
          },
        );
      }
      const answer = typeof step.answer === 'function' ? step.answer(match) : step.answer;
      this.#options.log('%s: answer %s with %j', this.#options.label, name, step.secret ? '***' : answer);
      this.#stream.write(step.newline === false ? answer : `${answer}\n`);
      state.from += match.index + match[0].length;
    }
    const lastBreak = body.lastIndexOf('\n');
    const tail = body.slice(lastBreak + 1);
    if (lastBreak + 1 < state.from || !this.#prompt!.test(tail)) return undefined;
    return body.slice(0, Math.max(lastBreak, 0)).replace(/^\n+/, '').trimEnd();
  }

  /** The last line when it looks like a prompt and nothing arrived for a moment. */
  #settledPrompt(pattern: RegExp): string | undefined {
    const tail = this.#buffer.slice(this.#buffer.lastIndexOf('\n') + 1);
    return pattern.test(tail) && this.#quietSince(PROMPT_SETTLE_MS) ? tail : undefined;
  }

  #lastData = 0;
  #quietTimer: NodeJS.Timeout | undefined;

  #quietSince(ms: number): boolean {
    const quiet = performance.now() - this.#lastData >= ms;
    if (!quiet && !this.#quietTimer) {
      this.#quietTimer = setTimeout(() => {
        this.#quietTimer = undefined;
        this.#wake?.();
      }, ms);
    }
    return quiet;
  }

  /** Ctrl-C, then a short wait for the prompt; a session that does not come back is closed. */
  async #interrupt(): Promise<void> {
    if (this.#closed) return;
    this.#buffer = '';
    this.#stream.write('\x03');
    try {
      await this.#until(
        () => {
          const tail = this.#buffer.slice(this.#buffer.lastIndexOf('\n') + 1);
          return this.#prompt!.test(tail) ? true : undefined;
        },
        INTERRUPT_WAIT_MS,
        undefined,
        'the prompt after Ctrl-C',
      );
    } catch {
      this.#options.log('%s: no prompt after Ctrl-C; closing the session', this.#options.label);
      this.close();
    }
  }

  #receive(chunk: Buffer): void {
    this.#lastData = performance.now();
    const received = this.#carry + this.#decoder.write(chunk);
    const cut = UNFINISHED.exec(received);
    const complete = cut ? received.slice(0, cut.index) : received;
    this.#carry = cut ? cut[0] : '';
    // A CR that only returns to the start of an empty line adds nothing; others start a new line.
    const text = complete.replace(ESCAPES, '').replace(/\r+\n/g, '\n').replace(/\n\r+/g, '\n');
    this.#buffer += (this.#buffer.endsWith('\n') ? text.replace(/^\r+/, '') : text)
      .replace(/\r/g, '\n')
      .replace(CONTROLS, '');
    this.#wake?.();
  }

  /** Re-evaluates `check` on every arrival until it gives a value, the time runs out or the signal aborts. */
  #until<T>(check: Check<T>, timeoutMs: number, signal: AbortSignal | undefined, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        this.#wake = undefined;
        clearTimeout(timer);
        clearTimeout(this.#quietTimer);
        this.#quietTimer = undefined;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => finish(() => reject(signal!.reason));
      const evaluate = () => {
        try {
          const value = check();
          if (value !== undefined) finish(() => resolve(value));
          else if (this.#closed) finish(() => reject(this.#closed));
        } catch (error) {
          finish(() => reject(error));
        }
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new FileServerError(
                'ERR_DEVICE_TIMEOUT',
                `${this.#options.label}: no ${what} within ${timeoutMs} ms`,
                {
                  details: { device: this.#options.label, timeoutMs },
                },
              ),
            ),
          ),
        timeoutMs,
      );
      this.#wake = evaluate;
      evaluate();
    });
  }
}

function firstMatch(dialog: Dialog, text: string): { step: DialogStep; match: RegExpExecArray } | undefined {
  let best: { step: DialogStep; match: RegExpExecArray } | undefined;
  for (const step of dialog) {
    const pattern =
      step.pattern.global || step.pattern.sticky
        ? new RegExp(step.pattern.source, step.pattern.flags.replace(/[gy]/g, ''))
        : step.pattern;
    const match = pattern.exec(text);
    if (match && (!best || match.index < best.match.index)) best = { step, match };
  }
  return best;
}
