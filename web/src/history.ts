// Call history for operators: the list with transcript search, and one call in full (transcript,
// summary, latency, events) with its recording, highlighting the line being heard.

import { ApiError, type CallDetail, type CallSummary, type LatencyStats, type Turn, api } from "./api";
import { expire } from "./auth";
import { byTestId, callDetailHref, describeCall, el, errorMessage, formatClock, formatDuration, formatTime, say } from "./ui";

const PAGE_SIZE = 20;
/** A line stays highlighted this long past its recorded end (clocks and audio drift a little). */
const END_GRACE_SECONDS = 0.5;

async function handle(error: unknown, box: HTMLElement): Promise<void> {
  if (error instanceof ApiError && error.kind === "session-expired") {
    await expire(error.message);
    return;
  }
  say(box, errorMessage(error));
}

/** A search snippet, whose hit words come marked «like this», as text with <mark>s. */
function snippet(text: string): HTMLElement {
  const node = el("p", { class: "snippet", "data-testid": "history-snippet" });
  text.split(/(«[^»]*»)/).forEach((part) => {
    if (part.startsWith("«") && part.endsWith("»")) node.append(el("mark", { text: part.slice(1, -1) }));
    else if (part) node.append(part);
  });
  return node;
}

export class HistoryPanel {
  private readonly form = byTestId<HTMLFormElement>("history-search-form");
  private readonly search = byTestId<HTMLInputElement>("history-search");
  private readonly list = byTestId<HTMLOListElement>("history-list");
  private readonly status = byTestId("history-status");
  private readonly error = byTestId("history-error");
  private readonly more = byTestId<HTMLButtonElement>("history-more");
  private cursor: string | null = null;
  private query = "";
  private generation = 0;

  constructor() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.load(this.search.value.trim());
    });
    this.more.addEventListener("click", () => void this.page(this.generation));
  }

  /** Show the newest calls, or those whose transcript matches `query`. */
  async load(query = this.query): Promise<void> {
    this.generation += 1;
    this.query = query;
    this.cursor = null;
    this.list.replaceChildren();
    await this.page(this.generation);
  }

  private async page(generation: number): Promise<void> {
    const q = this.query;
    say(this.error, null);
    this.more.disabled = true;
    this.list.setAttribute("aria-busy", "true");
    this.status.textContent = q ? `Searching for “${q}”…` : "Loading calls…";
    try {
      const [page, hits] = await Promise.all([
        api.listCalls({ q: q || undefined, limit: PAGE_SIZE, cursor: this.cursor }),
        q && !this.cursor ? api.searchTranscripts(q).catch(() => ({ items: [] })) : Promise.resolve({ items: [] }),
      ]);
      if (generation !== this.generation) return;
      const snippets = new Map<string, string>();
      for (const hit of hits.items) if (!snippets.has(hit.call_id)) snippets.set(hit.call_id, hit.snippet);
      this.list.append(...page.items.map((call) => this.item(call, snippets.get(call.id))));
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      const count = this.list.children.length;
      this.status.textContent = count
        ? q
          ? `${count === 1 ? "1 call mentions" : `${count} calls mention`} “${q}”${page.next_cursor ? " (more below)" : ""}.`
          : ""
        : q
          ? `No call mentions “${q}”.`
          : "No calls yet.";
    } catch (error) {
      if (generation !== this.generation) return;
      this.status.textContent = "";
      await handle(error, this.error);
    } finally {
      if (generation === this.generation) {
        this.more.disabled = false;
        this.list.setAttribute("aria-busy", "false");
      }
    }
  }

  private item(call: CallSummary, hit: string | undefined): HTMLLIElement {
    const facts = [
      formatTime(call.started_at),
      call.status.replace("_", " "),
      call.duration_seconds !== null ? formatDuration(call.duration_seconds) : null,
      call.outcome,
    ].filter(Boolean);
    return el(
      "li",
      { class: "history-item", "data-testid": "history-item", "data-call-id": call.id, "data-status": call.status },
      el("a", { href: callDetailHref(call.id), "data-testid": "history-open", text: describeCall(call) }),
      el("p", { class: "meta", text: facts.join(" · ") }),
      call.summary ? el("p", { class: "summary", text: call.summary }) : null,
      hit ? snippet(hit) : null,
    );
  }
}

