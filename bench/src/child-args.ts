/**
 * Argument parsing for the server and client scripts the orchestrator starts: `--name value` pairs only.
 */

/** ChildArgs reads `--name value` pairs from argv, failing loudly on anything malformed. */
export class ChildArgs {
  readonly #values = new Map<string, string>();

  constructor(argv: readonly string[] = process.argv.slice(2)) {
    for (let i = 0; i < argv.length; i += 2) {
      const name = argv[i]!;
      const value = argv[i + 1];
      if (!name.startsWith('--') || value === undefined) {
        throw new Error(`expected --name value pairs, got ${JSON.stringify(argv.slice(i, i + 2))}`);
      }
      this.#values.set(name.slice(2), value);
    }
  }

  /** string returns the value of --name, or `fallback`; throws when neither exists. */
  string(name: string, fallback?: string): string {
    const value = this.#values.get(name) ?? fallback;
    if (value === undefined) throw new Error(`missing --${name}`);
    return value;
  }

  /** number returns --name as a finite number, or `fallback`. */
  number(name: string, fallback?: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) {
      if (fallback === undefined) throw new Error(`missing --${name}`);
      return fallback;
    }
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${name} must be a number; got ${JSON.stringify(raw)}`);
    return value;
  }
}
