/**
 * Levenshtein distance, for naming the known name nearest a misspelt one (a contract's spec keys, the CLI's method
 * names). Its cost is the product of the two lengths: a caller that measures text a peer chose bounds it first.
 */

/** editDistance is how many one-character insertions, deletions or substitutions turn `a` into `b`. @internal */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
