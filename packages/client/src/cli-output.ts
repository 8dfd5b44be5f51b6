/**
 * What the CLI prints. Every piece of text a server chose (an error message, a goaway, a refusal body, a method
 * name) may carry ESC sequences or newlines that would repaint or forge lines on the user's terminal, so it is
 * escaped before it is written. Standard output may close under us (`| head -2`): that stops the CLI quietly.
 */
import { RpcError, escapePeerText } from '@tunnelrpc/protocol';
import type { OutputFormat } from './cli-args.js';

// An error message quotes a refusal body (up to 1 KiB) besides its own words.
const MAX_MESSAGE_SHOWN = 4000;

// Valid in JSON strings but harmful on a terminal: DEL, C1 controls, line separators, bidi controls. JSON.stringify
// already escapes C0 (ESC, CR, LF); these may appear only inside strings, so an escape keeps the JSON valid.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * toJson is `value` as one line of JSON, safe to print: bytes become base64 strings and bigints decimal strings
 * (JSON has neither). @internal
 */
export function toJson(value: unknown, indent?: number): string {
  const text =
    JSON.stringify(
      value,
      (_key, item: unknown) => {
        if (typeof item === 'bigint') return item.toString();
        if (item instanceof Uint8Array) return Buffer.from(item).toString('base64');
        if (typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'Buffer' && Array.isArray((item as { data?: unknown }).data)) {
          return Buffer.from((item as { data: number[] }).data).toString('base64');
        }
        return item;
      },
      indent,
    ) ?? 'null';
  return text.replace(JSON_UNSAFE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** shownText is peer text as one printable line. @internal */
export function shownText(text: string): string {
  return escapePeerText(text, MAX_MESSAGE_SHOWN);
}

/**
 * Output writes to standard output until its reader goes away (EPIPE), then drops writes and aborts `signal`, so
 * the running call is cancelled and the CLI ends without a stack trace. @internal
 */
export class Output {
  readonly #controller = new AbortController();
  #closed = false;

  constructor() {
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      this.#closed = true;
      // EPIPE is the reader leaving; anything else on stdout we cannot report either (stdout is where we report).
      this.#controller.abort(new RpcError('CANCELLED', `standard output closed (${error.code ?? error.message})`));
    });
    // A closed stderr must not crash us either: there is nowhere left to say anything.
    process.stderr.on('error', () => {});
  }

  /** signal aborts once standard output is gone. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** closed is true once standard output is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** line writes `text` and a newline unless standard output is gone. */
  line(text: string): void {
    if (!this.#closed) process.stdout.write(`${text}\n`);
  }

  /** error prints an RPC error: `CODE: message` and `data: JSON`, or one JSON object with --format json. */
  error(error: RpcError, format: OutputFormat): void {
    if (format === 'json') {
      process.stderr.write(`${toJson({ code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) })}\n`);
      return;
    }
    const data = hasDetail(error.data) ? `data: ${toJson(error.data)}\n` : '';
    process.stderr.write(`${error.code}: ${shownText(error.message)}\n${data}`);
  }

  /** failure prints a dial or handshake failure: one sentence ending in [CODE]. */
  failure(error: RpcError): void {
    process.stderr.write(`tunnelrpc: ${shownText(error.message)} [${error.code}]\n`);
  }

  /** note prints a -v line on stderr. */
  note(text: string): void {
    process.stderr.write(`* ${text}\n`);
  }
}

// The client marks every error it makes with { mayHaveRun }; alone, that is bookkeeping, not the server's detail.
function hasDetail(data: unknown): boolean {
  if (data === undefined) return false;
  if (typeof data !== 'object' || data === null) return true;
  const keys = Object.keys(data);
  return !(keys.length === 1 && keys[0] === 'mayHaveRun');
}
