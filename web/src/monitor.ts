// Following a live call as an operator: POST /calls/{id}/monitor gives a token for a hidden,
// listen-only participant; join the call's room, play both sides and show the live transcript.

import { ConnectionState, type RemoteTrack, Room, RoomEvent, Track } from "livekit-client";
import { ApiError, type CallSummary, api } from "./api";
import { expire } from "./auth";
import { TRANSCRIPTION_TOPIC, Transcript } from "./transcript";
import { byTestId, describeCall, errorMessage, say, show } from "./ui";

type State = "idle" | "joining" | "listening" | "reconnecting" | "ended" | "error";

export class Monitor {
  private readonly panel = byTestId("monitor-panel");
  private readonly title = byTestId("monitor-title");
  private readonly status = byTestId("monitor-status");
  private readonly error = byTestId("monitor-error");
  private readonly stopButton = byTestId<HTMLButtonElement>("monitor-stop");
  private readonly enableAudio = byTestId<HTMLButtonElement>("monitor-enable-audio");
  private readonly audioSink = byTestId("monitor-audio");
  private readonly transcript = new Transcript(byTestId<HTMLOListElement>("monitor-transcript"), {
    user: "Caller",
    agent: "Agent",
  });
  private room: Room | null = null;
  private callId: string | null = null;

  constructor() {
    this.stopButton.addEventListener("click", () => void this.stop());
    this.enableAudio.addEventListener("click", () => void this.room?.startAudio());
    show(this.panel, false);
  }

  get following(): string | null {
    return this.callId;
  }

  async follow(call: CallSummary): Promise<void> {
    await this.leave();
    this.callId = call.id;
    this.panel.dataset.callId = call.id;
    this.title.textContent = `Following ${describeCall(call)}`;
    this.transcript.clear();
    say(this.error, null);
    show(this.panel, true);
    this.setState("joining", "Joining the call…");
    this.stopButton.focus();
    try {
      const connection = await api.monitor(call.id);
      if (this.callId !== call.id) return;
      const room = new Room({ adaptiveStream: false, dynacast: false });
      this.room = room;
      this.wire(room);
      this.transcript.listen(room);
      await room.connect(connection.server_url, connection.participant_token, { autoSubscribe: true });
      if (this.room !== room) return;
      await room.startAudio().catch(() => undefined);
      show(this.enableAudio, !room.canPlaybackAudio);
      this.setState("listening", "Listening live (the caller and the agent cannot hear you).");
    } catch (error) {
      if (this.callId !== call.id) return;
      await this.leave();
      if (error instanceof ApiError && error.kind === "session-expired") {
        await expire(error.message);
        return;
      }
      const message =
        error instanceof ApiError
          ? error.status === 404 || error.status === 409
            ? `This call cannot be followed: ${error.message}`
            : error.message
          : `Could not join the call: ${errorMessage(error)}`;
      this.setState("error", "Not following");
      say(this.error, message);
    }
  }

  /** Stop following and hide the panel. */
  async stop(): Promise<void> {
    await this.leave();
    this.callId = null;
    delete this.panel.dataset.callId;
    this.setState("idle", "");
    show(this.panel, false);
  }

  private wire(room: Room): void {
    room
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
        if (track.kind === Track.Kind.Audio) this.audioSink.append(track.attach());
      })
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
        track.detach().forEach((element) => element.remove());
      })
      .on(RoomEvent.AudioPlaybackStatusChanged, () => show(this.enableAudio, !room.canPlaybackAudio))
      .on(RoomEvent.Reconnecting, () => this.setState("reconnecting", "Connection interrupted, reconnecting…"))
      .on(RoomEvent.SignalReconnecting, () => this.setState("reconnecting", "Connection interrupted, reconnecting…"))
      .on(RoomEvent.Reconnected, () => this.setState("listening", "Listening live."))
      .on(RoomEvent.Disconnected, () => {
        if (room !== this.room) return;
        void this.leave().then(() => this.setState("ended", "The call has ended."));
      });
  }

  private async leave(): Promise<void> {
    const room = this.room;
    this.room = null;
    if (room) {
      room.unregisterTextStreamHandler(TRANSCRIPTION_TOPIC);
      if (room.state !== ConnectionState.Disconnected) await room.disconnect();
      room.removeAllListeners();
    }
    this.audioSink.replaceChildren();
    show(this.enableAudio, false);
  }

  private setState(state: State, text: string): void {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }
}
