/**
 * Is the server still there, and still sending whole frames? Two watches on one tunnel, each one timer:
 * - keepalive: after keepaliveInterval without a complete frame from the server, ping; when keepaliveTimeout
 *   passes after the ping with no complete frame back, the server is gone (a half-open TCP connection otherwise
 *   looks alive until the OS gives up, minutes later);
 * - frameTimeout: a frame begun must end within frameTimeout, or the server is trickling bytes of a frame that
 *   never ends (bytes of an unfinished frame never count as life);
 * - unresponsiveTimeout: while calls wait here, silence (no frame and no byte) for half of it brings a ping, and
 *   silence for all of it
 *   while another tunnel answered meanwhile means a frozen replica (SIGSTOP, a stalled event loop) that TCP
 *   still acknowledges: it is failed in a second or two rather than after the 50 s of keepalive.
 */
import { MAX_UINT32 } from '@tunnelrpc/protocol/internal';

/** LivenessHost is what the watches ask of their tunnel. @internal */
export interface LivenessHost {
  /** Sends a ping carrying `data`. */
  ping(data: number): void;
  /** The server answered nothing within keepaliveTimeout of a ping. */
  silent(keepaliveTimeout: number): void;
  /** A frame from the server took longer than frameTimeout. */
  frameTooSlow(frameTimeout: number): void;
  /** True while the tunnel has stopped reading the socket itself: time spent so does not count against the server. */
  readonly readingPaused: boolean;
  /** Runs a timer callback so that a throw costs the tunnel, not the process. */
  guard(run: () => void): void;
  /** Calls waiting for their answers here. */
  readonly waiting: number;
  /** Whether another tunnel of the client received a frame after `since` (Date.now() ms). */
  othersAnsweredSince(since: number): boolean;
  /** Nothing came for `silentFor` ms with calls waiting, while others answered. */
  unresponsive(silentFor: number): void;
}

/** LivenessOptions are the intervals the watches follow (ms; 0 turns one off). @internal */
export interface LivenessOptions {
  readonly keepaliveInterval: number;
  readonly keepaliveTimeout: number;
  readonly frameTimeout: number;
  readonly unresponsiveTimeout: number;
}

/** Liveness keeps the keepalive and frame-completion watches of one tunnel. @internal */
export class Liveness {
  readonly #host: LivenessHost;
  readonly #options: LivenessOptions;
  #lastReceived = Date.now();
  #pingSentAt = 0;
  #keepalive: NodeJS.Timeout | undefined;
  #frameStartedAt = 0;
  #frameTimer: NodeJS.Timeout | undefined;
  #unresponsiveTimer: NodeJS.Timeout | undefined;
  // Chunks read so far, and when the unresponsive watch last saw the count move: bytes of a large frame still
  // arriving are not silence, though they complete no frame (no clock read per chunk for it).
  #chunks = 0;
  #chunksSeen = 0;
  #bytesSeenAt = 0;
  #stopped = false;

