/**
 * Deno.dlopen for programs that run for milliseconds. Deno compiles a fast-call trampoline for every function
 * it binds (about 0.12 ms each) and, for a function returning a 64-bit integer, pointer or struct, compiles a
 * JavaScript wrapper from source (about 0.04 ms), both for V8's optimising tier, which these programs never
 * reach (they run as bytecode, lib/layout.ts). A function with a struct among its parameters gets neither: it
 * is bound in about 0.01 ms and called through libffi in about 0.3 µs. So every function here is bound with
 * one more parameter, a one-byte struct passed by value, which the caller passes and the callee never reads:
 * both ABIs the toolkit runs on (x86-64 System V, AArch64) put it in the next free argument register or on the
 * stack, which the caller owns, so the declared arguments travel exactly as without it.
 */

/** The extra parameter's type. */
const PAD_TYPE = { struct: ["u8"] } as const;

/** The extra argument: every call through a {@link padded} definition passes it last. */
export const PAD: Uint8Array<ArrayBuffer> = new Uint8Array(1);

/** A function definition with the extra parameter appended (see the module's comment). */
export function padded<const D extends Deno.ForeignFunction>(def: D): Padded<D> {
  const parameters = [...def.parameters, PAD_TYPE] as const;
  return { ...def, parameters } as unknown as Padded<D>;
}

/** The type of a {@link padded} definition. */
export type Padded<D extends Deno.ForeignFunction> = Omit<D, "parameters"> & {
  parameters: readonly [...D["parameters"], typeof PAD_TYPE];
};

/** An opened library whose functions take their declared arguments (the extra one is added for them). */
export interface Library<S extends Deno.ForeignLibraryInterface> {
  /** The symbols: a missing optional one reads as null, as with Deno.dlopen. */
  readonly symbols: Deno.DynamicLibrary<S>["symbols"];
  /** Closes the library (its symbols must not be called afterwards). */
  close(): void;
}

/**
 * Opens `path` with the functions of `defs`, each bound through {@link padded}; throws as Deno.dlopen does
 * (a library that cannot be loaded, a required symbol it lacks).
 */
export function openLibrary<const S extends Record<string, Deno.ForeignFunction>>(
  path: string,
  defs: S,
): Library<S> {
  const raw = Deno.dlopen(path, Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, padded(d)])));
  const symbols: Record<string, unknown> = {};
  for (const name of Object.keys(defs)) {
    const fn = raw.symbols[name] as ((...args: unknown[]) => unknown) | null;
    symbols[name] = fn && ((...args: unknown[]) => fn(...args, PAD));
  }
  return { symbols: symbols as Deno.DynamicLibrary<S>["symbols"], close: () => raw.close() };
}

/** {@link openLibrary} of libc, opened when one of its symbols is first read. */
export function lazyLibc<const S extends Record<string, Deno.ForeignFunction>>(
  defs: S,
): Deno.DynamicLibrary<S>["symbols"] {
  let lib: Library<S> | undefined;
  const out = {} as Deno.DynamicLibrary<S>["symbols"];
  for (const name of Object.keys(defs) as (keyof S & string)[]) {
    Object.defineProperty(out, name, { get: () => (lib ??= openLibrary("libc.so.6", defs)).symbols[name] });
  }
  return out;
}
