"""The agent's audio track, published as soon as the agent is in the room.

RoomIO publishes it only once the caller has joined: the caller then waits for that publication
and a second negotiation before the greeting can flow. Dispatched as the token is minted, the
agent is usually in the room first; published then, the track is part of what the caller
subscribes to as it joins. It is LiveKit's own room audio output, only started earlier.

It takes audio no faster than it plays (plus a margin): LiveKit's transcript synchroniser, which
hands it the audio, estimates the speaking rate of all it is handed on the call's event loop,
so a burst (a cached greeting, a fast TTS) held back the frames due to be sent by 0.1-0.3 s.
"""

from __future__ import annotations

import asyncio

from livekit import rtc
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

SAMPLE_RATE = 24000  # RoomIO's default for the agent's voice
TRACK_NAME = "roomio_audio"  # the name RoomIO gives it: clients see no difference
# Audio taken ahead of playout. Well above the source's 200 ms queue: a pause (barge-in) takes
# effect as the next frame is taken from the buffer, so the buffer must never run empty.
AHEAD_S = 1.0


class EarlyAudioOutput(_ParticipantAudioOutput):
    """Publishes on ``publish()``; frames wait for the caller's subscription, as with RoomIO."""

    def __init__(self, room: rtc.Room) -> None:
        super().__init__(
            room,
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
            track_name=TRACK_NAME,
        )
        self._publishing: asyncio.Task[None] | None = None

    def publish(self) -> None:
        """Start publishing now (in the background: it completes once someone subscribes)."""
        if self._publishing is None:
            self._publishing = asyncio.create_task(self.start(), name="early-audio-publish")

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)  # waits for the caller's subscription first
        if not self._source_pushed_duration:
            await asyncio.sleep(0)  # the first frame goes out before the rest of a burst comes in
        excess = self._ahead() - AHEAD_S  # at most this frame's length
        if excess > 0 and self._playback_enabled.is_set() and not self._interrupted_event.is_set():
            await asyncio.sleep(excess)

    def _ahead(self) -> float:
        """Seconds of audio taken but not yet played."""
        return self._audio_source.queued_duration + self._pushed_duration - self._source_pushed_duration

    async def aclose(self) -> None:
        if self._publishing is not None and not self._publishing.done():
            self._publishing.cancel()
        await super().aclose()
