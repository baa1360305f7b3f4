// The live transcript: LiveKit's transcription text streams (topic "lk.transcription") shown as
// lines that grow while someone speaks and settle when the segment is final.
//
// LiveKit Agents sends the caller's speech as one stream per update, each holding the segment's
// whole text so far, and the agent's speech as one stream per segment whose chunks are deltas.
// Both cases come down to: a stream's accumulated text replaces its segment's text. A segment
// is final once a stream for it closes with lk.transcription_final = "true".

import { type Participant, ParticipantKind, type Room, type TextStreamReader } from "livekit-client";
import { el } from "./ui";

export const TRANSCRIPTION_TOPIC = "lk.transcription";
const SEGMENT_ID = "lk.segment_id";
const FINAL = "lk.transcription_final";

export type Speaker = "user" | "agent";

interface Line {
  node: HTMLLIElement;
  text: HTMLSpanElement;
  final: boolean;
}

/** Who spoke, from the participant the stream speaks for: the agent, or anybody else (caller). */
export function speakerOf(room: Room, identity: string): Speaker {
  const participant: Participant | undefined =
    room.localParticipant.identity === identity ? room.localParticipant : room.getParticipantByIdentity(identity);
  if (participant) return participant.kind === ParticipantKind.AGENT ? "agent" : "user";
  return identity.startsWith("agent-") ? "agent" : "user";
}

export class Transcript {
  private readonly lines = new Map<string, Line>();
  private localCount = 0;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly labels: Record<Speaker, string> = { user: "You", agent: "Agent" },
  ) {}

  clear(): void {
    this.lines.clear();
    this.list.replaceChildren();
  }

  /** Show the room's transcription streams in this transcript (until the room is left). */
  listen(room: Room): void {
    room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, from) => {
      void this.read(reader, speakerOf(room, from.identity));
    });
  }

  /** A line that did not come from a stream, e.g. text the user typed. */
  addFinal(speaker: Speaker, text: string): void {
    this.localCount += 1;
    const line = this.line(`local-${this.localCount}`, speaker);
    this.update(line, text, true);
  }

  private async read(reader: TextStreamReader, speaker: Speaker): Promise<void> {
    const attributes = reader.info.attributes ?? {};
    const segment = attributes[SEGMENT_ID] ?? reader.info.id;
    const line = this.line(segment, speaker);
    let text = "";
    try {
      for await (const chunk of reader) {
        text += chunk;
        if (!line.final) this.update(line, text, false);
      }
    } catch {
      // An aborted stream: keep what arrived; a later stream for the segment settles it.
      return;
    }
    // The trailer may add attributes (the agent marks its segment final when it closes).
    const final = (reader.info.attributes ?? {})[FINAL] === "true";
    if (final || !line.final) this.update(line, text || line.text.textContent || "", final || line.final);
  }

  private line(segment: string, speaker: Speaker): Line {
    const existing = this.lines.get(segment);
    if (existing) return existing;
    const text = el("span", { class: "line-text" });
    const node = el(
      "li",
      {
        class: `line line-${speaker}`,
        "data-testid": "transcript-line",
        "data-role": speaker,
        "data-final": "false",
        "data-segment-id": segment,
      },
      el("span", { class: "line-speaker", text: `${this.labels[speaker]}: ` }),
      text,
    );
    node.hidden = true; // until it has words
    const line: Line = { node, text, final: false };
    this.lines.set(segment, line);
    const follow = this.atBottom();
    this.list.append(node);
    if (follow) this.scrollToEnd();
    return line;
  }

  private update(line: Line, text: string, final: boolean): void {
    const follow = this.atBottom();
    line.text.textContent = text;
    line.final = final;
    line.node.dataset.final = String(final);
    line.node.hidden = text.trim() === "";
    if (follow) this.scrollToEnd();
  }

  private atBottom(): boolean {
    const box = this.list;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  private scrollToEnd(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
