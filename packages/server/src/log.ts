/**
 * What the server reports: leveled entries with fields, behind a rate limit. Most entries are caused by peers (a
 * dropped notification, a handler that crashed on their input), so a peer must not be able to make the server
 * write more log than it sends: past the rate, entries are counted and summed up in one line.
 */
import { type ErrorCode } from '@tunnelrpc/protocol';
import { checkFunction, checkInteger, MAX_UINT32 } from '@tunnelrpc/protocol/internal';

/** LogLevel orders entries: debug (expected events), info, warn (a peer misbehaved), error (a bug to look at). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** LogEntry is one thing the server reports. Text that came from a peer is escaped and bounded already. */
export interface LogEntry {
  readonly level: LogLevel;
  /** One line saying what happened. */
  readonly message: string;
  /** Wire name of the method, when the entry is about a call. */
  readonly method?: string;
  /** The error code a caller got, when there was one. */
  readonly code?: ErrorCode;
  /** Remote address and port of the tunnel, `"10.0.0.7:51234"`. */
  readonly peer?: string;
  /** What was thrown, for a handler crash or an unexpected error (never sent to a peer). */
  readonly error?: unknown;
}

/** ServerLogger receives the server's log entries. It runs synchronously; a logger that throws is ignored. */
export type ServerLogger = (entry: LogEntry) => void;

/** defaultLogger writes warn and error entries to stderr, one line each plus the error's stack. */
export function defaultLogger(entry: LogEntry): void {
  if (entry.level === 'debug' || entry.level === 'info') return;
  const fields = [entry.method && `method=${entry.method}`, entry.code && `code=${entry.code}`, entry.peer && `peer=${entry.peer}`].filter(Boolean).join(' ');
  const line = `tunnelrpc ${entry.level}: ${entry.message}${fields === '' ? '' : ` (${fields})`}`;
  if (entry.error === undefined) console.error(line);
  else console.error(line, entry.error);
}

/** RateLimitedLog passes entries to a logger at up to `perSecond` a second (bursts of as many), counting the rest. @internal */
export class RateLimitedLog {
  readonly #logger: ServerLogger;
  readonly #perSecond: number;
  #tokens: number;
  #refilledAt: number;
  #suppressed = 0;

  constructor(logger: ServerLogger, perSecond: number, now = Date.now()) {
    this.#logger = logger;
    this.#perSecond = perSecond;
    this.#tokens = perSecond;
    this.#refilledAt = now;
  }

  /** log passes `entry` on when the rate allows; the first entry after a quiet spell reports how many were dropped. */
  log(entry: LogEntry, now = Date.now()): void {
    this.#tokens = Math.min(this.#perSecond, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#perSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) {
      this.#suppressed++;
      return;
    }
    this.#tokens--;
    if (this.#suppressed > 0) {
      const dropped = this.#suppressed;
      this.#suppressed = 0;
      this.#emit({ level: 'warn', message: `${dropped} log entries were dropped: more than maxLogEntriesPerSecond ${this.#perSecond}` });
    }
    this.#emit(entry);
  }

  #emit(entry: LogEntry): void {
    try {
      this.#logger(entry);
    } catch {
      // A logger that throws must not take a connection down.
    }
  }
}

/**
 * createRateLimitedLogger wraps `logger` in the limit the server puts on its own log: up to `perSecond` entries a
 * second (bursts of as many), the rest counted and reported in one warn line once entries pass again. Use it for
 * what listeners or handlers log about peers (every refused CONNECT is an event), so peers cannot flood that log
 * either. `perSecond`: 1 … 4294967295, default 100 (as maxLogEntriesPerSecond).
 */
export function createRateLimitedLogger(logger: ServerLogger, perSecond = 100): ServerLogger {
  const limited = new RateLimitedLog(checkFunction<ServerLogger>('logger', logger, '(entry) => void'), checkInteger('perSecond', perSecond, 1, MAX_UINT32));
  return (entry) => limited.log(entry);
}
