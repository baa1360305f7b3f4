"""Ingest test documents the way an operator does: the real `voicedesk kb ingest` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO_ROOT
from tests.support.provider_emulators import ProviderEmulators


def ingest(folder: Path, database_url: str, emulators: ProviderEmulators) -> None:
    """Embeddings come from the OpenAI emulator; a failed ingest fails the test with its stderr."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "voicedesk"), "kb", "ingest", str(folder)],
        env={**os.environ, **emulators.env(), "DATABASE_URL": database_url},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
