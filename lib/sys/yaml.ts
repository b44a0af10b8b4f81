/** YAML loaded on demand: the parser costs tens of milliseconds to load, so only paths that meet YAML pay. */

/** The two YAML functions the toolkit uses. */
export interface Yaml {
  parse(text: string): unknown;
  stringify(value: unknown): string;
}

let cached: Yaml | undefined;

/** Loads the YAML module once. */
export async function loadYaml(): Promise<Yaml> {
  if (cached) return cached;
  const mod = await import("yaml") as unknown as Yaml & { default?: Yaml };
  cached = typeof mod.parse === "function" ? mod : mod.default!;
  return cached;
}
