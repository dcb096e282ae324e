/**
 * Comparing secrets (tokens) without leaking, through timing, how much of a guess was right.
 *
 * @module
 */

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * True when `guess` equals `secret`. Both are hashed first (SHA-256) and the two digests are
 * compared in full, every byte, so the time taken depends neither on where the two differ nor
 * on the secret's length. (Not `node:crypto`'s `timingSafeEqual`: in Deno 2.9.6, loading
 * `node:crypto` makes a later never-settling top-level `await` in the session panic Deno
 * inside the inspector, "Invoke in DisallowJavascriptExecutionScope".)
 */
export async function sameSecret(guess: string, secret: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(guess), digest(secret)]);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
