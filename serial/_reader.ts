/**
 * The reader: R serialization bytes (XDR, native binary, ascii; versions 2 and 3; nanonext's
 * 0x07 prefix) to typed R values. Every length from the stream is checked against the bytes
 * left and against `maxElements` before anything is allocated.
 *
 * @module
 */

import { formatDouble, formatInteger } from "./_format.ts";
import { asciiString, Input, isAscii, latin1, utf8 } from "./_input.ts";
import {
  isRValue,
  NA_INTEGER,
  R_NULL,
  type RAttributes,
  type RBytecode,
  type RCharacter,
  type RClosure,
  type RDouble,
  REncoding,
  type RFrameEnvironment,
  type RInteger,
  type RLogical,
  type RPairlist,
  type RPairlistCell,
  type RPromise,
  type RSymbol,
  type RValue,
  type RWithAttributes,
  SerializationError,
  setAttribute,
} from "./_types.ts";
import { work } from "./_work.ts";

/** A character outside ASCII. */
const NON_ASCII = /[\u0080-\uffff]/;

/** Options for {@linkcode unserialize}. */
export interface UnserializeOptions {
  /**
   * The longest vector (or pairlist) accepted from the stream, in elements. Vectors are also
   * bounded by the bytes actually present, so this mostly caps memory for large messages.
   *
   * @default {134217728}
   */
  maxElements?: number;
  /**
   * The expansion budget of one message, in elements: how many elements all the ALTREP
   * sequences in it (`compact_intseq`, `compact_realseq`) may expand to *together*. R sends
   * `1:n` as three numbers, so a few bytes could otherwise ask for gigabytes; with one budget
   * per message, reading n bytes allocates O(n) plus at most this many elements (8 bytes each
   * at most: 128 MiB by default). Strings R defers over such a sequence (`as.character(1:n)`)
   * count 9 elements each, the sequence included. Raise it to receive longer `1:n` sequences.
   *
   * @default {16777216}
   */
  maxExpandedElements?: number;
  /**
   * How deeply lists and calls may nest, so hostile input cannot exhaust the stack.
   *
   * @default {1000}
   */
  maxDepth?: number;
  /**
   * What a persistent reference stands for, like `f` in R's `unserialize(x, refhook = f)`:
   * called with the strings the writer's refhook gave for an object (see `RPersistent`); what it
   * returns takes the object's place. `NA_character_` arrives as `null`, and a latin1 or bytes
   * string as its decoded text. Without it the reference stays `{ type: "persistent", names }`
   * (with `encodings` where a name is marked), which `serialize` writes back as R wrote it
   * (where R would stop with "no restore method available"). An error it throws reaches the
   * caller of `unserialize` (or `readRds`, `readRData`) unchanged.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { type RValue, serialize, unserialize } from "@x/rsock/serial";
   * // What serialize(list(e, e), NULL, refhook = function(x) "session-7") writes: one
   * // persistent reference at each occurrence
   * const claimed = (): RValue => ({ type: "persistent", names: ["session-7"] });
   * const bytes = serialize({ type: "list", data: [claimed(), claimed()] });
   * assert.deepStrictEqual(unserialize(bytes), { type: "list", data: [claimed(), claimed()] });
   * const live: RValue = { type: "character", data: ["live"] };
   * const sessions = new Map([["session-7", live]]);
   * const value = unserialize(bytes, { persistentReference: ([name]) => sessions.get(name!)! });
   * assert.deepStrictEqual(value, { type: "list", data: [live, live] });
   * ```
   */
  persistentReference?: (names: (string | null)[]) => RValue;
}

/**
 * Default for {@linkcode UnserializeOptions.maxElements}: 2^27 elements (1 GiB of doubles).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_ELEMENTS, unserialize } from "@x/rsock/serial";
 * const options = { maxElements: DEFAULT_MAX_ELEMENTS * 2 }; // for very large vectors
 * ```
 */
export const DEFAULT_MAX_ELEMENTS: number = 134_217_728;
/**
 * Default for {@linkcode UnserializeOptions.maxExpandedElements}: 2^24 elements per message.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_EXPANDED_ELEMENTS } from "@x/rsock/serial";
 * console.log(DEFAULT_MAX_EXPANDED_ELEMENTS); // 16777216: R's 1:16777216 still expands
 * ```
 */
export const DEFAULT_MAX_EXPANDED_ELEMENTS: number = 16_777_216;
/**
 * Default for {@linkcode UnserializeOptions.maxDepth}.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_DEPTH } from "@x/rsock/serial";
 * console.log(DEFAULT_MAX_DEPTH); // 1000 levels of nested lists
 * ```
 */
export const DEFAULT_MAX_DEPTH: number = 1000;

const SXP = {
  NIL: 0,
  SYM: 1,
  LIST: 2,
  CLO: 3,
  ENV: 4,
  PROM: 5,
  LANG: 6,
  SPECIAL: 7,
  BUILTIN: 8,
  CHAR: 9,
  LGL: 10,
  INT: 13,
  REAL: 14,
  CPLX: 15,
  STR: 16,
  DOT: 17,
  VEC: 19,
  EXPR: 20,
  BCODE: 21,
  EXTPTR: 22,
  WEAKREF: 23,
  RAW: 24,
  S4: 25,
  ALTREP: 238,
  BASEENV: 241,
  PACKAGE: 248,
  NAMESPACE: 249,
  EMPTYENV: 242,
  PERSIST: 247,
  BASENAMESPACE: 250,
  MISSINGARG: 251,
  UNBOUNDVALUE: 252,
  GLOBALENV: 253,
  NILVALUE: 254,
  REF: 255,
} as const;

/** The vector types an ALTREP wrapper may hold. */
type VectorType =
  | "logical"
  | "integer"
  | "double"
  | "complex"
  | "character"
  | "raw"
  | "list"
  | "expression";
