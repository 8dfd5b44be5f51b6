/**
 * CallTable: a tunnel's calls waiting for answers, in an array indexed by id. A Map did the same job, but V8
 * rebuilds a Map's table as entries come and go, and a rebuilt table that a scavenge had promoted keeps pointing
 * at the calls it held: every scavenge then kept them, they were promoted in turn, and at C=256 nearly every call
 * record of the client reached the old generation (a sampling heap profile counted 143 B a call promoted). Here
 * a slot is emptied when its call leaves, and the array is rebuilt only when the calls in flight outgrow it.
 */

/** TableEntry is what the table needs of a call: its id on this tunnel. */
export interface TableEntry {
  readonly id: number;
}

// Grows at half full, so an id's slot is usually free and the id allocator rarely skips one.
const INITIAL_CAPACITY = 16;
const NO_SLOTS: never[] = [];

/** CallTable maps ids to calls; an id may be used only when its slot is free (see slotFree). @internal */
export class CallTable<T extends TableEntry> {
  // The shared empty array until the first call: an idle tunnel holds no array of its own.
  #slots: (T | undefined)[] = NO_SLOTS;
  #mask = -1;
  #size = 0;

  /** size counts the calls in the table. */
  get size(): number {
    return this.#size;
  }

  /** get returns the call sent as `id`, if it is still waiting. */
  get(id: number): T | undefined {
    const entry = this.#slots[id & this.#mask];
    return entry !== undefined && entry.id === id ? entry : undefined;
  }

  /** slotFree tells whether a call could be added as `id` now; ids whose slot is taken are skipped, not waited for. */
  slotFree(id: number): boolean {
    return this.#slots[id & this.#mask] === undefined;
  }

  /** add stores `entry` under its id, whose slot must be free. */
  add(entry: T): void {
    if ((this.#size + 1) * 2 > this.#slots.length) this.#grow();
    this.#slots[entry.id & this.#mask] = entry;
    this.#size++;
  }

  /** delete removes the call sent as `id`; false if it is not waiting. */
  delete(id: number): boolean {
    const slot = id & this.#mask;
    const entry = this.#slots[slot];
    if (entry === undefined || entry.id !== id) return false;
    this.#slots[slot] = undefined;
    this.#size--;
    return true;
  }

  /** takeAll empties the table and returns its calls in the order they were sent (ids increase, then wrap). */
  takeAll(): T[] {
    const all = this.entries();
    this.#slots = NO_SLOTS;
    this.#mask = -1;
    this.#size = 0;
    return all;
  }

  /** entries returns the calls in the order they were sent, without removing them. */
  entries(): T[] {
    const all: T[] = [];
    for (const entry of this.#slots) if (entry !== undefined) all.push(entry);
    return sortBySending(all);
  }

  // Ids that had slots of their own under the smaller mask keep them under the larger one, which only adds a bit.
  #grow(): void {
    const capacity = Math.max(INITIAL_CAPACITY, this.#slots.length * 2);
    const slots = new Array<T | undefined>(capacity).fill(undefined);
    const mask = capacity - 1;
    for (const entry of this.#slots) if (entry !== undefined) slots[entry.id & mask] = entry;
    this.#slots = slots;
    this.#mask = mask;
  }
}

// Ids increase from 1 and wrap at 2^32 back to 1: an id far below the largest one was sent after the wrap.
function sortBySending<T extends TableEntry>(entries: T[]): T[] {
  if (entries.length < 2) return entries;
  let max = 0;
  for (const entry of entries) if (entry.id > max) max = entry.id;
  const wrapped = (id: number): number => (max - id > 0x8000_0000 ? id + 0x1_0000_0000 : id);
  return entries.sort((a, b) => wrapped(a.id) - wrapped(b.id));
}
