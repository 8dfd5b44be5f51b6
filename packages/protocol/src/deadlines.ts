/**
 * Deadline timers shared by calls: calls made in the same millisecond with the same timeout share one timer.
 * A closed loop of many calls otherwise pays for a timer per call (creation, list insertion and a clock read),
 * about a twentieth of a small call's cost on the client, and more on a server whose handlers are async. The
 * timer functions are handed in (Node's setTimeout and clearTimeout), so this module itself stays free of timers.
 */

/** TimerFunctions are how Deadlines starts and stops its timers: Node's setTimeout and clearTimeout. */
export interface TimerFunctions {
  set(run: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** DeadlineGroup is one shared timer and the calls waiting on it. @internal */
export interface DeadlineGroup {
  // A member's slot is emptied when it is disarmed, so that a settled call is not kept alive by its group.
  readonly members: (DeadlineMember | undefined)[];
  live: number;
  timer: unknown;
}

/** DeadlineMember is what a group needs of a call. @internal */
export interface DeadlineMember {
  deadlineGroup: DeadlineGroup | undefined;
  /** Its index in the group's members, set by arm(). */
  deadlineSlot: number;
}

/** Deadlines hands out shared timers; `expire` runs for every member still armed when its group fires. @internal */
export class Deadlines<M extends DeadlineMember> {
  readonly #expire: (member: M, timeout: number) => void;
  readonly #timers: TimerFunctions;
  // The group still open for new members: same timeout, same millisecond.
  #open: DeadlineGroup | undefined;
  #openTimeout = -1;
  #openAt = -1;

  constructor(expire: (member: M, timeout: number) => void, timers: TimerFunctions) {
    this.#expire = expire;
    this.#timers = timers;
  }

  /** arm starts `member`'s deadline, `timeout` ms after `now` (Date.now(), read once by the caller). */
  arm(member: M, timeout: number, now: number): void {
    let group = this.#open;
    if (group === undefined || this.#openAt !== now || this.#openTimeout !== timeout || group.timer === undefined) {
      const created: DeadlineGroup = { members: [], live: 0, timer: undefined };
      created.timer = this.#timers.set(() => this.#fire(created, timeout), timeout);
      group = created;
      this.#open = created;
      this.#openAt = now;
      this.#openTimeout = timeout;
    }
    member.deadlineSlot = group.members.push(member) - 1;
    group.live++;
    member.deadlineGroup = group;
  }

  /** disarm stops `member`'s deadline; the shared timer goes when its last member does. */
  disarm(member: M): void {
    const group = member.deadlineGroup;
    if (group === undefined) return;
    member.deadlineGroup = undefined;
    group.members[member.deadlineSlot] = undefined;
    if (--group.live === 0) {
      this.#timers.clear(group.timer);
      group.timer = undefined;
      group.members.length = 0;
    }
  }

  #fire(group: DeadlineGroup, timeout: number): void {
    group.timer = undefined;
    for (const member of group.members) {
      if (member !== undefined && member.deadlineGroup === group) {
        member.deadlineGroup = undefined;
        this.#expire(member as M, timeout);
      }
    }
    group.members.length = 0;
    group.live = 0;
  }
}
