/**
 * README "Deploying": every recipe block is the config a deploy test runs (test/deploy reads it with readmeRecipe),
 * so a recipe no test reads, or a test that reads a recipe the README lost, fails here even without the daemons.
 */
import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readmeRecipe } from '../helpers/boxes.js';
import { REPO_ROOT } from '../helpers/processes.js';

describe('README deploy recipes', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const names = [...readme.matchAll(/<!-- recipe: ([a-z0-9-]+) -->/g)].map((match) => match[1]!);
  const deployDir = join(REPO_ROOT, 'test/deploy');
  const sources = readdirSync(deployDir)
    .filter((file) => file.endsWith('.ts'))
    .map((file) => readFileSync(join(deployDir, file), 'utf8'))
    .join('\n');

  it('has the seven recipes, each a non-empty fenced block', () => {
    expect(names.sort()).to.deep.equal(['haproxy-http', 'haproxy-tcp', 'nginx-complete', 'nginx-http', 'nginx-stream', 'squid', 'tinyproxy']);
    for (const name of names) expect(readmeRecipe(name).trim(), name).to.not.equal('');
  });

  it('has every recipe read by a deploy test, and every recipe a deploy test reads', () => {
    const read = new Set([...sources.matchAll(/readmeRecipe\('([a-z0-9-]+)'\)|'(haproxy-[a-z]+|nginx-[a-z]+)'/g)].map((match) => match[1] ?? match[2]!));
    expect([...read].sort()).to.deep.equal([...names].sort());
  });
});
