// The token server's HTTP API: typed requests and responses, and errors a person can read.
// Every call but /config carries the signed-in user's Firebase ID token.

export interface Voice {
  id: string;
  name: string;
}

export interface AppConfig {
  firebase: { apiKey: string; authDomain: string; projectId: string; [key: string]: string };
  authEmulatorUrl: string | null;
  googleSignIn: boolean;
  voices: Voice[];
}

export interface Connection {
  server_url: string;
  participant_token: string;
}

export interface UserSettings {
  voice_id: string | null;
  greeting: string | null;
  language: string;
  phone_pin_set: boolean;
}

export interface SettingsUpdate {
  voice_id?: string | null;
  greeting?: string | null;
  language?: string;
  phone_pin?: string | null;
}

export type CallStatus = "pending" | "ringing" | "in_progress" | "completed" | "failed" | "no_answer" | "busy";

export interface CallSummary {
  id: string;
  profile_id: string | null;
  caller_name: string | null;
  channel: "web" | "pstn_inbound" | "pstn_outbound";
  direction: "inbound" | "outbound";
  status: CallStatus;
  from_number: string | null;
  to_number: string | null;
  started_at: string;
  answered_at: string | null;
  ended_at: string | null;
  duration_seconds: number | null;
  end_reason: string | null;
  outcome: string | null;
  degraded: boolean;
  summary: string | null;
  has_recording: boolean;
}

export interface CallPage {
  items: CallSummary[];
  next_cursor: string | null;
}

export interface Turn {
  sequence: number;
  role: "user" | "assistant" | "tool";
  content: string;
  started_at: string | null;
  ended_at: string | null;
  interrupted: boolean;
  latency: Record<string, unknown>;
  tool_name: string | null;
}

export interface CallEvent {
  sequence: number;
  kind: string;
  detail: Record<string, unknown>;
  occurred_at: string;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p95: number;
  mean: number;
  max: number;
}

export interface CallDetail extends CallSummary {
  room_name: string;
  recording_duration_seconds: number | null;
  /** Not in the API yet; used instead of started_at as the recording's time zero when present. */
  recording_started_at?: string | null;
  turns: Turn[];
  events: CallEvent[];
  metrics: {
    turns: number;
    latency: Record<string, LatencyStats | null>;
  };
}

export interface TranscriptHit {
  call_id: string;
  sequence: number;
  role: "user" | "assistant" | "tool";
  snippet: string;
  rank: number;
}

export interface RecordingLink {
  url: string;
  expires_at: string;
}

export interface OutboundStarted {
  call_id: string;
  room_name: string;
  status: string;
}

export type ErrorKind = "session-expired" | "refused" | "unavailable" | "network";

/** A failed request, with a message meant for the person using the page. */
export class ApiError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly status = 0,
    /** 422 messages by field name (the last part of FastAPI's `loc`). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Supplies a Firebase ID token; `refresh` forces a new one. Throws when sign-in has expired. */
export type TokenGetter = (refresh: boolean) => Promise<string>;

let getToken: TokenGetter | null = null;

export function useTokens(getter: TokenGetter | null): void {
  getToken = getter;
}

interface ValidationItem {
  loc?: (string | number)[];
  msg?: string;
}

function describe(status: number, body: unknown): { message: string; fields: Record<string, string> } {
  const detail = (body as { detail?: unknown } | null)?.detail;
  const fields: Record<string, string> = {};
  if (typeof detail === "string") return { message: detail, fields };
  if (Array.isArray(detail)) {
    const parts = (detail as ValidationItem[]).map((item) => {
      const loc = (item.loc ?? []).filter((part) => part !== "body" && part !== "query");
      const field = String(loc[loc.length - 1] ?? "");
      const msg = item.msg ?? "invalid value";
      if (field) fields[field] = msg;
      return field ? `${loc.join(".")}: ${msg}` : msg;
    });
    if (parts.length) return { message: parts.join("; "), fields };
  }
  return { message: `the server answered ${status}`, fields };
}

async function send(method: string, path: string, body: unknown, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("network", "Cannot reach the server. Check your connection and try again.");
  }
}

async function bearer(refresh: boolean): Promise<string> {
  if (!getToken) throw new ApiError("session-expired", "You are signed out. Sign in again.");
  try {
    return await getToken(refresh);
  } catch {
    throw new ApiError("session-expired", "Your sign-in has expired. Please sign in again.");
  }
}

/** JSON request; with `auth` (the default) a 401 retries once with a fresh ID token. */
export async function request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  let response = await send(method, path, body, auth ? await bearer(false) : null);
  if (auth && response.status === 401) {
    response = await send(method, path, body, await bearer(true));
  }
  let payload: unknown = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (response.ok) return payload as T;
  const { message, fields } = describe(response.status, payload);
  if (response.status === 401) {
    throw new ApiError("session-expired", "Your sign-in has expired. Please sign in again.", 401);
  }
  if (response.status >= 500) {
    throw new ApiError("unavailable", `The service is unavailable right now (${message}). Try again shortly.`, response.status);
  }
  throw new ApiError("refused", message, response.status, fields);
}

function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const api = {
  config: () => request<AppConfig>("GET", "config", undefined, false),
  token: () => request<Connection>("POST", "token", {}),
  settings: () => request<UserSettings>("GET", "me/settings"),
  saveSettings: (update: SettingsUpdate) => request<UserSettings>("PUT", "me/settings", update),
  listCalls: (params: { status?: CallStatus; q?: string; since?: string; limit?: number; cursor?: string | null }) =>
    request<CallPage>("GET", `calls${query({ ...params })}`),
  searchTranscripts: (q: string, limit = 50) => request<{ items: TranscriptHit[] }>("GET", `calls/search${query({ q, limit })}`),
  call: (id: string) => request<CallDetail>("GET", `calls/${encodeURIComponent(id)}`),
  recording: (id: string) => request<RecordingLink>("GET", `calls/${encodeURIComponent(id)}/recording`),
  monitor: (id: string) => request<Connection>("POST", `calls/${encodeURIComponent(id)}/monitor`, {}),
  startOutbound: (phoneNumber: string, purpose: string) =>
    request<OutboundStarted>("POST", "calls", { phone_number: phoneNumber, purpose }),
};
