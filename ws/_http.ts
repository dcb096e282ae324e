/**
 * The small HTTP service: R `websockets`' `static_file_service`, `static_text_service`,
 * `http_vars` and `http_response`, plus a directory service that cannot escape its folder.
 *
 * @module
 */

import { MessageTooLargeError } from "../_internal/errors.ts";
import { concatBytes } from "../_internal/bytes.ts";

/** A plain HTTP handler, as `webpage`/`static` take. */
export type HttpHandler = (request: Request) => Promise<Response>;

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  ico: "image/x-icon",
  wasm: "application/wasm",
  pdf: "application/pdf",
};

/**
 * The Content-Type for a file name by its extension; `application/octet-stream` otherwise.
 *
 * @example
 * ```ts
 * import { contentTypeFor } from "@x/rsock/ws";
 * contentTypeFor("index.html"); // "text/html; charset=utf-8"
 * ```
 */
export function contentTypeFor(name: string): string {
  const dot = name.lastIndexOf(".");
  const ext = dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/**
 * A well-formed HTTP response, like R's `http_response(socket, status, content_type, content)`.
 *
 * @example
 * ```ts
 * import { createServer, httpResponse } from "@x/rsock/ws";
 *
 * await using server = createServer({
 *   port: 0,
 *   webpage: () => httpResponse(200, "text/plain", "hello\n"),
 * });
 * ```
 */
export function httpResponse(
  status: number,
  contentType = "text/html; charset=utf-8",
  content: string | Uint8Array = "",
): Response {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(`HTTP status must be an integer from 200 to 599; got ${status}`);
  }
  const body = status === 204 || status === 304
    ? null
    : content as string | Uint8Array<ArrayBuffer>;
  return new Response(body, { status, headers: { "content-type": contentType } });
}

/**
 * Serves one text for every request, like R's `static_text_service(text)`.
 *
 * @example
 * ```ts
 * import { createServer, staticTextService } from "@x/rsock/ws";
 *
 * await using server = createServer({ port: 0, webpage: staticTextService("<h1>hi</h1>") });
 * ```
 */
export function staticTextService(
  text: string,
  contentType = "text/html; charset=utf-8",
): HttpHandler {
  return () => Promise.resolve(httpResponse(200, contentType, text));
}

/**
 * Serves one file for every request, like R's `static_file_service(path)`: the file is read
 * again whenever its modification time or size changed, so edits show on reload.
 *
 * @example
 * ```ts
 * import { createServer, staticFileService } from "@x/rsock/ws";
 *
 * await using server = createServer({ port: 0, webpage: staticFileService("./index.html") });
 * ```
 */
export function staticFileService(path: string, contentType?: string): HttpHandler {
  const type = contentType ?? contentTypeFor(path);
  let cached: { mtime: number; size: number; bytes: Uint8Array } | undefined;
  return async () => {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return notFound();
      throw error;
    }
    const mtime = info.mtime?.getTime() ?? -1;
    if (cached === undefined || cached.mtime !== mtime || cached.size !== info.size) {
      cached = { mtime, size: info.size, bytes: await Deno.readFile(path) };
    }
    return httpResponse(200, type, cached.bytes);
  };
}

/** Options for {@linkcode staticDirectoryService}. */
export interface DirectoryServiceOptions {
  /** The file served for a directory request. @default {"index.html"} */
  index?: string;
  /** URL path prefix stripped before lookup, e.g. `"/static"`. @default {""} */
  prefix?: string;
  /**
   * Files and folders whose name starts with `.` (`/.env`, `/.git/config`), in the request
   * path or in the real path the file resolves to: `"ignore"` answers 404 as if they did not
   * exist, as the common static servers do, since they often hold secrets; `"allow"` serves
   * them. @default {"ignore"}
   */
  dotfiles?: "ignore" | "allow";
}

function notFound(): Response {
  return httpResponse(404, "text/plain; charset=utf-8", "Not Found\n");
}

function forbidden(why: string): Response {
  return httpResponse(403, "text/plain; charset=utf-8", `Forbidden: ${why}\n`);
}

/**
 * Turns a request path into safe path segments, or a reason to refuse. Every segment is
 * percent-decoded once and then checked, so `%2e%2e`, `%2f` and `%5c` cannot smuggle a `..`,
 * a separator or an absolute path past the check.
 */
function safeSegments(rawPath: string): string[] | string {
  const segments: string[] = [];
  for (const raw of rawPath.split("/")) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return "bad percent-encoding in the path";
    }
    if (segment === "" || segment === ".") continue;
    if (segment === "..") return "the path leaves the served folder";
    if (/[/\\\0]/.test(segment) || /^[A-Za-z]:/.test(segment)) {
      return "an encoded separator or absolute path in a path segment";
    }
    segments.push(segment);
  }
  return segments;
}