  constructor(host: LivenessHost, options: LivenessOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** start arms the keepalive watch. */
  start(): void {
    if (this.#options.keepaliveInterval > 0) this.#scheduleKeepalive(this.#options.keepaliveInterval);
  }

  /** lastReceivedAt is when (Date.now() ms) the last complete frame came. */
  get lastReceivedAt(): number {
    return this.#lastReceived;
  }

  /** callSent arms the unresponsive watch if it is not armed: one check per call, the timer re-arms itself. */
  callSent(): void {
    if (this.#unresponsiveTimer === undefined && this.#options.unresponsiveTimeout > 0 && !this.#stopped) this.#scheduleUnresponsive();
  }

  /** frameReceived records a complete frame from the server: the only thing that counts as life. */
  frameReceived(now = Date.now()): void {
    this.#lastReceived = now;
    this.#frameStartedAt = 0;
  }

  /** bytesRead tells, after a chunk was decoded, whether a frame is left unfinished; it starts the frame watch. */
  bytesRead(inFrame: boolean): void {
    this.#chunks++;
    if (!inFrame) {
      this.#frameStartedAt = 0;
    } else if (this.#frameStartedAt === 0) {
      this.#frameStartedAt = Date.now();
      if (this.#options.frameTimeout > 0 && this.#frameTimer === undefined) this.#scheduleFrameCheck(this.#options.frameTimeout);
    }
  }

  /** stop clears both timers for good. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#keepalive);
    clearTimeout(this.#frameTimer);
    clearTimeout(this.#unresponsiveTimer);
  }

  // Looks every half unresponsiveTimeout while calls wait; disarms itself once none do (callSent re-arms it).
  #scheduleUnresponsive(): void {
    const half = Math.max(1, Math.floor(this.#options.unresponsiveTimeout / 2));
    this.#unresponsiveTimer = setTimeout(() => this.#host.guard(() => {
      this.#unresponsiveTimer = undefined;
      if (this.#stopped || this.#host.waiting === 0) return;
      const now = Date.now();
      if (this.#chunks !== this.#chunksSeen) {
        this.#chunksSeen = this.#chunks;
        this.#bytesSeenAt = now;
      }
      const heardAt = Math.max(this.#lastReceived, this.#bytesSeenAt);
      const silentFor = now - heardAt;
      const { unresponsiveTimeout } = this.#options;
      // A tunnel we stopped reading ourselves is not silent on the server's account.
      if (silentFor >= unresponsiveTimeout && !this.#host.readingPaused && this.#pingSentAt > heardAt && this.#host.othersAnsweredSince(heardAt)) {
        this.#host.unresponsive(silentFor);
        return;
      }
      // A busy server answers a ping between its calls; a frozen one answers nothing.
      if (silentFor >= half && !(this.#pingSentAt > heardAt)) {
        this.#pingSentAt = now;
        this.#host.ping(now % MAX_UINT32);
      }
      this.#scheduleUnresponsive();
    }), half);
    this.#unresponsiveTimer.unref();
  }

  // One timer per tunnel, armed when a frame starts and re-armed for the rest of the time while one is incomplete.
  #scheduleFrameCheck(delay: number): void {
    this.#frameTimer = setTimeout(() => this.#host.guard(() => {
      this.#frameTimer = undefined;
      if (this.#stopped || this.#frameStartedAt === 0) return;
      const { frameTimeout } = this.#options;
      // Time spent with reading stopped on our side is ours, not the server's: start the count again.
      if (this.#host.readingPaused) this.#frameStartedAt = Date.now();
      const waited = Date.now() - this.#frameStartedAt;
      if (waited >= frameTimeout) {
        this.#host.frameTooSlow(frameTimeout);
        return;
      }
      this.#scheduleFrameCheck(frameTimeout - waited);
    }), delay);
    this.#frameTimer.unref();
  }

  #scheduleKeepalive(delay: number): void {
    this.#keepalive = setTimeout(() => this.#host.guard(() => this.#keepaliveTick()), delay);
    this.#keepalive.unref();
  }

  #keepaliveTick(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const { keepaliveInterval, keepaliveTimeout } = this.#options;
    if (this.#pingSentAt > 0 && this.#lastReceived < this.#pingSentAt) {
      const waited = now - this.#pingSentAt;
      if (waited >= keepaliveTimeout) {
        this.#host.silent(keepaliveTimeout);
        return;
      }
      this.#scheduleKeepalive(Math.min(keepaliveTimeout - waited, keepaliveInterval));
      return;
    }
    this.#pingSentAt = 0;
    const silentFor = now - this.#lastReceived;
    if (silentFor < keepaliveInterval) {
      this.#scheduleKeepalive(keepaliveInterval - silentFor);
      return;
    }
    this.#pingSentAt = now;
    this.#host.ping(now % MAX_UINT32);
    // Look again after the shorter of the two: a pong that comes back early lets the next ping go on time.
    this.#scheduleKeepalive(Math.min(keepaliveTimeout, keepaliveInterval));
  }
}
