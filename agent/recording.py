"""The call recording: LiveKit's recorder writes both sides as stereo Ogg/Opus; we store it."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import av

from db.storage import StorageSettings, upload_recording

logger = logging.getLogger("voicedesk.agent.recording")

# What AgentSession(record={"audio": True}) writes in the job's session directory.
RECORDING_FILE = "audio.ogg"
# Record audio only: traces, logs and transcripts stay with voicedesk (and off LiveKit Cloud).
RECORD_AUDIO_ONLY = {"audio": True, "traces": False, "logs": False, "transcript": False}


def duration_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / av.time_base


async def store(settings: StorageSettings, call_id: uuid.UUID, session_dir: Path) -> tuple[str, float] | None:
    """Upload the finished recording; None when there is none (recording off, or nothing heard)."""
    path = session_dir / RECORDING_FILE
    if not path.exists() or path.stat().st_size == 0:
        return None
    duration = duration_seconds(path)
    return await upload_recording(settings, call_id, path), duration