const VECTOR_TYPES: ReadonlySet<string> = new Set<VectorType>([
  "logical",
  "integer",
  "double",
  "complex",
  "character",
  "raw",
  "list",
  "expression",
]);

/** Byte-code pseudo-types, met only inside a constant pool. */
const BC = { REPDEF: 244, REPREF: 243, ATTRLANG: 240, ATTRLIST: 239 } as const;

/** Types R's own reader stops at, in R's words; R's serialize() never writes them. */
const R_REFUSES: Record<number, string> = {
  246: "a class reference (CLASSREFSXP, SEXP type 246), which R itself refuses to read " +
    '("this version of R cannot read class references"); R never writes one',
  245: "a generic-function reference (GENERICREFSXP, SEXP type 245), which R itself refuses to " +
    'read ("this version of R cannot read generic function references"); R never writes one',
};

const UNSUPPORTED: Record<number, string> = {
  244: "a byte-code cell definition outside byte code",
  243: "a byte-code cell reference outside byte code",
  240: "a byte-code call outside byte code",
  239: "a byte-code pairlist outside byte code",
};

/** A cell of a byte code's calls that R shares: where it sits, and the list it starts. */
interface SharedCell {
  cells: RPairlistCell[];
  /** Where its chain sits in the reader's stack of open chains while that chain is read. */
  level: number;
  from: number;
  type: "language" | "pairlist";
  list: RPairlist | undefined;
}

interface PairlistRead {
  cells: RPairlistCell[];
  attributes: RAttributes | undefined;
  tail: RValue | undefined;
}

/**
 * What one string of a deferred_string over an expanded sequence costs from the expansion
 * budget, beyond its number: a short JS string and its array slot take ~40 bytes, five budget
 * elements of 8, and take far longer to make; 9 in all keeps the worst 216-byte message near
 * half a second and 150 MiB (unserialize + simplify).
 */
const STRING_COST = 8;

class Reader {
  readonly #in: Input;
  readonly #maxElements: number;
  readonly #maxDepth: number;
  readonly #maxExpanded: number;
  /** What is left of this message's expansion budget (one budget for the whole stream). */
  #expandable: number;
  readonly #refs: RValue[] = [];
  readonly #persistentReference: ((names: (string | null)[]) => RValue) | undefined;
  /** What the persistentReference hook threw, which is the caller's and passes unwrapped. */
  #hookError: { error: unknown } | undefined;
  /** Vectors expanded from ALTREP states (not read element by element from the stream). */
  #expanded: WeakSet<RValue> | undefined;
  #nativeIsUtf8 = true;
  /** Whether the attributes `#attributes` read last hold a class. */
  #attributesClass = false;
  /**
   * The byte-code call chains still being read, whose cells are not all there yet, outermost
   * first: chains nest (one is read inside another's cell and done before it goes on), so the
   * chain a shared cell was defined in is still open exactly while it sits at the cell's level.
   * A stack, not a set: no hashing per chain, and the check is one comparison.
   */
  readonly #openChains: RPairlistCell[][] = [];

