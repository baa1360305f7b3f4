// The operator console: place an outbound call, watch the calls in progress (polled every two
// seconds) and follow one live, and browse the history (history.ts).

import { ApiError, type CallStatus, type CallSummary, api } from "./api";
import { expire } from "./auth";
import { CallDetailView, HistoryPanel } from "./history";
import { Monitor } from "./monitor";
import { byTestId, callDetailHref, describeCall, el, errorMessage, formatTime, say, show } from "./ui";

const POLL_MS = 2000;
/** A call still `pending` after this long never got going; it is not shown as active. */
const PENDING_WINDOW_MS = 10 * 60 * 1000;
const ACTIVE: CallStatus[] = ["in_progress", "ringing", "pending"];

const STATUS_LABEL: Record<CallStatus, string> = {
  pending: "starting",
  ringing: "ringing",
  in_progress: "in progress",
  completed: "ended",
  failed: "failed",
  no_answer: "no answer",
  busy: "busy",
};

export class ConsolePage {
  private readonly main = byTestId("console-main");
  private readonly denied = byTestId("console-denied");
  private readonly outboundForm = byTestId<HTMLFormElement>("outbound-form");
  private readonly number = byTestId<HTMLInputElement>("outbound-number");
  private readonly purpose = byTestId<HTMLTextAreaElement>("outbound-purpose");
  private readonly startButton = byTestId<HTMLButtonElement>("outbound-start");
  private readonly outboundStatus = byTestId("outbound-status");
  private readonly outboundError = byTestId("outbound-error");
  private readonly activeList = byTestId<HTMLUListElement>("active-calls");
  private readonly activeEmpty = byTestId("active-empty");
  private readonly activeError = byTestId("active-error");
  private readonly monitor = new Monitor();
  private readonly history = new HistoryPanel();
  private readonly detail = new CallDetailView();
  private readonly items = new Map<string, HTMLLIElement>();
  private readonly calls = new Map<string, CallSummary>();
  private pollTimer: number | null = null;
  private polling = false;
  private historyLoaded = false;

  constructor() {
    this.outboundForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.placeCall();
    });
  }

  /** Show the console (operators only), with one call's detail open when `callId` is given. */
  enter(operator: boolean, callId: string | null): void {
    show(this.denied, !operator);
    show(this.main, operator);
    if (!operator) {
      this.leave();
      return;
    }
    if (!this.polling) {
      this.polling = true;
      void this.poll();
    }
    if (!this.historyLoaded) {
      this.historyLoaded = true;
      void this.history.load("");
    }
    if (callId) {
      void this.detail.open(callId);
      byTestId("call-detail").scrollIntoView({ block: "start" });
    } else this.detail.close();
  }

  /** Leaving the console (or signing out): stop polling and stop listening to any call. */
  leave(): void {
    this.polling = false;
    if (this.pollTimer !== null) window.clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.historyLoaded = false;
    this.detail.close();
    void this.monitor.stop();
  }

  private async placeCall(): Promise<void> {
    if (!this.outboundForm.reportValidity()) return;
    say(this.outboundError, null);
    this.startButton.disabled = true;
    this.outboundStatus.textContent = "Placing the call…";
    const number = this.number.value.trim();
    try {
      const started = await api.startOutbound(number, this.purpose.value.trim());
      this.outboundStatus.textContent = `The agent is calling ${number} (call ${started.call_id}).`;
      this.outboundStatus.dataset.callId = started.call_id;
      this.purpose.value = "";
      await this.refresh();
    } catch (error) {
      this.outboundStatus.textContent = "";
      if (error instanceof ApiError && error.kind === "session-expired") {
        await expire(error.message);
        return;
      }
      const fieldMessage = error instanceof ApiError ? (error.fields.phone_number ?? error.fields.purpose) : undefined;
      say(this.outboundError, `The call was not placed: ${fieldMessage ?? errorMessage(error)}`);
    } finally {
      this.startButton.disabled = false;
    }
  }

  private async poll(): Promise<void> {
    this.pollTimer = null;
    if (!this.polling) return;
    await this.refresh();
    if (this.polling) this.pollTimer = window.setTimeout(() => void this.poll(), POLL_MS);
  }

  private async refresh(): Promise<void> {
    const since = new Date(Date.now() - PENDING_WINDOW_MS).toISOString();
    try {
      const pages = await Promise.all(
        ACTIVE.map((status) => api.listCalls({ status, limit: 100, since: status === "pending" ? since : undefined })),
      );
      if (!this.polling) return;
      const active = new Map<string, CallSummary>();
      for (const page of pages) for (const call of page.items) if (!call.ended_at) active.set(call.id, call);
      this.render([...active.values()].sort((a, b) => b.started_at.localeCompare(a.started_at)));
      say(this.activeError, null);
    } catch (error) {
      if (error instanceof ApiError && error.kind === "session-expired") {
        this.leave();
        await expire(error.message);
        return;
      }
      say(this.activeError, `Could not refresh the active calls: ${errorMessage(error)}`);
    }
  }

  /** Update the list in place, so focus (e.g. on a Follow button) survives each refresh. */
  private render(active: CallSummary[]): void {
    const keep = new Set(active.map((call) => call.id));
    for (const [id, node] of this.items) {
      if (!keep.has(id)) {
        node.remove();
        this.items.delete(id);
        this.calls.delete(id);
      }
    }
    active.forEach((call, index) => {
      this.calls.set(call.id, call);
      let node = this.items.get(call.id);
      if (!node) {
        node = this.item(call);
        this.items.set(call.id, node);
      }
      node.dataset.status = call.status;
      const status = node.querySelector<HTMLElement>(".status");
      if (status) status.textContent = STATUS_LABEL[call.status];
      if (this.activeList.children[index] !== node) this.activeList.insertBefore(node, this.activeList.children[index] ?? null);
    });
    show(this.activeEmpty, active.length === 0);
  }

  private item(call: CallSummary): HTMLLIElement {
    const follow = el("button", {
      type: "button",
      "data-testid": "follow-button",
      "data-call-id": call.id,
      text: "Follow live",
      "aria-label": `Follow live: the call with ${describeCall(call)}`, // starts with the visible text (WCAG 2.5.3)
    });
    follow.addEventListener("click", () => {
      const current = this.calls.get(call.id) ?? call;
      void this.monitor.follow(current);
    });
    return el(
      "li",
      { class: "active-call", "data-testid": "active-call", "data-call-id": call.id, "data-status": call.status },
      el("span", { class: "who", text: describeCall(call) }),
      el("span", { class: "status", "data-testid": "active-call-status", text: STATUS_LABEL[call.status] }),
      el("span", { class: "meta", text: `since ${formatTime(call.started_at)}` }),
      el("span", { class: "actions" }, follow, el("a", { href: callDetailHref(call.id), text: "Details" })),
    );
  }
}
