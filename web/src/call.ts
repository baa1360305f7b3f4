// The Call AI page: get a token, join a fresh LiveKit room with the microphone, wait for the
// agent, then show levels and the live transcript; mute, end, or type instead of speaking.

import {
  ConnectionState,
  DisconnectReason,
  type LocalAudioTrack,
  MediaDeviceFailure,
  type Participant,
  ParticipantKind,
  type RemoteAudioTrack,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  Track,
  createLocalAudioTrack,
} from "livekit-client";
import { ApiError, api } from "./api";
import { expire } from "./auth";
import { LevelMeter } from "./levels";
import { TRANSCRIPTION_TOPIC, Transcript } from "./transcript";
import { byTestId, say, show } from "./ui";

const AGENT_JOIN_TIMEOUT_MS = 8000;
const CHAT_TOPIC = "lk.chat";
const AGENT_STATE_ATTRIBUTE = "lk.agent.state";

type State = "idle" | "connecting" | "agent-joining" | "in-call" | "reconnecting" | "ended" | "error";

const STATUS: Record<State, string> = {
  idle: "Ready to call",
  connecting: "Connecting…",
  "agent-joining": "Waiting for the agent to join…",
  "in-call": "In call",
  reconnecting: "Connection interrupted, reconnecting…",
  ended: "Call ended",
  error: "Not connected",
};

type ErrorKind =
  | "mic-denied"
  | "mic-missing"
  | "mic-busy"
  | "session-expired"
  | "token-refused"
  | "unavailable"
  | "connect-failed"
  | "no-agent"
  | "connection-lost"
  | "send-failed";

/** The person hung up while the call was still being set up. */
class Cancelled extends Error {}

/** Raised inside start() to stop with a message; anything else is shown as an unexpected error. */
class CallFailure extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

function micFailure(error: unknown): CallFailure {
  switch (MediaDeviceFailure.getFailure(error)) {
    case MediaDeviceFailure.PermissionDenied:
      return new CallFailure(
        "mic-denied",
        "Microphone access was refused. Allow this site to use the microphone (in the address bar or the browser's site settings), then press Retry.",
      );
    case MediaDeviceFailure.NotFound:
      return new CallFailure("mic-missing", "No microphone was found. Connect one and press Retry.");
    case MediaDeviceFailure.DeviceInUse:
      return new CallFailure("mic-busy", "The microphone is in use by another application. Close it and press Retry.");
    default:
      return new CallFailure("mic-denied", "The microphone could not be started. Check the browser's permission and press Retry.");
  }
}

function tokenFailure(error: unknown): CallFailure {
  if (error instanceof ApiError) {
    switch (error.kind) {
      case "session-expired":
        return new CallFailure("session-expired", "Your sign-in has expired. Please sign in again.");
      case "refused":
        return new CallFailure("token-refused", `The server refused to start a call: ${error.message}`);
      case "unavailable":
        return new CallFailure("unavailable", "The call service is unavailable right now. Try again shortly.");
      case "network":
        return new CallFailure("unavailable", error.message);
    }
  }
  return new CallFailure("unavailable", "Could not start a call. Try again shortly.");
}

export class CallPage {
  private readonly status = byTestId("call-status");
  private readonly error = byTestId("call-error");
  private readonly retry = byTestId<HTMLButtonElement>("call-retry");
  private readonly callButton = byTestId<HTMLButtonElement>("call-button");
  private readonly mute = byTestId<HTMLButtonElement>("mute-button");
  private readonly end = byTestId<HTMLButtonElement>("end-call-button");
  private readonly enableAudio = byTestId<HTMLButtonElement>("call-enable-audio");
  private readonly agentState = byTestId("agent-state");
  private readonly chatForm = byTestId<HTMLFormElement>("chat-form");
  private readonly chatInput = byTestId<HTMLInputElement>("chat-input");
  private readonly chatSend = byTestId<HTMLButtonElement>("chat-send");
  private readonly audioSink = byTestId("call-audio");
  private readonly userLevel = new LevelMeter(byTestId<HTMLMeterElement>("level-user"));
  private readonly agentLevel = new LevelMeter(byTestId<HTMLMeterElement>("level-agent"));
  private readonly transcript = new Transcript(byTestId<HTMLOListElement>("transcript"));

  private room: Room | null = null;
  private mic: LocalAudioTrack | null = null;
  private agent: RemoteParticipant | null = null;
  private agentTimer: number | null = null;
  private leaving = false;
  private state: State = "idle";
  private settled: State = "idle";