  constructor(input: Input, options: UnserializeOptions) {
    this.#in = input;
    this.#maxElements = options.maxElements ?? DEFAULT_MAX_ELEMENTS;
    this.#maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.#maxExpanded = Math.min(
      options.maxExpandedElements ?? DEFAULT_MAX_EXPANDED_ELEMENTS,
      this.#maxElements,
    );
    this.#expandable = this.#maxExpanded;
    this.#persistentReference = options.persistentReference;
  }

  /** True when `error` is what the persistentReference hook threw. */
  threwFromHook(error: unknown): boolean {
    return this.#hookError !== undefined && this.#hookError.error === error;
  }

  header(): void {
    const input = this.#in;
    const version = input.int("the format version");
    if (version !== 2 && version !== 3) {
      input.fail(`R serialization version ${version} is not supported; expected 2 or 3`);
    }
    input.int("the writer's R version");
    input.int("the minimum reader version");
    if (version === 3) {
      const n = input.int("the native encoding length");
      if (n < 0 || n > 63) input.fail(`native encoding name of ${n} bytes; expected 0 to 63`);
      const name = latin1.decode(input.stringBytes(n));
      this.#nativeIsUtf8 = /^utf-?8$/i.test(name);
    }
  }

  #length(): number {
    const input = this.#in;
    let n = input.int("a length");
    if (n === -1) {
      const upper = input.int("a long length");
      const lower = input.int("a long length");
      n = upper * 2 ** 32 + (lower >>> 0);
    }
    if (n < 0) input.fail(`negative length ${n}`);
    if (n > this.#maxElements) {
      input.fail(`vector of ${n} elements exceeds maxElements (${this.#maxElements})`);
    }
    return n;
  }

  #checkRoom(n: number, width: number, what: string): void {
    if (n * width > this.#in.remaining) {
      const limit = this.#in.limitReached(n * width);
      if (limit !== undefined) throw limit;
      this.#in.fail(
        `${what} claims ${n} elements but only ${this.#in.remaining} bytes remain`,
      );
    }
  }

  item(depth: number): RValue {
    const flags = this.#in.int("an item header");
    // NULL and references are most items of a closure-heavy value (1,400 of 2,100 in a glm
    // fit): they are answered here, without a call of #body, whose frame is large.
    if (depth <= this.#maxDepth) {
      const type = flags & 0xff;
      if (type === SXP.NILVALUE) return R_NULL;
      if (type === SXP.REF && flags >>> 8 !== 0) {
        const ref = this.#refs[(flags >>> 8) - 1];
        if (ref !== undefined) return ref;
      }
      if (type === SXP.INT || type === SXP.REAL || type === SXP.STR || type === SXP.LGL) {
        return this.#vector(type, flags, depth);
      }
    }
    return this.#body(flags, depth);
  }

  #body(flags: number, depth: number): RValue {
    const input = this.#in;
    if (depth > this.#maxDepth) input.fail(`nesting deeper than maxDepth (${this.#maxDepth})`);
    const type = flags & 0xff;
    const hasAttr = (flags & 0x200) !== 0;
    switch (type) {
      case SXP.NILVALUE:
      case SXP.NIL:
        return R_NULL;
      case SXP.GLOBALENV:
        return { type: "environment", name: "global" };
      case SXP.EMPTYENV:
        return { type: "environment", name: "empty" };
      case SXP.BASEENV:
        return { type: "environment", name: "base" };
      case SXP.BASENAMESPACE:
        return { type: "environment", name: "base namespace" };
      case SXP.UNBOUNDVALUE:
        return { type: "unbound" };
      case SXP.MISSINGARG:
        return { type: "symbol", name: "" };
      case SXP.REF: {
        const index = flags >>> 8 === 0 ? input.int("a reference index") : flags >>> 8;
        const ref = this.#refs[index - 1];
        if (ref === undefined) {
          return input.fail(
            `reference #${index} to an item not read yet (${this.#refs.length} so far); ` +
              "expected an index into the symbols and environments read before it",
          );
        }
        return ref;
      }
      case SXP.SYM: {
        const symbol = this.#symbol(input.int("a symbol name"));
        this.#addReference(symbol);
        return symbol;
      }
      case SXP.LIST:
      case SXP.LANG:
      case SXP.DOT: {
        const read = this.#pairlist(flags, depth);
        if (read.tail !== undefined) input.fail("a dotted pair (pairlist with a non-list tail)");
        const value: RValue = {
          type: type === SXP.LANG ? "language" : type === SXP.DOT ? "dots" : "pairlist",
          data: read.cells,
        };
        if (read.attributes) value.attributes = read.attributes;
        return value;
      }
      case SXP.ENV: {
        const locked = input.int("an environment's lock flag");
        const environment: RFrameEnvironment = {
          type: "environment",
          name: "frame",
          locked: locked !== 0,
          enclosure: R_NULL,
          frame: R_NULL,
          hashTable: R_NULL,
        };
        // Registered before its contents, which may refer to it (an environment holding itself).
        this.#addReference(environment);
        environment.enclosure = this.item(depth + 1);
        environment.frame = this.item(depth + 1);
        environment.hashTable = this.item(depth + 1);
        const attributes = this.#attributes(depth);
        if (attributes) environment.attributes = attributes;
        return environment;
      }
      case SXP.PACKAGE:
      case SXP.NAMESPACE: {
        if (input.int("a persistent name's placeholder") !== 0) {
          input.fail("names on a package or namespace name; expected the placeholder 0");
        }
        const n = input.int("the length of a package or namespace name");
        if (n < 0 || n > 64) input.fail(`a package or namespace name of ${n} strings`);
        const spec: string[] = [];
        for (let i = 0; i < n; i++) {
          spec.push(this.#charsxp(input.int("a package or namespace name")).text ?? "NA");
        }
        const environment: RValue = {
          type: "environment",
          name: type === SXP.PACKAGE ? "package" : "namespace",
          spec,
        };
        this.#addReference(environment);
        return environment;
      }
      case SXP.PERSIST:
        return this.#persistent();
      case SXP.CLO:
      case SXP.PROM: {
        const attributes = hasAttr ? this.#attributes(depth) : undefined;
        const environment = (flags & 0x400) !== 0 ? this.item(depth + 1) : R_NULL;
        const car = this.item(depth + 1);
        const cdr = this.item(depth + 1);
        const value: RClosure | RPromise = type === SXP.CLO
          ? { type: "closure", formals: car, body: cdr, environment }
          : { type: "promise", value: car, expression: cdr, environment };
        return this.#marks(value, flags, attributes);
      }
      case SXP.SPECIAL:
      case SXP.BUILTIN: {
        const n = input.int("a primitive's name length");
        if (n < 0 || n > 256) input.fail(`a primitive's name of ${n} bytes; expected 1 to 256`);
        const name = latin1.decode(input.stringBytes(n));
        return this.#withAttributes(
          { type: type === SXP.SPECIAL ? "special" : "builtin", name },
          flags,
          depth,
        );
      }
      case SXP.EXTPTR: {
        const pointer: RValue = { type: "externalptr", protected: R_NULL, tag: R_NULL };
        this.#addReference(pointer);
        pointer.protected = this.item(depth + 1);
        pointer.tag = this.item(depth + 1);
        return this.#withAttributes(pointer, flags, depth);
      }
      case SXP.WEAKREF: {
        const reference: RValue = { type: "weakref" };
        this.#addReference(reference);
        return this.#withAttributes(reference, flags, depth);
      }
      case SXP.S4:
        return this.#withAttributes({ type: "S4" }, flags, depth);
      case SXP.BCODE: {
        const count = input.int("the number of shared byte-code cells");
        if (count < 0 || count > input.remaining) {
          input.fail(`${count} shared byte-code cells; expected at most one per byte left`);
        }
        const shared: (SharedCell | undefined)[] = new Array(count);
        return this.#withAttributes(this.#bytecode(shared, depth), flags, depth);
      }
      case SXP.LGL:
      case SXP.INT:
      case SXP.REAL:
      case SXP.STR:
        return this.#vector(type, flags, depth);
      case SXP.CPLX: {
        const n = this.#length();
        this.#checkRoom(n, input.ascii ? 4 : 16, "a complex vector");
        return this.#withAttributes(
          { type: "complex", data: input.doubles(2 * n) },
          flags,
          depth,
        );
      }
      case SXP.RAW: {
        const n = this.#length();
        this.#checkRoom(n, input.ascii ? 2 : 1, "a raw vector");
        return this.#withAttributes(
          { type: "raw", data: input.bytes(n, "raw bytes").slice() },
          flags,
          depth,
        );
      }
      case SXP.VEC:
      case SXP.EXPR: {
        const n = this.#length();
        this.#checkRoom(n, input.intWidth, "a list");
        const data: RValue[] = new Array(n);
        for (let i = 0; i < n; i++) data[i] = this.item(depth + 1);
        return this.#withAttributes(
          { type: type === SXP.VEC ? "list" : "expression", data },
          flags,
          depth,
        );
      }
      case SXP.ALTREP:
        return this.#altrep(depth);
      case SXP.CHAR:
        return input.fail("a bare string (CHARSXP) outside a character vector");
    }
    const refused = R_REFUSES[type];
    if (refused !== undefined) return input.fail(`the stream holds ${refused}`);
    const what = UNSUPPORTED[type];
    if (what !== undefined) {
      return input.fail(
        `the stream holds ${what} (SEXP type ${type}), which rsock cannot read`,
      );
    }
    return input.fail(`unknown SEXP type ${type} (flags 0x${(flags >>> 0).toString(16)})`);
  }

  /** R's PERSISTSXP: the refhook's strings, then the object they name (read once, referable). */
  #persistent(): RValue {
    const input = this.#in;
    if (input.int("a persistent reference's placeholder") !== 0) {
      input.fail("names on a persistent reference's strings; expected the placeholder 0");
    }
    const n = input.int("the number of a persistent reference's strings");
    if (n < 0 || n > this.#maxElements) input.fail(`a persistent reference of ${n} strings`);
    this.#checkRoom(n, input.intWidth * 2, "a persistent reference");
    // The strings as a STRSXP's are kept: NA as null, and each one's encoding mark.
    const names: (string | null)[] = new Array(n);
    let encodings: REncoding[] | undefined;
    for (let i = 0; i < n; i++) {
      const { text, encoding } = this.#charsxp(input.int("a persistent reference's string"));
      names[i] = text;
      if (encoding !== undefined) {
        encodings ??= new Array(n).fill(REncoding.utf8);
        encodings[i] = encoding;
      }
    }
    let value: RValue = { type: "persistent", names };
    if (encodings !== undefined) value.encodings = encodings;
    if (this.#persistentReference !== undefined) {
      try {
        value = this.#persistentReference(names);
      } catch (error) {
        this.#hookError = { error };
        throw error;
      }
      if (!isRValue(value)) {
        throw new TypeError(
          `persistentReference(${JSON.stringify(names)}) returned ${String(value)}; ` +
            "expected a typed R value",
        );
      }
    }
    this.#addReference(value);
    return value;
  }

  /**
   * A logical, integer, double or character vector: made once its attributes are read, with
   * every property it gets in one literal (a property added to a literal object goes to a
   * property array of its own).
   */
  #vector(type: number, flags: number, depth: number): RValue {
    const input = this.#in;
    const n = this.#length();
    let value: RLogical | RInteger | RDouble | RCharacter;
    let attributes: RAttributes | undefined;
    if (type === SXP.STR) {
      this.#checkRoom(n, input.intWidth * 2, "a character vector");
      const data: (string | null)[] = new Array(n);
      let encodings: REncoding[] | undefined;
      for (let i = 0; i < n; i++) {
        // Runs of ASCII strings (the common case) are read in one go; others one by one.
        i = input.asciiStrings(data, i);
        if (i >= n) break;
        const { text, encoding } = this.#charsxp(input.int("a string header"));
        data[i] = text;
        if (encoding !== undefined) {
          encodings ??= new Array(n).fill(REncoding.utf8);
          encodings[i] = encoding;
        }
      }
      if ((flags & 0x200) !== 0) attributes = this.#attributes(depth);
      if (encodings !== undefined) {
        value = { type: "character", data, encodings };
        if (attributes !== undefined) value.attributes = attributes;
      } else {
        value = attributes === undefined
          ? { type: "character", data }
          : { type: "character", data, attributes };
      }
    } else if (type === SXP.REAL) {
      this.#checkRoom(n, input.ascii ? 2 : 8, "a double vector");
      const data = input.doubles(n);
      if ((flags & 0x200) !== 0) attributes = this.#attributes(depth);
      value = attributes === undefined
        ? { type: "double", data }
        : { type: "double", data, attributes };
    } else {
      const logical = type === SXP.LGL;
      this.#checkRoom(n, input.intWidth, logical ? "a logical vector" : "an integer vector");
      const data = input.ints(n);
      if ((flags & 0x200) !== 0) attributes = this.#attributes(depth);
      if (logical) {
        value = attributes === undefined
          ? { type: "logical", data }
          : { type: "logical", data, attributes };
      } else {
        value = attributes === undefined
          ? { type: "integer", data }
          : { type: "integer", data, attributes };
      }
    }
    const levels = (flags >>> 12) & 0xffff;
    if (levels !== 0) value.levels = levels;
    // The class was seen by #attributes, just read: no lookup of it in the attributes.
    const object = (flags & 0x100) !== 0;
    if (object !== (attributes !== undefined && this.#attributesClass)) value.object = object;
    return value;
  }

  #withAttributes<T extends RValue & RWithAttributes>(value: T, flags: number, depth: number): T {
    const attributes = (flags & 0x200) !== 0 ? this.#attributes(depth) : undefined;
    return this.#marks(value, flags, attributes);
  }

  /** Sets the attributes, and the gp bits and object bit where R's differ from the default. */
  #marks<T extends RValue & RWithAttributes>(
    value: T,
    flags: number,
    attributes: RAttributes | undefined,
  ): T {
    if (attributes) value.attributes = attributes;
    const levels = (flags >>> 12) & 0xffff;
    if (levels !== 0) value.levels = levels;
    const object = (flags & 0x100) !== 0;
    if (object !== (attributes !== undefined && Object.hasOwn(attributes, "class"))) {
      value.object = object;
    }
    return value;
  }

  #addReference(value: RValue): void {
    if (this.#refs.length >= this.#maxElements) {
      this.#in.fail(`more than maxElements (${this.#maxElements}) referable items`);
    }
    this.#refs.push(value);
  }

  /** R's ReadBC1: the instructions, then the constant pool, whose calls may share cells. */
  #bytecode(shared: (SharedCell | undefined)[], depth: number): RBytecode {
    const input = this.#in;
    if (depth > this.#maxDepth) input.fail(`nesting deeper than maxDepth (${this.#maxDepth})`);
    const code = this.item(depth + 1);
    const n = input.int("the length of a constant pool");
    this.#checkRoom(n, input.intWidth * 2, "a constant pool");
    if (n < 0 || n > this.#maxElements) input.fail(`a constant pool of ${n} entries`);
    const constants: RValue[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const type = input.int("the type of a constant");
      constants[i] = type === SXP.BCODE
        ? this.#bytecode(shared, depth + 1)
        : this.#bytecodeItem(type, shared, depth + 1);
      this.#claimedType(constants[i]!, type);
    }
    return { type: "bytecode", code, constants };
  }

  /** Keeps the type R wrote before a constant that is a persistent reference (see RPersistent). */
  #claimedType(constant: RValue, type: number): void {
    // The written type first: a plain number, where the constant's is a load from any shape.
    if (type !== SXP.ENV && type !== SXP.EXTPTR && type !== SXP.WEAKREF) return;
    if (constant.type !== "persistent" || this.#persistentReference !== undefined) return;
    const claimed = type === SXP.ENV
      ? "environment"
      : type === SXP.EXTPTR
      ? "externalptr"
      : type === SXP.WEAKREF
      ? "weakref"
      : undefined;
    if (claimed !== undefined) constant.claimedType = claimed;
  }

  /** An item in byte code: a call or pairlist cell by cell, anything else as usual. */
  #bytecodeItem(type: number, shared: (SharedCell | undefined)[], depth: number): RValue {
    const input = this.#in;
    switch (type) {
      case BC.REPREF: {
        const cell = this.#sharedCell(shared);
        cell.list ??= { type: cell.type, data: cell.cells.slice(cell.from) };
        return cell.list;
      }
      case BC.REPDEF:
      case BC.ATTRLANG:
      case BC.ATTRLIST:
      case SXP.LANG:
      case SXP.LIST:
        return this.#bytecodeCells(type, shared, depth);
    }
    if (depth > this.#maxDepth) input.fail(`nesting deeper than maxDepth (${this.#maxDepth})`);
    return this.item(depth);
  }

  #sharedCell(shared: (SharedCell | undefined)[]): SharedCell {
    const index = this.#in.int("a shared byte-code cell");
    const cell = shared[index];
    if (cell === undefined) {
      return this.#in.fail(
        `byte-code cell #${index} referred to before it is defined (${shared.length} declared)`,
      );
    }
    // A reference into a call still being read closes a cycle: the call contains itself.
    // R code cannot build one (calls are trees; the compiler shares only finished subcalls).
    if (this.#openChains[cell.level] === cell.cells) {
      return this.#in.fail(
        `byte-code cell #${index} refers back into the call that holds it (a cyclic call); ` +
          "expected a reference to a call already read",
      );
    }
    return cell;
  }

  /** R's ReadBCLang for a chain of cells, iteratively along the tail. */
  #bytecodeCells(type: number, shared: (SharedCell | undefined)[], depth: number): RPairlist {
    const input = this.#in;
    if (depth > this.#maxDepth) input.fail(`nesting deeper than maxDepth (${this.#maxDepth})`);
    const cells: RPairlistCell[] = [];
    const openChains = this.#openChains;
    const level = openChains.length;
    openChains.push(cells);
    let list: RPairlist | undefined;
    for (;;) {
      let position = -1;
      if (type === BC.REPDEF) {
        position = input.int("a shared byte-code cell");
        if (position < 0 || position >= shared.length) {
          input.fail(`byte-code cell #${position} of ${shared.length} declared`);
        }
        type = input.int("the type of a byte-code cell");
      }
      const hasAttributes = type === BC.ATTRLANG || type === BC.ATTRLIST;
      const language = type === SXP.LANG || type === BC.ATTRLANG;
      if (!language && type !== SXP.LIST && type !== BC.ATTRLIST) {
        input.fail(`a byte-code cell of SEXP type ${type}; expected a call or pairlist`);
      }
      list ??= { type: language ? "language" : "pairlist", data: cells };
      if (position >= 0) {
        shared[position] = {
          cells,
          level,
          from: cells.length,
          type: language ? "language" : "pairlist",
          list: cells.length === 0 ? list : undefined,
        };
      }
      const attributes = hasAttributes ? this.#attributes(depth + 1) : undefined;
      if (attributes !== undefined && cells.length === 0) list.attributes = attributes;
      const tag = this.item(depth + 1);
      let cell: RPairlistCell;
      // Most cells are untagged: R_NULL is known by identity, before any load of a type.
      if (tag !== R_NULL && tag.type === "symbol") {
        cell = { tag: tag.name, value: R_NULL };
        if (tag.encoding !== undefined) cell.tagEncoding = tag.encoding;
      } else {
        if (tag.type !== "NULL") {
          input.fail(`a byte-code cell tagged with a ${tag.type}; expected a symbol`);
        }
        cell = { value: R_NULL };
      }
      if (cells.length > 0 && language) cell.cellType = "language";
      if (attributes !== undefined && cells.length > 0) cell.attributes = attributes;
      cells.push(cell);
      if (cells.length > this.#maxElements) {
        input.fail(`pairlist longer than maxElements (${this.#maxElements})`);
      }
      cell.value = this.#bytecodeItem(input.int("a byte-code cell"), shared, depth + 1);
      const next = input.int("the rest of a byte-code cell");
      if (next === BC.REPREF) {
        const tail = this.#sharedCell(shared);
        for (let k = tail.from; k < tail.cells.length; k++) cells.push(tail.cells[k]!);
        openChains.pop();
        return list;
      }
      if (
        next === BC.REPDEF || next === BC.ATTRLANG || next === BC.ATTRLIST ||
        next === SXP.LANG || next === SXP.LIST
      ) {
        type = next;
        continue;
      }
      const rest = this.item(depth + 1);
      if (rest.type !== "NULL") input.fail(`a byte-code call ending in a ${rest.type}`);
      openChains.pop();
      return list;
    }
  }

  /**
   * An attribute pairlist, read straight into the attributes object: of a cell only its tag
   * and value are kept, so no cells are made. It reads and refuses as `#pairlist` would, an
   * untagged cell once the list is read.
   */
  #attributes(depth: number): RAttributes | undefined {
    const input = this.#in;
    let flags = input.int("an attribute list");
    let type = flags & 0xff;
    if (type === SXP.NILVALUE) return undefined;
    if (type !== SXP.LIST) input.fail(`attributes of SEXP type ${type}; expected a pairlist (2)`);
    const attributes: RAttributes = {};
    let untagged = false;
    let length = 0;
    let hasClass = false;
    for (;;) {
      if ((flags & 0x200) !== 0) this.#attributes(depth + 1);
      const tag = (flags & 0x400) !== 0 ? this.#tag(depth + 1) : undefined;
      const value = this.item(depth + 1);
      if (tag === undefined) untagged = true;
      else {
        setAttribute(attributes, tag.name, value);
        if (tag.name === "class") hasClass = true;
      }
      if (++length > this.#maxElements) {
        input.fail(`pairlist longer than maxElements (${this.#maxElements})`);
      }
      flags = input.int("the rest of a pairlist");
      type = flags & 0xff;
      if (type === SXP.NILVALUE) break;
      if (type !== SXP.LIST && type !== SXP.LANG && type !== SXP.DOT) {
        this.#body(flags, depth + 1);
        input.fail("attributes end in a dotted pair");
      }
    }
    if (untagged) input.fail("an attribute without a name");
    this.#attributesClass = hasClass;
    return attributes;
  }

  /** A pairlist cell's tag: a symbol. */
  #tag(depth: number): RSymbol {
    const tag = this.item(depth);
    if (tag.type !== "symbol") {
      return this.#in.fail(`a pairlist tag of type ${tag.type}; expected a symbol`);
    }
    return tag;
  }

  /** Reads a pairlist chain iteratively (R writes long ones as deep CDR chains). */
  #pairlist(flags: number, depth: number): PairlistRead {
    const input = this.#in;
    const cells: RPairlistCell[] = [];
    let attributes: RAttributes | undefined;
    for (;;) {
      let cellAttributes: RAttributes | undefined;
      if ((flags & 0x200) !== 0) {
        cellAttributes = this.#attributes(depth + 1);
        if (cells.length === 0) attributes = cellAttributes;
      }
      const tag = (flags & 0x400) !== 0 ? this.#tag(depth + 1) : undefined;
      const value = this.item(depth + 1);
      const cell: RPairlistCell = tag === undefined ? { value } : { tag: tag.name, value };
      if (tag?.encoding !== undefined) cell.tagEncoding = tag.encoding;
      const levels = (flags >>> 12) & 0xffff;
      if (levels !== 0) cell.levels = levels;
      if (cells.length > 0 && (flags & 0xff) !== SXP.LIST) {
        cell.cellType = (flags & 0xff) === SXP.LANG ? "language" : "dots";
      }
      // A cell after the first keeps what R set on it; the first cell's are the list's.
      if (cells.length > 0 && (cellAttributes !== undefined || (flags & 0x100) !== 0)) {
        if (cellAttributes !== undefined) cell.attributes = cellAttributes;
        const object = (flags & 0x100) !== 0;
        if (object !== (cellAttributes !== undefined && Object.hasOwn(cellAttributes, "class"))) {
          cell.object = object;
        }
      }
      cells.push(cell);
      if (cells.length > this.#maxElements) {
        input.fail(`pairlist longer than maxElements (${this.#maxElements})`);
      }
      flags = input.int("the rest of a pairlist");
      const type = flags & 0xff;
      if (type === SXP.NILVALUE) return { cells, attributes, tail: undefined };
      if (type !== SXP.LIST && type !== SXP.LANG && type !== SXP.DOT) {
        return { cells, attributes, tail: this.#body(flags, depth + 1) };
      }
    }
  }

  /** A symbol, `flags` its print name's: an unmarked ASCII one comes from the shared names. */
  #symbol(flags: number): RSymbol {
    const input = this.#in;
    if ((flags & 0xff) !== SXP.CHAR) {
      input.fail(`SEXP type ${flags & 0xff} where a string (9) belongs`);
    }
    const n = input.int("a string length");
    if (n >= 0 && ((flags >>> 12) & 6) === 0) {
      const name = input.nameText(n);
      if (name !== undefined) return { type: "symbol", name };
    }
    const { text, encoding } = this.#charsxpText(flags, n);
    const symbol: RSymbol = { type: "symbol", name: text ?? "NA" };
    // Unmarked is the default for a print name; marked UTF-8, the default for strings, is
    // kept as a mark (see RSymbol.encoding).
    const mark = encoding === undefined
      ? (text !== null && NON_ASCII.test(text) ? REncoding.utf8 : undefined)
      : encoding === REncoding.native
      ? undefined
      : encoding;
    if (mark !== undefined) symbol.encoding = mark;
    return symbol;
  }

  #charsxp(flags: number): { text: string | null; encoding: REncoding | undefined } {
    const input = this.#in;
    if ((flags & 0xff) !== SXP.CHAR) {
      input.fail(`SEXP type ${flags & 0xff} where a string (9) belongs`);
    }
    return this.#charsxpText(flags, input.int("a string length"));
  }

  /** A CHARSXP after its length `n`, `flags` its header. */
  #charsxpText(flags: number, n: number): { text: string | null; encoding: REncoding | undefined } {
    const input = this.#in;
    if (n === -1) return { text: null, encoding: undefined };
    if (n < 0) input.fail(`string length ${n}`);
    const levels = flags >>> 12;
    if ((levels & 6) === 0) {
      const ascii = input.asciiText(n);
      if (ascii !== undefined) return { text: ascii, encoding: undefined };
    }
    const bytes = input.stringBytes(n);
    if (levels & 4) return { text: latin1.decode(bytes), encoding: REncoding.latin1 };
    if (levels & 2) return { text: latin1.decode(bytes), encoding: REncoding.bytes };
    if (isAscii(bytes)) return { text: asciiString(bytes), encoding: undefined };
    const marked = (levels & 8) !== 0;
    if (!marked && !this.#nativeIsUtf8) {
      return { text: latin1.decode(bytes), encoding: REncoding.latin1 };
    }
    try {
      // Unmarked UTF-8 is R's native string (read without a declared encoding): kept unmarked.
      return { text: utf8.decode(bytes), encoding: marked ? undefined : REncoding.native };
    } catch {
      // Invalid UTF-8: keep every byte rather than replace characters, with the mark R had.
      return {
        text: latin1.decode(bytes),
        encoding: marked ? REncoding.bytes : REncoding.nativeBytes,
      };
    }
  }

  #altrep(depth: number): RValue {
    const input = this.#in;
    const info = this.item(depth + 1);
    const state = this.#altrepState(depth + 1);
    const attributes = this.#attributes(depth);
    if (info.type !== "pairlist" || info.data[0]?.value.type !== "symbol") {
      return input.fail("ALTREP class information is not pairlist(class, package, type)");
    }
    const className = info.data[0].value.name;
    const value = this.#materialize(className, state);
    if (attributes) {
      value.attributes = { ...(value.attributes ?? {}), ...attributes };
    }
    return value;
  }

  #expandedValue<T extends RValue>(value: T): T {
    (this.#expanded ??= new WeakSet()).add(value);
    return value;
  }

  #altrepState(depth: number): { value: RValue; cells: RPairlistCell[]; tail: RValue | undefined } {
    const flags = this.#in.int("ALTREP state");
    const type = flags & 0xff;
    if (type === SXP.LIST) {
      const read = this.#pairlist(flags, depth);
      return { value: R_NULL, cells: read.cells, tail: read.tail };
    }
    return { value: this.#body(flags, depth), cells: [], tail: undefined };
  }

  #materialize(
    className: string,
    state: { value: RValue; cells: RPairlistCell[]; tail: RValue | undefined },
  ): Extract<RValue, { type: VectorType }> {
    const input = this.#in;
    switch (className) {
      case "compact_intseq":
      case "compact_realseq": {
        const s = state.value;
        if ((s.type !== "double" && s.type !== "integer") || s.data.length !== 3) {
          return input.fail(`${className} state is not c(n, first, incr)`);
        }
        const [n = 0, first = 0, incr = 0] = s.data;
        if (!Number.isInteger(n) || n < 0) {
          return input.fail(`${className} of ${n} elements; expected a whole number`);
        }
        if (n > this.#expandable) {
          return input.fail(
            `${className} of ${n} elements exceeds what is left of this message's expansion ` +
              `budget (${this.#expandable} of maxExpandedElements = ${this.#maxExpanded})`,
          );
        }
        this.#expandable -= n;
        if (className === "compact_intseq") {
          const last = first + (n - 1) * incr;
          if (
            !Number.isInteger(first) || (incr !== 1 && incr !== -1) ||
            Math.abs(first) > 2147483647 || Math.abs(last) > 2147483647
          ) {
            return input.fail(
              `compact_intseq state (${n}, ${first}, ${incr}) is out of integer range`,
            );
          }
          work.elements += n;
          const data = new Int32Array(n);
          for (let i = 0; i < n; i++) data[i] = first + i * incr;
          return this.#expandedValue({ type: "integer", data });
        }
        work.elements += n;
        const data = new Float64Array(n);
        for (let i = 0; i < n; i++) data[i] = first + i * incr;
        return this.#expandedValue({ type: "double", data });
      }
      case "deferred_string": {
        const arg = state.cells[0]?.value;
        const scipenValue = state.tail;
        const scipen = scipenValue?.type === "integer" && scipenValue.data.length > 0
          ? scipenValue.data[0]!
          : 0;
        if (arg !== undefined && this.#expanded?.has(arg) === true) {
          // Strings over an expanded sequence (as.character(1:n), ~200 bytes for any n) cost
          // far more than the numbers: each is charged as STRING_COST more elements.
          const n = arg.type === "integer" || arg.type === "double" ? arg.data.length : 0;
          if (STRING_COST * n > this.#expandable) {
            return input.fail(
              `deferred_string of ${n} strings over an ALTREP sequence exceeds what is left of ` +
                `this message's expansion budget (${this.#expandable} of maxExpandedElements = ` +
                `${this.#maxExpanded}; each string counts ${STRING_COST + 1})`,
            );
          }
          this.#expandable -= STRING_COST * n;
        }
        if (arg?.type === "integer" || arg?.type === "logical" || arg?.type === "double") {
          work.elements += arg.data.length;
        }
        if (arg?.type === "integer" || arg?.type === "logical") {
          const data = Array.from(
            arg.data,
            (x) =>
              arg.type === "logical"
                ? (x === NA_INTEGER ? null : x ? "TRUE" : "FALSE")
                : formatInteger(x),
          );
          return { type: "character", data };
        }
        if (arg?.type === "double") {
          return { type: "character", data: Array.from(arg.data, (x) => formatDouble(x, scipen)) };
        }
        return input.fail("deferred_string state does not hold an integer or double vector");
      }
      case "wrap_integer":
      case "wrap_logical":
      case "wrap_real":
      case "wrap_complex":
      case "wrap_raw":
      case "wrap_string":
      case "wrap_list": {
        const wrapped = state.cells[0]?.value;
        if (wrapped === undefined || !VECTOR_TYPES.has(wrapped.type)) {
          return input.fail(`${className} state does not hold a vector`);
        }
        // The wrapper's attributes replace the payload's (R does the same on unserialize).
        const copy = { ...wrapped as Extract<RValue, { type: VectorType }> };
        delete copy.attributes;
        return this.#expanded?.has(wrapped) ? this.#expandedValue(copy) : copy;
      }
    }
    return input.fail(`ALTREP class "${className}" is not one rsock can expand`);
  }
}

