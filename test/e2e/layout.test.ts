/**
 * The layout keeps its promises: no import cycle between source modules of any package (a cycle is a sign that a
 * type or a function lives in the wrong file), type-only imports included, and no two test files of the workspace
 * with the same name, and no source file over 400 lines without its reason written at its top.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../helpers/processes.js';

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'dist-test') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** importGraph maps each source file to the files of the same package it imports (relative specifiers). */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
    graph.set(file, deps);
  }
  return graph;
}

/** findCycles returns one path per cycle found, each from a file back to itself. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (state.get(dep) === 'open') cycles.push([...path.slice(path.indexOf(dep)), dep]);
      else if (state.get(dep) === undefined && graph.has(dep)) visit(dep);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (state.get(file) === undefined) visit(file);
  return cycles;
}

/** MAX_LINES is the size past which a source file must say, at its top, why it stays whole. */
const MAX_LINES = 400;


/**
 * lacksSizeReason tells whether `text` is over MAX_LINES lines without a comment at its very top that contains
 * "Over 400 lines:" and the reason after it.
 */
export function lacksSizeReason(text: string): boolean {
  if (text.split('\n').length - (text.endsWith('\n') ? 1 : 0) <= MAX_LINES) return false;
  const top = text.startsWith('/*') ? text.slice(0, text.indexOf('*/') + 2) : (/^(?:\/\/[^\n]*\n)+/.exec(text)?.[0] ?? '');
  return !/Over 400 lines: \S/.test(top);
}

describe('Source layout', () => {
  const packages = readdirSync(join(REPO_ROOT, 'packages'));

  it('finds a cycle when there is one (the check itself works)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(findCycles(graph)).to.deep.equal([['a', 'b', 'c', 'a']]);
  });

  it('names every test file uniquely across the workspace, so a failure names one file', () => {
    const dirs = [...packages.map((name) => join(REPO_ROOT, 'packages', name, 'test')), join(REPO_ROOT, 'test')];
    const seen = new Map<string, string[]>();
    for (const dir of dirs) {
      const files = sourceFiles(dir).filter((file) => file.endsWith('.test.ts'));
      for (const file of files) {
        const name = file.slice(file.lastIndexOf('/') + 1);
        seen.set(name, [...(seen.get(name) ?? []), relative(REPO_ROOT, file)]);
      }
    }
    const collisions = [...seen.values()].filter((paths) => paths.length > 1);
    expect(seen.size, 'the check found test files').to.be.greaterThan(50);
    expect(collisions).to.deep.equal([]);
  });

  it('knows a long file without its reason when it sees one (the check itself works)', () => {
    const body = 'export const x = 1;\n'.repeat(MAX_LINES + 1);
    expect(lacksSizeReason(body)).to.equal(true);
    expect(lacksSizeReason(`/** A thing. */\n${body}`)).to.equal(true);
    expect(lacksSizeReason(`/**\n * A thing.\n *\n * Over 400 lines: one state machine.\n */\n${body}`)).to.equal(false);
    expect(lacksSizeReason(`// Over 400 lines: one table.\n${body}`)).to.equal(false);
    expect(lacksSizeReason(`/** A thing. */\n// Over 400 lines: too late, not at the top.\n${body}`)).to.equal(true);
    expect(lacksSizeReason('export const x = 1;\n'.repeat(MAX_LINES))).to.equal(false);
  });

  it(`keeps every source file to ${MAX_LINES} lines, or states at its top why it stays whole`, () => {
    const long = packages
      .flatMap((name) => sourceFiles(join(REPO_ROOT, 'packages', name, 'src')))
      .map((file) => relative(REPO_ROOT, file))
      .filter((file) => lacksSizeReason(readFileSync(join(REPO_ROOT, file), 'utf8')));
    expect(long, 'split these, or start each with a comment containing "Over 400 lines: <why>"').to.deep.equal([]);
  });

  for (const name of packages) {
    it(`has no import cycle in packages/${name}/src`, () => {
      const files = sourceFiles(join(REPO_ROOT, 'packages', name, 'src'));
      const cycles = findCycles(importGraph(files)).map((cycle) => cycle.map((file) => relative(REPO_ROOT, file)).join(' -> '));
      expect(cycles).to.deep.equal([]);
    });
  }
});