  constructor() {
    this.callButton.addEventListener("click", () => void this.start());
    this.retry.addEventListener("click", () => void this.start());
    this.end.addEventListener("click", () => void this.hangUp());
    this.mute.addEventListener("click", () => void this.toggleMute());
    this.enableAudio.addEventListener("click", () => void this.room?.startAudio());
    this.chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.sendText();
    });
    this.setState("idle");
  }

  async start(): Promise<void> {
    if (this.room || this.state === "connecting") return;
    this.leaving = false;
    this.transcript.clear();
    this.fail(null);
    this.setState("connecting");
    try {
      // The microphone first: if it is refused, no call (and no agent) is started for nothing.
      try {
        this.mic = await createLocalAudioTrack({ echoCancellation: true, noiseSuppression: true, autoGainControl: true });
      } catch (error) {
        throw micFailure(error);
      }
      this.checkCancelled();
      let connection;
      try {
        connection = await api.token();
      } catch (error) {
        throw tokenFailure(error);
      }
      this.checkCancelled();
      const room = new Room({ adaptiveStream: false, dynacast: false });
      this.room = room;
      this.wire(room);
      this.transcript.listen(room);
      try {
        await room.connect(connection.server_url, connection.participant_token);
        this.checkCancelled();
        await room.localParticipant.publishTrack(this.mic);
      } catch (error) {
        if (error instanceof Cancelled) throw error;
        throw new CallFailure("connect-failed", "Could not connect to the call server. Check your connection and press Retry.");
      }
      this.checkCancelled();
      this.userLevel.watch(room.localParticipant, this.mic);
      this.setState("agent-joining");
      const present = [...room.remoteParticipants.values()].find((p) => p.kind === ParticipantKind.AGENT);
      if (present) this.agentJoined(present);
      else this.agentTimer = window.setTimeout(() => void this.noAgent(), AGENT_JOIN_TIMEOUT_MS);
    } catch (error) {
      await this.stop();
      if (error instanceof Cancelled || this.leaving) return; // hung up while connecting
      const failure =
        error instanceof CallFailure ? error : new CallFailure("connect-failed", "Something went wrong starting the call. Press Retry.");
      this.fail(failure);
      if (failure.kind === "session-expired") await expire(failure.message);
    }
  }

  private checkCancelled(): void {
    if (this.leaving) throw new Cancelled();
  }

  /** End the call (also used on sign-out). */
  async hangUp(): Promise<void> {
    if (!this.room && this.state !== "connecting") return;
    this.leaving = true;
    await this.stop();
    this.setState("ended");
  }

  private wire(room: Room): void {
    room
      .on(RoomEvent.ParticipantConnected, (participant) => {
        if (participant.kind === ParticipantKind.AGENT && !this.agent) this.agentJoined(participant);
      })
      .on(RoomEvent.ParticipantDisconnected, (participant) => {
        if (participant === this.agent) void this.ended("The agent ended the call.");
      })
      .on(RoomEvent.TrackSubscribed, (track, _publication, participant) => this.trackSubscribed(track, participant))
      .on(RoomEvent.TrackUnsubscribed, (track) => {
        track.detach().forEach((element) => element.remove());
      })
      .on(RoomEvent.ParticipantAttributesChanged, (_changed, participant) => {
        if (participant === this.agent) this.showAgentState(participant);
      })
      .on(RoomEvent.AudioPlaybackStatusChanged, () => show(this.enableAudio, !room.canPlaybackAudio))
      .on(RoomEvent.Reconnecting, () => this.setState("reconnecting"))
      .on(RoomEvent.SignalReconnecting, () => this.setState("reconnecting"))
      .on(RoomEvent.Reconnected, () => this.setState(this.settled))
      .on(RoomEvent.Disconnected, (reason) => {
        if (this.leaving || room !== this.room) return;
        // The agent ends a call by deleting its room (or removing the caller from it).
        if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.PARTICIPANT_REMOVED) {
          void this.ended("The agent ended the call.");
        } else void this.lost();
      });
  }

  private trackSubscribed(track: RemoteTrack, participant: RemoteParticipant): void {
    if (track.kind !== Track.Kind.Audio) return;
    const element = track.attach();
    element.dataset.participant = participant.identity;
    this.audioSink.append(element);
    if (participant === this.agent) this.agentLevel.watch(participant, track as RemoteAudioTrack);
  }

  private agentJoined(participant: RemoteParticipant): void {
    this.clearAgentTimer();
    this.agent = participant;
    this.showAgentState(participant);
    const audio = [...participant.audioTrackPublications.values()].find((pub) => pub.audioTrack)?.audioTrack ?? null;
    this.agentLevel.watch(participant, audio);
    this.setState("in-call");
    show(this.enableAudio, this.room ? !this.room.canPlaybackAudio : false);
  }

  private showAgentState(participant: Participant): void {
    const state = participant.attributes[AGENT_STATE_ATTRIBUTE] ?? "";
    this.agentState.textContent = state ? `Agent is ${state}` : "";
    this.agentState.dataset.state = state;
  }

  private async noAgent(): Promise<void> {
    this.agentTimer = null;
    if (this.agent || !this.room) return;
    this.leaving = true;
    await this.stop();
    this.fail(new CallFailure("no-agent", "No agent joined the call. The service may be busy: press Retry to try again."));
  }

  private async ended(message: string): Promise<void> {
    this.leaving = true;
    await this.stop();
    this.setState("ended");
    this.status.textContent = `${STATUS.ended}. ${message}`;
  }

  private async lost(): Promise<void> {
    this.leaving = true;
    await this.stop();
    this.fail(new CallFailure("connection-lost", "The connection to the call was lost. Check your network and press Retry to call again."));
  }

  private async toggleMute(): Promise<void> {
    const room = this.room;
    if (!room) return;
    const muted = this.mute.getAttribute("aria-pressed") === "true";
    await room.localParticipant.setMicrophoneEnabled(muted);
    this.mute.setAttribute("aria-pressed", String(!muted));
    this.mute.textContent = muted ? "Mute" : "Unmute";
  }

  private async sendText(): Promise<void> {
    const text = this.chatInput.value.trim();
    const room = this.room;
    if (!text || !room || this.state !== "in-call") return;
    this.chatSend.disabled = true;
    try {
      await room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
      this.transcript.addFinal("user", text);
      this.chatInput.value = "";
      say(this.error, null);
    } catch {
      say(this.error, "Your message could not be sent. Try again.");
      this.error.dataset.errorKind = "send-failed";
    } finally {
      this.chatSend.disabled = this.state !== "in-call";
      this.chatInput.focus();
    }
  }

  /** Leave the room and release the microphone; idempotent. */
  private async stop(): Promise<void> {
    this.clearAgentTimer();
    const room = this.room;
    this.room = null;
    this.agent = null;
    this.userLevel.stop();
    this.agentLevel.stop();
    if (room) {
      room.unregisterTextStreamHandler(TRANSCRIPTION_TOPIC);
      if (room.state !== ConnectionState.Disconnected) await room.disconnect();
      room.removeAllListeners();
    }
    this.mic?.stop();
    this.mic = null;
    this.audioSink.replaceChildren();
    this.agentState.textContent = "";
    this.agentState.dataset.state = "";
    show(this.enableAudio, false);
  }

  private clearAgentTimer(): void {
    if (this.agentTimer !== null) window.clearTimeout(this.agentTimer);
    this.agentTimer = null;
  }

  private fail(failure: CallFailure | null): void {
    if (!failure) {
      say(this.error, null);
      show(this.retry, false);
      return;
    }
    this.setState("error");
    say(this.error, failure.message);
    this.error.dataset.errorKind = failure.kind;
    show(this.retry, failure.kind !== "session-expired" && failure.kind !== "token-refused");
  }

  private setState(state: State): void {
    this.state = state;
    if (state !== "reconnecting") this.settled = state;
    this.status.dataset.state = state;
    this.status.textContent = STATUS[state];
    const inCall = state === "in-call" || state === "reconnecting";
    const busy = state === "connecting" || state === "agent-joining" || inCall;
    this.callButton.disabled = busy;
    this.callButton.textContent = state === "ended" || state === "error" ? "Call AI again" : "Call AI";
    this.end.disabled = !busy;
    this.mute.disabled = !inCall;
    this.chatInput.disabled = state !== "in-call";
    this.chatSend.disabled = state !== "in-call";
    if (!busy) {
      this.mute.setAttribute("aria-pressed", "false");
      this.mute.textContent = "Mute";
    }
    if (state !== "error") {
      delete this.error.dataset.errorKind;
      if (state !== "ended") show(this.retry, false);
    }
    document.body.dataset.callState = state;
  }
}