/** Whether `bytes` start with the magic number `save()` writes: `RDX3`/`RDX2`, ascii `RDA3`/`RDA2`. */
export function hasWorkspaceMagic(bytes: Uint8Array): boolean {
  return /^RD[XA][23]\n$/.test(String.fromCharCode(...bytes.subarray(0, 5)));
}

/** The compression a file starts with, by its magic bytes. */
export function compressionOf(bytes: Uint8Array): "gzip" | "bzip2" | "xz" | undefined {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return "gzip";
  if (bytes[0] === 0x42 && bytes[1] === 0x5a && bytes[2] === 0x68) return "bzip2";
  if (
    bytes[0] === 0xfd && bytes[1] === 0x37 && bytes[2] === 0x7a && bytes[3] === 0x58 &&
    bytes[4] === 0x5a && bytes[5] === 0x00
  ) {
    return "xz";
  }
  return undefined;
}

/** Where the R stream starts: 0, or after nanonext's 8- or 12-byte `0x07` header. */
function streamStart(bytes: Uint8Array): number {
  if (bytes[0] !== 0x07) return 0;
  const isHeader = (i: number) =>
    (bytes[i] === 0x41 || bytes[i] === 0x42 || bytes[i] === 0x58) && bytes[i + 1] === 0x0a;
  if (isHeader(8)) return 8;
  if (bytes.length >= 14 && isHeader(12)) {
    let zero = true;
    for (let i = 4; i < 12; i++) if (bytes[i] !== 0) zero = false;
    if (zero) return 12;
    // nanonext's serial_config(): bytes 4-11 say where the R stream ends, and what the
    // class's own serialization function made for each object its refhook claimed follows.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const end = view.getUint32(4, true) + view.getUint32(8, true) * 2 ** 32;
    if (end > 14 && end <= bytes.length) {
      throw new SerializationError(
        "message written with nanonext's serial_config(): after the R stream (bytes 12 to " +
          `${end}) come ${bytes.length - end} bytes of a class's own serialization, which ` +
          "only that class's unserialize function reads; rsock reads messages sent without " +
          "serial_config (or R's own refhook: see the persistentReference option)",
        4,
      );
    }
  }
  throw new SerializationError(
    "message starts with nanonext's 0x07 header but no R stream ('X\\n', 'B\\n' or 'A\\n') " +
      "follows at byte 8 or 12; this header form is not supported",
    0,
  );
}

