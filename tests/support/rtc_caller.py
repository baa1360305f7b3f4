"""A caller made of the `livekit` Python SDK: publishes a microphone, hears the agent, reads
the `lk.transcription` text streams. What a web or Flutter client does, minus the UI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from tests.support.audio import SAMPLE_RATE, rms

FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SPEECH_RMS = 300.0  # int16 RMS well above silence and comfort noise


@dataclass
class Transcript:
    participant: str
    text: str
    final: bool
    track_id: str | None
    at: float


@dataclass
class Caller:
    room: rtc.Room = field(default_factory=rtc.Room)
    transcripts: list[Transcript] = field(default_factory=list)
    loud_frames: list[float] = field(default_factory=list)  # monotonic time of each loud agent frame
    agent_joined_at: float | None = None
    agent_audio_at: float | None = None  # the agent's audio track subscribed
    agent_states: list[tuple[float, str]] = field(default_factory=list)  # (when, lk.agent.state)
    speech_sent_at: list[float] = field(default_factory=list)  # when each say() starts leaving the mic
    connected_at: float | None = None
    server_url: str | None = None
    _speech: asyncio.Queue[np.ndarray] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _mic_track_sid: str | None = None

    async def connect(self, url: str, token: str) -> None:
        self.room.on("participant_connected", self._on_participant)
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_attributes_changed", self._on_attributes)
        self.room.register_text_stream_handler("lk.transcription", self._on_text_stream)
        await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        self.server_url = url
        self.connected_at = time.monotonic()
        for p in self.room.remote_participants.values():
            self._on_participant(p)
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        pub = await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._mic_track_sid = pub.sid
        self._tasks.append(asyncio.create_task(self._pump_microphone(source)))

    async def _pump_microphone(self, source: rtc.AudioSource) -> None:
        """A live microphone never stops: silence, or queued speech, frame by frame in real time."""
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        pending = np.zeros(0, dtype=np.int16)
        while True:
            if pending.size == 0 and not self._speech.empty():
                pending = self._speech.get_nowait()
                # what is already queued (up to a second of silence) goes out first
                self.speech_sent_at.append(time.monotonic() + source.queued_duration)
            chunk, pending = (
                (pending[:FRAME_SAMPLES], pending[FRAME_SAMPLES:]) if pending.size else (silence, pending)
            )
            if chunk.size < FRAME_SAMPLES:
                chunk = np.concatenate([chunk, silence[: FRAME_SAMPLES - chunk.size]])
            frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
            await source.capture_frame(frame)

    def say(self, samples: np.ndarray) -> None:
        self._speech.put_nowait(samples)

    def _on_participant(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and self.agent_joined_at is None:
            self.agent_joined_at = time.monotonic()

    def _on_attributes(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if "lk.agent.state" in changed:
            self.agent_states.append((time.monotonic(), changed["lk.agent.state"]))

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and self.agent_audio_at is None:
                self.agent_audio_at = time.monotonic()
            self._tasks.append(
                asyncio.create_task(
                    self._listen(rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1))
                )
            )

    async def _listen(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            if rms(samples) > SPEECH_RMS:
                self.loud_frames.append(time.monotonic())

    def _on_text_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            attrs = reader.info.attributes or {}
            self.transcripts.append(
                Transcript(
                    participant=participant_identity,
                    text=text.strip(),
                    final=attrs.get("lk.transcription_final") == "true",
                    track_id=attrs.get("lk.transcribed_track_id"),
                    at=time.monotonic(),
                )
            )

        self._tasks.append(asyncio.create_task(read()))

    def agent_finals(self) -> list[str]:
        """Final transcripts of what the agent said (not of what it heard from us)."""
        return [t.text for t in self.transcripts if t.final and t.track_id != self._mic_track_sid and t.text]

    def heard_since(self, since: float) -> int:
        return sum(1 for t in self.loud_frames if t >= since)

    def first_heard_since(self, since: float) -> float | None:
        """When the agent was first heard (a loud frame) at or after ``since``."""
        return next((t for t in self.loud_frames if t >= since), None)

    async def wait_for(self, predicate: Callable[[], object], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {within}s waiting for {what}; transcripts={self.transcripts}"
                )
            await asyncio.sleep(0.05)

    def agent_state(self) -> str | None:
        for p in self.room.remote_participants.values():
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
                return p.attributes.get("lk.agent.state")
        return None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.room.disconnect()
