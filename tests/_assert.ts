/** Assertions for the tests, on node:assert/strict. */
import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Asserts a condition. */
export function assertTrue(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}

/** Asserts that `s` contains `part`. */
export function assertIncludes(s: string, part: string, msg?: string): void {
  assert.ok(s.includes(part), msg ?? `expected ${JSON.stringify(s)} to include ${JSON.stringify(part)}`);
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = new (...args: any[]) => E;

/** Asserts that `fn` throws an instance of `cls` (whose message includes `part`, when given); returns it. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>, part?: string): E {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (part !== undefined) assertIncludes((err as Error).message, part);
    return err as E;
  }
  throw new assert.AssertionError({ message: `expected ${cls.name} to be thrown` });
}

/** Async form of {@link assertThrows}. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: ErrorClass<E>,
  part?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (part !== undefined) assertIncludes((err as Error).message, part);
    return err as E;
  }
  throw new assert.AssertionError({ message: `expected ${cls.name} to be thrown` });
}
