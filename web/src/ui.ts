// Small DOM helpers, display formats and the hash router. No framework: elements live in
// index.html and are found by data-testid; lists are built with createElement and textContent
// (never innerHTML).

import type { CallSummary } from "./api";

/** The element with this data-testid; throws if index.html lacks it (a bug, not a user error). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const found = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!found) throw new Error(`missing element data-testid=${id}`);
  return found;
}

type Child = Node | string | null | undefined | false;

/** createElement with attributes (`data-*`, `aria-*`, anything) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | null | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

export function show(node: HTMLElement, visible: boolean): void {
  node.hidden = !visible;
}

/** Put a message in a role=alert / aria-live element, or clear it (hidden when empty). */
export function say(node: HTMLElement, message: string | null): void {
  node.textContent = message ?? "";
  node.hidden = !message;
}

/** "Ada (web)", "+14155550123 (outbound phone)": who a call is with, for lists and headings. */
export function describeCall(call: CallSummary): string {
  const who =
    call.caller_name ??
    (call.direction === "outbound" ? call.to_number : call.from_number) ??
    (call.channel === "web" ? "web caller" : "unknown caller");
  const channel = call.channel === "web" ? "web" : call.direction === "outbound" ? "outbound phone" : "inbound phone";
  return `${who} (${channel})`;
}

export function formatTime(iso: string | null): string {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatClock(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  const m = Math.floor(whole / 60);
  const s = whole % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

export function formatDuration(seconds: number | null): string {
  return seconds === null ? "" : formatClock(seconds);
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

// --- routing -------------------------------------------------------------------------------

export type Route =
  | { page: "call" }
  | { page: "settings" }
  | { page: "console" }
  | { page: "console"; callId: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "settings") return { page: "settings" };
  if (parts[0] === "console") {
    if (parts[1] === "calls" && parts[2]) return { page: "console", callId: decodeURIComponent(parts[2]) };
    return { page: "console" };
  }
  return { page: "call" };
}

export function callDetailHref(id: string): string {
  return `#/console/calls/${encodeURIComponent(id)}`;
}