/**
 * Serves the files under `root`, and can never serve anything outside it: `..` and `%2e%2e`
 * segments, encoded separators and absolute paths are refused with 403, and a file whose real
 * path (after symlinks) is outside `root` is refused too. Dotfiles (`/.env`, `/.git/config`)
 * are answered 404 unless `dotfiles: "allow"`. Files are read on every request.
 *
 * @example
 * ```ts
 * import { createServer, staticDirectoryService } from "@x/rsock/ws";
 *
 * await using server = createServer({ port: 0, webpage: staticDirectoryService("./public") });
 * ```
 */
export function staticDirectoryService(
  root: string,
  options: DirectoryServiceOptions = {},
): HttpHandler {
  const index = options.index ?? "index.html";
  const dotfiles = options.dotfiles ?? "ignore";
  if (dotfiles !== "ignore" && dotfiles !== "allow") {
    throw new TypeError(`dotfiles must be "ignore" or "allow"; got ${JSON.stringify(dotfiles)}`);
  }
  const hidden = (segments: readonly string[]) =>
    dotfiles === "ignore" && segments.some((segment) => segment.startsWith("."));
  const prefix = (options.prefix ?? "").replace(/\/+$/, "");
  let realRoot: Promise<string> | undefined;
  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return httpResponse(405, "text/plain; charset=utf-8", "Method Not Allowed\n");
    }
    realRoot ??= Deno.realPath(root);
    const base = await realRoot;
    // Request.url is already normalized by the URL parser; the raw target can still hold
    // encoded dots, which safeSegments decodes and refuses.
    let path = new URL(request.url).pathname;
    if (prefix !== "") {
      if (path !== prefix && !path.startsWith(prefix + "/")) return notFound();
      path = path.slice(prefix.length);
    }
    const segments = safeSegments(path);
    if (typeof segments === "string") return forbidden(segments);
    if (hidden(segments)) return notFound();
    const inside = (path: string) =>
      path === base || path.startsWith(base.endsWith("/") ? base : base + "/");
    let target = [base, ...segments].join("/");
    let real: string;
    try {
      real = await Deno.realPath(target);
      // Checked before anything else touches it: rsock may have no read permission there.
      if (!inside(real)) return forbidden("the file's real path is outside the served folder");
      if ((await Deno.stat(real)).isDirectory) {
        target = `${real}/${index}`;
        real = await Deno.realPath(target);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
        return notFound();
      }
      throw error;
    }
    // The index file may be a symlink out of the folder too.
    if (!inside(real)) return forbidden("the file's real path is outside the served folder");
    // A plain name can be a symlink to a dotfile in the folder (`config -> .env`).
    if (hidden(real.slice(base.length).split("/"))) return notFound();
    const info = await Deno.stat(real);
    if (!info.isFile) return notFound();
    const body = request.method === "HEAD" ? "" : await Deno.readFile(real);
    return httpResponse(200, contentTypeFor(real), body);
  };
}

function tooLarge(size: number, limit: number): MessageTooLargeError {
  return new MessageTooLargeError(
    `request body of ${size} bytes exceeds the ${limit}-byte limit of httpVars`,
    limit,
  );
}

/** Reads a request body, refusing it as soon as it passes `limit` bytes. */
async function readBounded(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel();
        throw tooLarge(size, limit);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks, size);
}

/** Variables from a query string or form body: repeated names collect into an array. */
export type HttpVars = Record<string, string | File | (string | File)[]>;

/**
 * The request's variables, like R's `http_vars(socket, header)`: the query string for any
 * method, plus an `application/x-www-form-urlencoded` or `multipart/form-data` POST body
 * (uploaded files as `File`). A body over `maxBodySize` bytes (16 MiB by default, counted as
 * it streams in, so a chunked body without `content-length` is bounded too) is a
 * `MessageTooLargeError`; answer it with 413.
 *
 * @example
 * ```ts
 * import { createServer, httpResponse, httpVars } from "@x/rsock/ws";
 *
 * await using server = createServer({
 *   port: 0,
 *   webpage: async (request) => {
 *     const vars = await httpVars(request);
 *     return httpResponse(200, "text/plain", `hello ${vars.name}\n`);
 *   },
 * });
 * ```
 */
export async function httpVars(
  request: Request,
  options: { maxBodySize?: number } = {},
): Promise<HttpVars> {
  const vars: HttpVars = {};
  const add = (name: string, value: string | File) => {
    const old = vars[name];
    if (old === undefined) vars[name] = value;
    else if (Array.isArray(old)) old.push(value);
    else vars[name] = [old, value];
  };
  for (const [name, value] of new URL(request.url).searchParams) add(name, value);
  if (request.method !== "POST" && request.method !== "PUT") return vars;
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (
    !type.startsWith("application/x-www-form-urlencoded") &&
    !type.startsWith("multipart/form-data")
  ) {
    return vars;
  }
  const limit = options.maxBodySize ?? 16_777_216;
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > limit) throw tooLarge(length, limit);
  const body = await readBounded(request, limit);
  const form = await new Response(body, { headers: { "content-type": type } }).formData();
  for (const [name, value] of form) add(name, value);
  return vars;
}