/**
 * Reads one R object from `bytes`: what R's `serialize(x, NULL)` (XDR), `serialize(x, NULL,
 * xdr = FALSE)` and nanonext's `send(mode = "serial")` produce, like R's `unserialize()`.
 *
 * @example
 * ```ts
 * import { serialize, unserialize } from "@x/rsock/serial";
 * const value = unserialize(serialize([1.5, 2]));
 * console.log(value); // { type: "double", data: Float64Array [1.5, 2] }
 * ```
 */
export function unserialize(bytes: Uint8Array, options: UnserializeOptions = {}): RValue {
  return unserializeFirst(bytes, options, false);
}

/**
 * Reads the R object `bytes` start with; what follows it is refused, or with `ignoreRest` left
 * unread, as R's `readRDS()` and `load()` leave what follows the object in a file (internal).
 */
export function unserializeFirst(
  bytes: Uint8Array,
  options: UnserializeOptions,
  ignoreRest: boolean,
): RValue {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("unserialize() expects a Uint8Array");
  const start = streamStart(bytes);
  const input = new Input(bytes, start);
  const b0 = bytes[start];
  if (
    bytes.length < start + 2 || bytes[start + 1] !== 0x0a ||
    (b0 !== 0x58 && b0 !== 0x42 && b0 !== 0x41)
  ) {
    const compression = compressionOf(bytes);
    if (
      compression !== undefined || hasWorkspaceMagic(bytes)
    ) {
      throw new SerializationError(
        compression === undefined
          ? "a workspace written by R's save(); read it with readRData()"
          : `${compression}-compressed data (R's saveRDS() and save() compress by default); ` +
            "read it with readRds() or readRData(), which inflate gzip",
        0,
      );
    }
    const seen = Array.from(
      bytes.subarray(start, start + 2),
      (b) => b.toString(16).padStart(2, "0"),
    ).join(" ");
    throw new SerializationError(
      `not an R serialization: starts with "${seen}"; expected "58 0a" (X\\n), "42 0a" (B\\n) or "41 0a" (A\\n)`,
      start,
    );
  }
  return readObject(input, b0, options, ignoreRest);
}

/**
 * The object after the two format bytes at `input`'s position (`X`, `B` or `A` in `format`),
 * with nothing after it, or with `ignoreRest` what follows left unread: {@linkcode unserialize}'s
 * reading, shared with the file readers.
 */
export function readObject(
  input: Input,
  format: number,
  options: UnserializeOptions,
  ignoreRest = false,
): RValue {
  input.bytes(2, "the format");
  input.setFormat(format === 0x58 ? "xdr" : format === 0x42 ? "binary" : "ascii");
  const reader = new Reader(input, options);
  reader.header();
  let value: RValue;
  try {
    value = reader.item(0);
  } catch (error) {
    if (error instanceof RangeError && !reader.threwFromHook(error)) {
      throw new SerializationError(`cannot read the R object: ${error.message}`, input.pos, {
        cause: error,
      });
    }
    throw error;
  }
  if (!ignoreRest) input.finish();
  return value;
}
