/**
 * Wire-level limits shared by both peers. Defaults are listed in SECURITY.md; every one is an option.
 */
import { checkInteger } from './option-checks.js';

/** DEFAULT_MAX_FRAME_SIZE is the largest frame payload accepted by default: 8 MiB (wire-v1). */
export const DEFAULT_MAX_FRAME_SIZE = 8 * 1024 * 1024;
/** DEFAULT_MAX_DEPTH is the deepest nesting of arrays and maps accepted in one frame by default. */
export const DEFAULT_MAX_DEPTH = 32;
/** DEFAULT_MAX_ITEMS_PER_FRAME is the most MessagePack values accepted in one frame by default: 262144. */
export const DEFAULT_MAX_ITEMS_PER_FRAME = 262_144;
/** MAX_UINT32 is the largest frame length and request id wire-v1 allows. */
export const MAX_UINT32 = 0xffff_ffff;

/** DecodeLimits bound what one incoming frame may cost to decode. */
export interface DecodeLimits {
  /**
   * Largest frame payload accepted, in bytes. A peer that announces more is sent goaway RESOURCE_EXHAUSTED and
   * disconnected, before any buffer of that size exists. Default 8 MiB (8388608). Range 1 … 4294967295.
   */
  maxFrameSize: number;
  /**
   * Deepest nesting of arrays and maps in one frame, counting the message array itself. Deeper input is a
   * protocol violation, found by a scan before the MessagePack decoder runs. Default 32. Range 2 … 1000.
   */
  maxDepth: number;
  /**
   * Most MessagePack values (every array, map, key and scalar) in one frame. More is goaway RESOURCE_EXHAUSTED:
   * this bounds the heap a frame can decode into (an 8 MiB frame of empty maps would be 512 MiB). Default 262144.
   * Range 1 … 4294967295.
   */
  maxItemsPerFrame: number;
}

/** DEFAULT_DECODE_LIMITS holds the default of every DecodeLimits field. */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxDepth: DEFAULT_MAX_DEPTH,
  maxItemsPerFrame: DEFAULT_MAX_ITEMS_PER_FRAME,
});

/**
 * resolveDecodeLimits fills DecodeLimits from user options and validates them.
 */
export function resolveDecodeLimits(options: Partial<DecodeLimits> = {}): DecodeLimits {
  const merged = { ...DEFAULT_DECODE_LIMITS, ...definedOnly(options) };
  return {
    maxFrameSize: checkInteger('maxFrameSize', merged.maxFrameSize, 1, MAX_UINT32),
    maxDepth: checkInteger('maxDepth', merged.maxDepth, 2, 1000),
    maxItemsPerFrame: checkInteger('maxItemsPerFrame', merged.maxItemsPerFrame, 1, MAX_UINT32),
  };
}

/** definedOnly drops keys whose value is undefined, so `{ x: undefined }` keeps the default of x. */
export function definedOnly<T extends object>(options: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(options) as (keyof T)[]) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}
