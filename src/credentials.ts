/**
 * Random per-server credentials and constant-time comparison.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { customAlphabet } from 'nanoid';

/** A username and password pair. */
export interface Credentials {
  /** Login name; generated ones are `tb` + 8 lowercase letters or digits. */
  readonly username: string;
  /** Password; generated ones are 22 letters and digits (about 131 random bits), safe unquoted in URLs and CLIs. */
  readonly password: string;
}

// Letters and digits only: safe in URLs, in device prompts and on any CLI without quoting.
const alphanumeric = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const lowercase = '0123456789abcdefghijklmnopqrstuvwxyz';
/** 22 characters of 62: log2(62) × 22 ≈ 131 bits. */
const password = customAlphabet(alphanumeric, 22);
const userSuffix = customAlphabet(lowercase, 8);

/** Fresh random credentials: username `tb` + 8 characters, password of 131 random bits. */
export function generateCredentials(): Credentials {
  return { username: `tb${userSuffix()}`, password: password() };
}

/** Compares two strings in time independent of where they differ. @internal */
export function safeEqual(actual: string, expected: string): boolean {
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  // Compare against itself when lengths differ so the time does not reveal the length match.
  return timingSafeEqual(a, a.length === b.length ? b : a) && a.length === b.length;
}

/** True when `given` matches `expected` (both username and password). @internal */
export function credentialsMatch(given: Partial<Credentials>, expected: Credentials): boolean {
  const user = safeEqual(given.username ?? '', expected.username);
  const pass = safeEqual(given.password ?? '', expected.password);
  return user && pass;
}
