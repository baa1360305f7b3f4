"""The agent's audio track, published as soon as the agent is in the room.

RoomIO publishes it only once the caller has joined: the caller then waits for that publication
and a second negotiation before the greeting can flow. Dispatched as the token is minted, the
agent is usually in the room first; published then, the track is part of what the caller
subscribes to as it joins. It is LiveKit's own room audio output, only started earlier.
"""

from __future__ import annotations

import asyncio

from livekit import rtc
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

SAMPLE_RATE = 24000  # RoomIO's default for the agent's voice
TRACK_NAME = "roomio_audio"  # the name RoomIO gives it: clients see no difference


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

    async def aclose(self) -> None:
        if self._publishing is not None and not self._publishing.done():
            self._publishing.cancel()
        await super().aclose()