interface Line {
  node: HTMLLIElement;
  spoken: boolean;
  start: number | null;
  end: number | null;
}

const LATENCY_LABELS: [string, string][] = [
  ["e2e_ms", "End of speech to agent audio"],
  ["end_of_utterance_ms", "End-of-turn detection"],
  ["stt_ms", "Speech to text"],
  ["llm_ttft_ms", "LLM first token"],
  ["tts_ttfb_ms", "TTS first byte"],
];

export class CallDetailView {
  private readonly section = byTestId("call-detail");
  private readonly heading = byTestId("call-detail-title");
  private readonly facts = byTestId("call-detail-facts");
  private readonly summary = byTestId("call-detail-summary");
  private readonly latency = byTestId<HTMLTableSectionElement>("call-detail-latency");
  private readonly recordingStatus = byTestId("call-detail-recording-status");
  private readonly audio = byTestId<HTMLAudioElement>("call-detail-audio");
  private readonly transcript = byTestId<HTMLOListElement>("call-detail-transcript");
  private readonly events = byTestId<HTMLOListElement>("call-detail-events");
  private readonly error = byTestId("call-detail-error");
  private lines: Line[] = [];
  private current: Line | null = null;
  private callId: string | null = null;
  private relinked = false;

  constructor() {
    const sync = () => this.highlight();
    for (const name of ["timeupdate", "seeked", "play", "pause", "ended"]) this.audio.addEventListener(name, sync);
    this.audio.addEventListener("error", () => void this.relink());
    this.section.hidden = true;
  }

  async open(id: string): Promise<void> {
    this.close();
    this.callId = id;
    this.section.hidden = false;
    this.heading.textContent = "Loading the call…";
    try {
      const call = await api.call(id);
      if (this.callId !== id) return;
      this.render(call);
      if (call.has_recording) await this.loadRecording(id);
      else say(this.recordingStatus, "This call has no recording.");
    } catch (error) {
      if (this.callId !== id) return;
      this.heading.textContent = "Call";
      await handle(error, this.error);
    }
  }

  close(): void {
    this.callId = null;
    this.section.hidden = true;
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.hidden = true;
    this.audio.load();
    this.lines = [];
    this.current = null;
    this.relinked = false;
    for (const box of [this.facts, this.latency, this.transcript, this.events]) box.replaceChildren();
    for (const box of [this.summary, this.error, this.recordingStatus]) say(box, null);
  }

