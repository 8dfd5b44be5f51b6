import { expect } from 'chai';
import { CallTable } from '../dist/call-table.js';

interface Entry {
  id: number;
  name: string;
}

function entry(id: number): Entry {
  return { id, name: `call ${id}` };
}

describe('CallTable', () => {
  it('finds a call by its id, and only by that id', () => {
    const table = new CallTable<Entry>();
    const first = entry(1);
    table.add(first);
    expect(table.get(1)).to.equal(first);
    expect(table.get(17)).to.equal(undefined);
    expect(table.get(2)).to.equal(undefined);
    expect(table.size).to.equal(1);
  });

  it('reports a slot taken by another id, so the allocator skips that id rather than overwrite a waiting call', () => {
    const table = new CallTable<Entry>();
    table.add(entry(1));
    const capacity = 16;
    expect(table.slotFree(1 + capacity)).to.equal(false);
    expect(table.slotFree(2)).to.equal(true);
    expect(table.delete(1 + capacity)).to.equal(false);
    expect(table.get(1)?.id).to.equal(1);
  });

  it('keeps every call across growth and empties slots on delete', () => {
    const table = new CallTable<Entry>();
    for (let id = 1; id <= 1000; id++) table.add(entry(id));
    expect(table.size).to.equal(1000);
    for (let id = 1; id <= 1000; id++) expect(table.get(id)?.id).to.equal(id);
    for (let id = 1; id <= 1000; id += 2) expect(table.delete(id)).to.equal(true);
    expect(table.delete(1)).to.equal(false);
    expect(table.size).to.equal(500);
    expect(table.get(999)).to.equal(undefined);
    expect(table.get(1000)?.id).to.equal(1000);
  });

  it('keeps a long-lived call while later ids skip its slot, as a stream open for hours would', () => {
    const table = new CallTable<Entry>();
    const stream = entry(5);
    table.add(stream);
    let id = 6;
    for (let round = 0; round < 5000; round++) {
      while (!table.slotFree(id)) id++;
      table.add(entry(id));
      expect(table.delete(id)).to.equal(true);
      id++;
    }
    expect(table.get(5)).to.equal(stream);
    expect(table.size).to.equal(1);
    expect(table.entries()).to.deep.equal([stream]);
  });

  it('hands every call back in the order they were sent, across the wrap of ids at 2^32', () => {
    const table = new CallTable<Entry>();
    const ids = [0xffff_fffd, 0xffff_fffe, 0xffff_ffff, 1, 2];
    for (const id of ids) table.add(entry(id));
    expect(table.entries().map((each) => each.id)).to.deep.equal(ids);
    expect(table.takeAll().map((each) => each.id)).to.deep.equal(ids);
    expect(table.size).to.equal(0);
    expect(table.get(1)).to.equal(undefined);
    expect(table.slotFree(1)).to.equal(true);
  });
});
