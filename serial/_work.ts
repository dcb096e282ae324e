/**
 * A running count of the elements the codec builds from what a stream describes rather than
 * from the bytes it holds: ALTREP sequences and deferred strings expanded by the reader, the
 * arrays and rows `simplify` makes, the rows `toR` recycles a scalar to. Those are the places a
 * few bytes can ask for gigabytes, so the tests bound the work a hostile stream causes by this
 * count, which is the same on any machine, and never by the time it takes.
 *
 * @module
 */

/** Elements built so far in this isolate; only ever increases (read the difference). */
export const work = { elements: 0 };
