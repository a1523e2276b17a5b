/**
 * How long a test waits for something that should happen: generous, since the
 * suite runs on a loaded 2-core machine. Nothing waits this long when all is well.
 */
export const PATIENCE_MS = 30_000;

/**
 * waitFor polls check until it returns something other than false or
 * undefined, and returns that; it fails naming what after PATIENCE_MS.
 */
export async function waitFor<T>(
  check: () => T | false | undefined | Promise<T | false | undefined>,
  what: string,
  timeoutMs = PATIENCE_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== false && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
