import { FileServerError } from '../errors.js';

/**
 * Checks one backend's option object (`ftp: {...}`, `ssh: {...}`): an unknown key or a value of
 * the wrong type is ERR_INVALID_OPTIONS naming the option as the user wrote it, e.g. `ftp.tls`.
 */
export function optionReader<T extends object>(
  prefix: string,
  label: string,
  known: readonly (keyof T & string)[],
  raw: Readonly<Record<string, unknown>>,
) {
  const fail = (message: string): never => {
    throw new FileServerError('ERR_INVALID_OPTIONS', `${prefix}.${message}`);
  };
  for (const key of Object.keys(raw)) {
    if (!(known as readonly string[]).includes(key)) fail(`${key} is not an ${label} option`);
  }
  const options = raw as T;
  return {
    options,
    fail,
    integer(key: keyof T & string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
      const value = options[key] ?? fallback;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        fail(`${key} must be an integer from ${min} to ${max}`);
      }
      return value as number;
    },
    flag(key: keyof T & string, fallback: boolean): boolean {
      const value = options[key] ?? fallback;
      if (typeof value !== 'boolean') fail(`${key} must be true or false`);
      return value as boolean;
    },
  };
}
