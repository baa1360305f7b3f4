// Live audio level of one side of a call, shown in a <meter> (0 to 1).
// Measured from the track itself (Web Audio analyser) ten times a second; falls back to the
// level LiveKit reports for the participant when no analyser can run.

import { type LocalAudioTrack, type Participant, type RemoteAudioTrack, createAudioAnalyser } from "livekit-client";

const INTERVAL_MS = 100;

export class LevelMeter {
  private timer: number | null = null;
  private analyser: ReturnType<typeof createAudioAnalyser> | null = null;

  constructor(private readonly meter: HTMLMeterElement) {}

  watch(participant: Participant, track: LocalAudioTrack | RemoteAudioTrack | null): void {
    this.stop();
    if (track) {
      try {
        this.analyser = createAudioAnalyser(track, { cloneTrack: false });
      } catch {
        this.analyser = null;
      }
    }
    this.timer = window.setInterval(() => {
      const measured = this.analyser ? this.analyser.calculateVolume() : 0;
      this.set(Math.max(measured, participant.audioLevel ?? 0));
    }, INTERVAL_MS);
  }

  stop(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
    if (this.analyser) void this.analyser.cleanup();
    this.analyser = null;
    this.set(0);
  }

  private set(level: number): void {
    const value = Math.min(1, Math.max(0, level));
    this.meter.value = value;
    this.meter.dataset.level = value.toFixed(2);
  }
}
