/**
 * Queue bounds shared by the protocol machines.
 *
 * @module
 */

/** How many messages wait per pipe to be written, and at the socket to be read. */
export interface Buffers {
  /** Messages queued on one pipe before it counts as full (then pub0/bus0 drop, others wait). */
  readonly send: number;
  /** Messages received and not yet read before the socket stops reading (sub0 drops oldest). */
  readonly recv: number;
}
