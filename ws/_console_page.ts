/**
 * The browser console page: one self-contained HTML document (no CDN, no external file) that
 * talks JSON to {@linkcode serveConsole}'s websocket.
 *
 * @module
 */

/**
 * The websocket subprotocol of the console page: JSON messages, `{type:"eval", id, code}` from
 * the page, `{type:"result", id, text, error}` and `{type:"push", text}` from the server.
 *
 * @example
 * ```ts
 * import { CONSOLE_PROTOCOL, websocket } from "@x/rsock/ws";
 * const page = await websocket("ws://127.0.0.1:7681/ws", { protocols: CONSOLE_PROTOCOL });
 * await page.write(JSON.stringify({ type: "eval", id: 1, code: "1 + 1" }));
 * ```
 */
export const CONSOLE_PROTOCOL = "rsock.console.v1";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
:root { color-scheme: light dark; --bg: #fbfbfa; --fg: #1d1f21; --muted: #6a737d; --line: #e3e3e0;
  --err: #b3261e; --err-bg: #fdecea; --push: #0b5cad; --push-bg: #e8f1fb; --in: #2f6f3e; }
@media (prefers-color-scheme: dark) { :root { --bg: #17191c; --fg: #e6e6e3; --muted: #9aa0a6;
  --line: #2c2f33; --err: #ff8a80; --err-bg: #3a1d1b; --push: #8ab4f8; --push-bg: #1b2636;
  --in: #8fd19e; } }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; background: var(--bg); color: var(--fg);
  font: 14px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
header { display: flex; align-items: center; gap: 12px; padding: 10px 16px;
  border-bottom: 1px solid var(--line); font-family: system-ui, sans-serif; }
header h1 { font-size: 15px; margin: 0; font-weight: 600; }
header .hint { color: var(--muted); font-size: 12px; margin-left: auto; }
#status { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: var(--err-bg);
  color: var(--err); }
#status.on { background: #e6f4ea; color: #1e7b34; }
#log { flex: 1; overflow-y: auto; padding: 12px 16px; margin: 0; }
.entry { white-space: pre-wrap; word-break: break-word; padding: 3px 8px; margin: 2px 0;
  border-radius: 4px; }
.input { color: var(--in); position: relative; padding-left: 26px; }
.input::before { content: "›"; color: var(--muted); position: absolute; left: 10px; }
.result { border-left: 3px solid var(--line); }
.error { color: var(--err); background: var(--err-bg); border-left: 3px solid var(--err); }
.push { color: var(--push); background: var(--push-bg); border-left: 3px solid var(--push); }
.push::before { content: "server: "; font-weight: 600; }
.info { color: var(--muted); font-style: italic; }
form { display: flex; gap: 8px; padding: 10px 16px; border-top: 1px solid var(--line); }
textarea { flex: 1; resize: none; font: inherit; color: inherit; background: transparent;
  border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; min-height: 38px;
  max-height: 40vh; outline: none; }
textarea:focus { border-color: var(--push); }
button { font: 13px system-ui, sans-serif; padding: 0 16px; border-radius: 6px;
  border: 1px solid var(--line); background: var(--push); color: white; cursor: pointer; }
button:disabled { opacity: 0.5; cursor: default; }
`;

// Plain browser JavaScript (no build step): a history of inputs kept in localStorage, Enter to
// run, Shift+Enter for a new line, ArrowUp/ArrowDown at the first/last line to browse history,
// automatic reconnection.
const SCRIPT = `
"use strict";
const log = document.getElementById("log");
const input = document.getElementById("input");
const run = document.getElementById("run");
const status = document.getElementById("status");
const history = JSON.parse(localStorage.getItem("rsock.history") || "[]");
let position = history.length;
let draft = "";
let socket;
let nextId = 1;
const pending = new Map();

function add(kind, text) {
  const entry = document.createElement("div");
  entry.className = "entry " + kind;
  entry.textContent = text;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.appendChild(entry);
  if (atBottom) log.scrollTop = log.scrollHeight;
  return entry;
}

function setStatus(on, text) {
  status.textContent = text;
  status.className = on ? "on" : "";
  run.disabled = !on;
}

function connect() {
  // The page's own token (when the service has one) opens its websocket too.
  const token = new URLSearchParams(location.search).get("token");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" +
    (token === null ? "" : "?token=" + encodeURIComponent(token));
  socket = new WebSocket(url, [${JSON.stringify(CONSOLE_PROTOCOL)}]);
  socket.onopen = () => setStatus(true, "connected");
  socket.onclose = (event) => {
    setStatus(false, "disconnected");
    for (const entry of pending.values()) {
      entry.className = "entry error";
      entry.textContent = "connection closed before the result arrived";
    }
    pending.clear();
    if (event.code !== 1001) setTimeout(connect, 1000);
    else add("info", "the server stopped");
  };
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "result") {
      const entry = pending.get(message.id);
      pending.delete(message.id);
      if (entry === undefined) return;
      entry.className = "entry " + (message.error ? "error" : "result");
      entry.textContent = message.text === "" ? (message.error ? "error" : "undefined") : message.text;
    } else if (message.type === "push") {
      add("push", message.text);
    }
  };
}

function submit() {
  const code = input.value;
  if (code.trim() === "" || socket === undefined || socket.readyState !== WebSocket.OPEN) return;
  add("input", code);
  if (history[history.length - 1] !== code) history.push(code);
  while (history.length > 500) history.shift();
  localStorage.setItem("rsock.history", JSON.stringify(history));
  position = history.length;
  draft = "";
  const id = nextId++;
  const entry = add("result pending", "…");
  entry.dataset.id = String(id);
  pending.set(id, entry);
  socket.send(JSON.stringify({ type: "eval", id, code }));
  input.value = "";
  resize();
}

function resize() {
  input.style.height = "auto";
  input.style.height = input.scrollHeight + 2 + "px";
}

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    submit();
    return;
  }
  const before = input.value.slice(0, input.selectionStart);
  const after = input.value.slice(input.selectionEnd);
  if (event.key === "ArrowUp" && !before.includes("\\n") && position > 0) {
    if (position === history.length) draft = input.value;
    position--;
    input.value = history[position];
    event.preventDefault();
  } else if (event.key === "ArrowDown" && !after.includes("\\n") && position < history.length) {
    position++;
    input.value = position === history.length ? draft : history[position];
    event.preventDefault();
  }
  setTimeout(resize, 0);
});
input.addEventListener("input", resize);
document.querySelector("form").addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
  input.focus();
});
add("info", "Enter runs the code, Shift+Enter adds a line, ↑/↓ browse the history.");
connect();
input.focus();
`;

/**
 * The console page's HTML: an input line with history and multi-line input, results and
 * errors shown distinctly, server pushes shown. It needs nothing outside the serving host.
 *
 * @example
 * ```ts
 * import { consolePage, createServer, staticTextService } from "@x/rsock/ws";
 *
 * const html = consolePage({ title: "my program" });
 * ```
 */
export function consolePage(options: { title?: string } = {}): string {
  const title = escapeHtml(options.title ?? "rsock console");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${title}</h1><span id="status">connecting…</span>
<span class="hint">JavaScript / TypeScript in the running program's session</span></header>
<div id="log" role="log" aria-live="polite"></div>
<form autocomplete="off">
<textarea id="input" rows="1" spellcheck="false" aria-label="code" placeholder="code…"></textarea>
<button id="run" type="submit" disabled>Run</button>
</form>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
