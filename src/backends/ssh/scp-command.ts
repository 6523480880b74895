/**
 * The one command the embedded SSH server runs: `scp [-r] [-p] [-d] [-v] [-q] (-t|-f) [--] path`,
 * the remote half of a legacy (rcp protocol) scp copy. There is no shell: the line is split the
 * way a POSIX shell would split a plain command (quotes and backslashes), and anything a shell
 * would interpret (`;`, `|`, `$`, globs, redirections...) makes the whole command refused.
 * @internal
 * @module
 */

/** A parsed scp command. */
export interface ScpCommand {
  /** `sink` (`-t`): the client uploads to us. `source` (`-f`): the client downloads. */
  readonly mode: 'sink' | 'source';
  /** `-r`: folders are copied recursively. */
  readonly recursive: boolean;
  /** `-p`: modification times and modes are kept. */
  readonly preserve: boolean;
  /** `-d`: the target must be a folder (several files are being uploaded). */
  readonly targetShouldBeDirectory: boolean;
  /** The path as the client gave it (relative to the served root; `~` and `/` mean the root). */
  readonly path: string;
}

const SHELL_SPECIAL = new Set([...';&|<>()$`*?[]{}!#\n']);
const FLAGS = new Set([...'rpdvqtf']);

/** Splits like a POSIX shell; undefined for anything a shell would do more with. */
function split(line: string): string[] | undefined {
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(line)) return undefined;
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '$' || line[j] === '`') return undefined;
        if (line[j] === '\\' && '"\\$`'.includes(line[j + 1] ?? '')) j++;
        word += line[j];
      }
      if (j >= line.length) return undefined;
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= line.length) return undefined;
      word += line[++i];
      inWord = true;
    } else if (SHELL_SPECIAL.has(c) || (c === '~' && inWord)) {
      return undefined;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Parses an exec request; undefined when it is not exactly an scp sink or source command. */
export function parseScpCommand(line: string): ScpCommand | undefined {
  const words = split(line);
  if (words?.[0] !== 'scp') return undefined;
  const flags = new Set<string>();
  let i = 1;
  for (; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (!word.startsWith('-') || word.length < 2) break;
    for (const letter of word.slice(1)) {
      if (!FLAGS.has(letter)) return undefined;
      flags.add(letter);
    }
  }
  const rest = words.slice(i);
  if (rest.length !== 1 || flags.has('t') === flags.has('f')) return undefined;
  return {
    mode: flags.has('t') ? 'sink' : 'source',
    recursive: flags.has('r'),
    preserve: flags.has('p'),
    targetShouldBeDirectory: flags.has('d'),
    path: rest[0] === '' ? '.' : rest[0]!,
  };
}
