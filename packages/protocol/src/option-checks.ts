/**
 * The option validators every tunnelrpc constructor uses, one per kind of option: boolean, integer in a range,
 * duration in ms, one of a fixed set, function, list of functions, string. Each throws RpcError INVALID_ARGUMENT
 * whose message names the option, what it must be and what it got (`option reconnect must be true or false; got the
 * string "false"`), with `data: { option, value, expected }`, synchronously at construction. JavaScript callers and
 * options read from JSON or the environment pass anything: a string "false" must not switch a flag on.
 * @internal Shared by the server and client packages; not part of the semantic-versioned API.
 */
import { RpcError } from './errors.js';

/** MAX_TIMER_MS is setTimeout's ceiling (2^31 - 1 ms, about 24.8 days): longer durations fire at once in Node. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * orDefault is `value`, or `fallback` when the option was left out. Unlike `??` it keeps null, so that the check
 * that follows refuses it instead of silently taking the default.
 */
export function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/** describeOptionValue says what a value is, briefly and escaped: `the string "false"`, `1`, `null`, `an array`. */
export function describeOptionValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': {
      const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
      return `the string ${shown}`;
    }
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `the bigint ${String(value)}n`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return 'an object';
  }
}

/** optionError is the one INVALID_ARGUMENT every check below throws. */
export function optionError(name: string, expected: string, value: unknown, hint?: string): RpcError {
  const got = describeOptionValue(value);
  // data.value is the value itself where it is a plain scalar, else its description (never a user's object).
  const shown = typeof value === 'number' || typeof value === 'boolean' || value === null ? value : got;
  return new RpcError('INVALID_ARGUMENT', `option ${name} must be ${expected}; got ${got}${hint === undefined ? '' : `; ${hint}`}`, { option: name, value: shown, expected });
}

/** checkBoolean returns `value` if it is true or false; anything else ('false', 1, null) throws. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw optionError(name, 'true or false', value);
  return value;
}

/** checkInteger returns `value` if it is an integer in [min, max]; anything else throws. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw optionError(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** checkDuration returns `value` if it is a whole number of ms in [min, MAX_TIMER_MS]; anything else throws. */
export function checkDuration(name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw optionError(name, `an integer from ${min} to ${MAX_TIMER_MS} (ms)`, value);
  }
  return value;
}

/** checkOneOf returns `value` if it is one of `allowed`; anything else throws, listing them. */
export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw optionError(name, allowed.map((each) => `'${each}'`).join(' or '), value);
  }
  return value as T;
}

/** checkFunction returns `value` if it is a function; anything else throws, showing the expected `signature`. */
export function checkFunction<F>(name: string, value: unknown, signature: string): F {
  if (typeof value !== 'function') throw optionError(name, `a function ${signature}`, value);
  return value as F;
}

/**
 * checkFunctionList returns a frozen copy of `value` if it is an array of functions; undefined gives []. `what`
 * names the items for the message: `functions, (event) => void`.
 */
export function checkFunctionList<F>(name: string, value: unknown, what: string): readonly F[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw optionError(name, `an array of ${what}`, value);
  const bad = value.findIndex((each) => typeof each !== 'function');
  if (bad !== -1) throw optionError(name, `an array of ${what}`, value, `item ${bad} is ${describeOptionValue(value[bad])}`);
  return Object.freeze([...value] as F[]);
}

/** checkString returns `value` if it is a string that passes `valid`; anything else throws with `expected`. */
export function checkString(name: string, value: unknown, expected: string, valid: (text: string) => boolean = () => true): string {
  if (typeof value !== 'string' || !valid(value)) throw optionError(name, expected, value);
  return value;
}
