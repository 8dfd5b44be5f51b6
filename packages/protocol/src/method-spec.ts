/**
 * The shape of one method in a contract: a leaf module (types only), so that contracts, errors and the typed error
 * checks can all name it without importing each other.
 */
import type { z } from 'zod';
import type { ErrorCode } from './error-codes.js';

/** DeclaredErrors maps the error codes a method declares to the zod schema of each one's data. */
export type DeclaredErrors = { readonly [C in ErrorCode]?: z.ZodType };

/** MethodSpec describes one method: the zod schemas of its params and result, and how it may be invoked. */
export interface MethodSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  /** Schema of the params. The server parses every request with it; failures are INVALID_ARGUMENT. */
  readonly input: I;
  /** Schema of the result. The typed client parses every result with it. */
  readonly output: O;
  /**
   * The method is safe to run twice (a read, or a write keyed by the caller). Clients may retry it after a
   * connection loss even when it may already have run. Default false.
   */
  readonly idempotent?: boolean;
  /** The typed client sends this method as a notification (no answer, no result). Default false. */
  readonly notification?: boolean;
  /**
   * How the method is called (PROTOCOL.md 12): 'unary' (params in, result out; the default), 'serverStream' (the
   * server sends serverMessage values, then the result), 'clientStream' (the client sends clientMessage values,
   * then the server answers the result) or 'bidiStream' (both at once).
   */
  readonly kind?: MethodKind;
  /** Schema of each stream message the client sends (clientStream, bidiStream); checked by the server on receipt. */
  readonly clientMessage?: z.ZodType;
  /** Schema of each stream message the server sends (serverStream, bidiStream); checked by the client on receipt. */
  readonly serverMessage?: z.ZodType;
  /**
   * The longest deadline the server grants this method, in ms, in place of ServerOptions.maxTimeout (5 min by
   * default): a subscription can be declared long-lived while every other method stays bounded. 1 … 2147483647.
   */
  readonly maxTimeout?: number;
  /**
   * The error codes the method fails with on purpose, each with a zod schema of its data:
   * `{ FAILED_PRECONDITION: z.object({ available: z.number() }) }`. The server checks the data a handler throws
   * (data that breaks the schema is sent as INTERNAL); the typed client checks what arrives, and RpcError.is()
   * narrows the data to the declared type. Codes left out stay plain RpcErrors.
   */
  readonly errors?: DeclaredErrors;
}

/** MethodKind names the four ways a method may be called. */
export type MethodKind = 'unary' | 'serverStream' | 'clientStream' | 'bidiStream';