  private render(call: CallDetail): void {
    this.heading.textContent = `Call with ${describeCall(call)}`;
    const facts: [string, string | null][] = [
      ["Status", call.status.replace("_", " ")],
      ["Started", formatTime(call.started_at)],
      ["Answered", formatTime(call.answered_at)],
      ["Ended", formatTime(call.ended_at)],
      ["Duration", formatDuration(call.duration_seconds)],
      ["From", call.from_number],
      ["To", call.to_number],
      ["End reason", call.end_reason],
      ["Outcome", call.outcome],
      ["Record", call.degraded ? "incomplete (degraded)" : null],
    ];
    this.facts.replaceChildren(
      ...facts.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]),
    );
    say(this.summary, call.summary ? `Summary: ${call.summary}` : null);
    this.renderLatency(call.metrics.latency);
    this.renderTurns(call);
    this.events.replaceChildren(
      ...call.events.map((event) =>
        el(
          "li",
          { "data-testid": "call-detail-event", "data-kind": event.kind },
          el("time", { datetime: event.occurred_at, text: formatTime(event.occurred_at) }),
          ` ${event.kind} `,
          Object.keys(event.detail).length ? el("code", { text: JSON.stringify(event.detail) }) : null,
        ),
      ),
    );
  }

  private renderLatency(latency: Record<string, LatencyStats | null>): void {
    const ms = (value: number) => `${Math.round(value)} ms`;
    const rows = LATENCY_LABELS.flatMap(([key, label]) => {
      const stats = latency[key];
      if (!stats) return [];
      return [
        el(
          "tr",
          { "data-stage": key },
          el("th", { scope: "row", text: label }),
          el("td", { text: ms(stats.p50) }),
          el("td", { text: ms(stats.p95) }),
          el("td", { text: String(stats.count) }),
        ),
      ];
    });
    this.latency.replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 4, text: "No latency measured on this call." }))]),
    );
  }

  private renderTurns(call: CallDetail): void {
    const zero = Date.parse(call.recording_started_at ?? call.started_at);
    const offset = (iso: string | null) => (iso ? (Date.parse(iso) - zero) / 1000 : null);
    this.lines = call.turns.map((turn) => this.turnLine(turn, offset(turn.started_at), offset(turn.ended_at)));
    this.transcript.replaceChildren(...this.lines.map((line) => line.node));
    if (!this.lines.length) this.transcript.append(el("li", { class: "empty", text: "No transcript for this call." }));
  }

  private turnLine(turn: Turn, start: number | null, end: number | null): Line {
    const role = turn.role === "assistant" ? "agent" : turn.role;
    const speaker = role === "agent" ? "Agent" : role === "user" ? "Caller" : `Tool ${turn.tool_name ?? ""}`.trim();
    const node = el("li", {
      class: `line line-${role}`,
      "data-testid": "call-detail-line",
      "data-role": role,
      "data-sequence": turn.sequence,
      "data-start": start === null ? null : start.toFixed(2),
    });
    if (start !== null) {
      const seek = el("button", {
        type: "button",
        class: "seek",
        "data-testid": "call-detail-seek",
        "aria-label": `Play from ${formatClock(start)}`,
        text: formatClock(start),
      });
      seek.addEventListener("click", () => {
        if (!this.audio.src) return;
        this.audio.currentTime = Math.max(0, start);
        void this.audio.play().catch(() => undefined);
      });
      node.append(seek, " ");
    }
    node.append(
      el("span", { class: "line-speaker", text: `${speaker}: ` }),
      el("span", { class: "line-text", text: turn.content }),
    );
    if (turn.interrupted) node.append(el("span", { class: "tag", text: " (interrupted)" }));
    return { node, start, end, spoken: role !== "tool" };
  }

  private async loadRecording(id: string): Promise<void> {
    say(this.recordingStatus, "Loading the recording…");
    try {
      const link = await api.recording(id);
      if (this.callId !== id) return;
      this.audio.src = link.url;
      this.audio.hidden = false;
      say(this.recordingStatus, null);
    } catch (error) {
      if (this.callId !== id) return;
      say(this.recordingStatus, null);
      await handle(error, this.recordingStatus);
    }
  }

  /** The signed URL may have expired while the page stayed open: fetch a fresh one, once. */
  private async relink(): Promise<void> {
    if (!this.callId || this.relinked || !this.audio.getAttribute("src")) return;
    this.relinked = true;
    const at = this.audio.currentTime;
    await this.loadRecording(this.callId);
    this.audio.currentTime = at;
  }

  /** Mark the line whose time span holds the audio's current time (aria-current="true"). */
  private highlight(): void {
    const t = this.audio.currentTime;
    let found: Line | null = null;
    for (const line of this.lines) {
      if (line.spoken && line.start !== null && line.start <= t) found = line;
    }
    if (found && found.end !== null && t > found.end + END_GRACE_SECONDS) found = null;
    if (found === this.current) return;
    this.current?.node.removeAttribute("aria-current");
    this.current = found;
    if (found) {
      found.node.setAttribute("aria-current", "true");
      if (!this.audio.paused) found.node.scrollIntoView({ block: "nearest" });
    }
  }
}
