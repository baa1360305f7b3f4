"""A real telephone for end-to-end SIP tests: Debian's baresip 1.0.0, driven over ctrl_tcp.

One ``Softphone`` is one baresip process with its own config dir (``baresip -f``): one account
on 127.0.0.1 without registration, PCMU only, no sound card. The ``aufile`` module is its
microphone (a long silent WAV, or a test's WAV followed by silence), ``aubridge`` a speaker
nobody listens to, and ``sndfile`` dumps what it heard (and sent) to WAV files. The test sends
ctrl_tcp commands (JSON in netstrings) and reads its events, stamped with ``time.monotonic()``
the moment they arrive.

What baresip 1.0.0 does, found by experiment:

- Incoming INVITEs must be addressed to the account's user (``sip_uri``); any other user gets
  ``404 Not Found``. ``tel:`` URIs cannot be dialled, so a REFER target must be a ``sip:`` URI.
- ``answermode=auto`` answers without a ``CALL_INCOMING`` event and cannot wait; here the
  account is ``manual`` and this class answers (``callfind`` + ``accept``) or rejects
  (``hangup``) on ``CALL_INCOMING``, so every incoming call rings (180) first.
- Rejecting is only possible with ``486 Rejected`` (the ``hangup`` command takes no code).
- When the audio source reaches the end of its file the call is closed (reason
  ``"end of file"``): every source here is followed by ``max_call_seconds`` of silence.
- ``ausrc aufile,<path>`` switches the current call's source at run time; the file is read
  completely before the command answers, and playback starts then.
- sndfile opens ``dump-<YYYY-MM-DD-HH-MM-SS>-{enc,dec}.wav`` in ``snd_path`` when the call's
  audio starts (just before ``CALL_ESTABLISHED``); names are unique to the second only, so this
  class renames them to ``<call id>-heard.wav``/``-sent.wav`` as soon as the call is up. The
  WAV header is only completed on close; the samples are read from the ``data`` chunk on.
- Events (``{"event": true, "type", "class", "accountaor", "direction", "peeruri", "id",
  "param"}``): ``CALL_INCOMING`` (manual mode only), ``CALL_RINGING``, ``CALL_ESTABLISHED``,
  ``CALL_RTPESTAB``, ``CALL_CLOSED`` (param: ``"486 Rejected"``, ``"404 Not Found"``,
  ``"Connection reset by peer"`` after a BYE from the far end, ``"Connection reset by user"``
  after our hangup, ``"Call transfered"``), ``CALL_DTMF_START`` (param: the digit),
  ``CALL_DTMF_END``, ``TRANSFER`` (param: the Refer-To URI), ``AUDIO_ERROR``,
  ``CALL_LOCAL_SDP``/``CALL_REMOTE_SDP`` (param offer/answer), ``CALL_RTCP``, ``EXIT``.
- DTMF: ``sndcode <digits>`` sends RFC 4733 telephone-events, one digit every 240 ms; received
  ones arrive as ``CALL_DTMF_START``.
- REFER: the menu module accepts it, emits ``TRANSFER`` and dials the Refer-To target as a new
  call (new id, same From); the transferred call is then closed by the far end's BYE.
- SIP listens on UDP and TCP ``port`` and, always, SIP/TLS on TCP ``port + 1``.
- RTP sockets are bound to the wildcard address (1.0.0 has no setting for that); SIP, ctrl_tcp
  and all traffic stay on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.processes import Service, free_port, start_service, tcp_open

BARESIP = "/usr/bin/baresip"
RATE = 8000  # G.711: what the softphone sends and hears
DTMF_DIGITS = frozenset("0123456789*#ABCD")
DTMF_SECONDS_PER_DIGIT = 0.25  # baresip starts a digit every 240 ms


class SoftphoneError(RuntimeError):
    pass


@dataclass(frozen=True)
class Event:
    """One ctrl_tcp event; ``at`` is the monotonic time it reached the test process."""

    type: str
    at: float
    call_id: str | None
    param: str | None
    raw: dict[str, Any]


@dataclass
class Call:
    """What one call (one SIP dialog, one baresip call id) did, as the events told it."""

    id: str
    direction: str  # "incoming" or "outgoing"
    peer_uri: str
    started_at: float
    established_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    transferred_to: str | None = None  # Refer-To of a REFER the far end sent for this call
    dtmf: str = ""  # digits received as RFC 4733 events
    heard_path: Path | None = None
    sent_path: Path | None = None
    heard_started_at: float | None = None  # monotonic time heard sample 0 was decoded (estimate)
    _data_offset: int | None = None


@dataclass(frozen=True)
class Heard:
    """What the softphone heard: int16 samples at ``rate`` and when sample 0 was heard.

    baresip decodes (and sndfile writes) each RTP packet when it arrives, behind a jitter buffer
    of a few packets, so sample ``i`` was heard at ``started_at + i / rate`` (``at()``): when a
    phone's speaker would have played it. Recording time 0 is the first decoded packet, which
    on loopback is ~50 ms after ``CALL_ESTABLISHED`` (the far end sends RTP from the answer
    on; measured 0.05 s), and audio another baresip ``play()``s is heard ~80 ms later.
    ``started_at`` comes from watching the file grow every 5 ms (the earliest ``t - samples /
    rate``), good to ~10 ms. The mapping assumes the far end sends RTP without gaps, as
    livekit-sip and baresip do: a gap in the stream would shift later audio earlier.
    """

    samples: np.ndarray
    started_at: float | None
    rate: int = RATE

    @property
    def duration(self) -> float:
        return self.samples.size / self.rate

    def at(self, offset_s: float) -> float:
        """Monotonic time at which the audio ``offset_s`` into the recording was heard."""
        if self.started_at is None:
            raise SoftphoneError("recording has no samples yet")
        return self.started_at + offset_s


@dataclass(frozen=True)
class Played:
    """A WAV the softphone started sending at ``started_at`` (monotonic), ``duration`` long."""

    path: Path
    started_at: float
    duration: float

    @property
    def ended_at(self) -> float:
        return self.started_at + self.duration


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def _read_phone_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path}: baresip's aufile needs 8000 Hz mono 16-bit WAV")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def _data_offset(head: bytes) -> int | None:
    """Offset of the samples in a RIFF/WAVE file whose sizes may not be written yet."""
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return None


@dataclass
class Softphone:
    """One baresip UA on ``127.0.0.1:port``; see the module docstring for what it can do."""

    name: str
    user: str
    port: int
    ctrl_port: int
    dir: Path
    service: Service
    answer_delay: float | None  # None: never answer (ring until the far end gives up)
    reject_code: int | None
    max_call_seconds: float
    events: list[Event] = field(default_factory=list)
    calls: dict[str, Call] = field(default_factory=dict)
    _latest: str | None = None
    _sock: socket.socket | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _send_lock: threading.Lock = field(default_factory=threading.Lock)
    _responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)
    _plays: itertools.count[int] = field(default_factory=itertools.count)
    _stopped: threading.Event = field(default_factory=threading.Event)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def sip_uri(self) -> str:
        """What to dial to reach this phone (baresip 404s any other user part)."""
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    # --- the current (most recently started) call ---------------------------------------------

    @property
    def call_state(self) -> Call | None:
        with self._cond:
            return self.calls.get(self._latest) if self._latest else None

    @property
    def established_at(self) -> float | None:
        call = self.call_state
        return call.established_at if call else None

    @property
    def closed_at(self) -> float | None:
        call = self.call_state
        return call.closed_at if call else None

    @property
    def close_reason(self) -> str | None:
        call = self.call_state
        return call.close_reason if call else None

    # --- commands ----------------------------------------------------------------------------

    def command(self, command: str, params: str | None = None, timeout: float = 10) -> str:
        """Run a menu command over ctrl_tcp and return its text; raise if baresip refuses it."""
        token = f"t{next(self._tokens)}"
        body: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            body["params"] = params
        payload = json.dumps(body).encode()
        assert self._sock is not None
        with self._send_lock:
            self._sock.sendall(b"%d:%s," % (len(payload), payload))
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses or self._stopped.is_set(), timeout):
                raise SoftphoneError(f"{self.name}: no answer to {command!r} in {timeout}s\n{self._tail()}")
            response = self._responses.pop(token, None)
        if response is None:
            raise SoftphoneError(f"{self.name}: stopped while running {command!r}")
        if not response.get("ok"):
            raise SoftphoneError(f"{self.name}: {command} {params or ''}: {response.get('data')}")
        return str(response.get("data", ""))

    def call(self, uri: str) -> float:
        """Dial ``uri`` (e.g. ``sip:+15550100@127.0.0.1:5060``); From is ``<sip:user@127.0.0.1>``.

        Returns the monotonic time just before dialling: ``wait_for(..., since=it)`` sees only
        this call's events.
        """
        dialled_at = time.monotonic()
        self.command("dial", uri)
        return dialled_at

    def answer(self, call_id: str | None = None) -> None:
        """Answer a ringing incoming call (the newest one by default)."""
        self._select(call_id)
        self.command("accept")

    def reject(self, call_id: str | None = None) -> None:
        """Refuse a ringing incoming call: baresip 1.0.0 always answers ``486 Rejected``."""
        self._select(call_id)
        self.command("hangup")

    def hangup(self, timeout: float = 5) -> None:
        """End the current call (BYE, or CANCEL while it rings) and wait until it is closed."""
        call = self.call_state
        if call is None or call.closed_at is not None:
            return
        self._select(call.id)
        self.command("hangup")
        self.wait_for("CALL_CLOSED", timeout, call_id=call.id)

    def play(self, wav: Path) -> Played:
        """Send ``wav`` (8 kHz mono 16-bit) from now on, then silence again.

        baresip's aufile closes the call when its file ends, so the WAV is copied with
        ``max_call_seconds`` of silence after it, and the copy becomes the call's audio source.
        """
        samples = _read_phone_wav(wav)
        tail = np.zeros(int(self.max_call_seconds * RATE), dtype=np.int16)
        source = _write_wav(self.dir / f"play-{next(self._plays)}.wav", np.concatenate([samples, tail]))
        call = self.call_state
        if call is not None:
            self._select(call.id)
        self.command("ausrc", f"aufile,{source}")
        return Played(wav, time.monotonic(), samples.size / RATE)

    def send_dtmf(self, digits: str, *, wait: bool = True) -> None:
        """Press keys during the call (RFC 4733 events); ``wait`` until the last has been sent."""
        if not digits or set(digits) - DTMF_DIGITS:
            raise ValueError(f"DTMF digits are 0-9 * # A-D, not {digits!r}")
        self.command("sndcode", digits)
        if wait:
            time.sleep(len(digits) * DTMF_SECONDS_PER_DIGIT)

    def dtmf_received(self) -> str:
        """Digits the far end pressed during the current call."""
        call = self.call_state
        return call.dtmf if call else ""

    # --- events ------------------------------------------------------------------------------

    def wait_for(
        self, event_type: str, timeout: float = 10, *, since: float = 0.0, call_id: str | None = None
    ) -> Event:
        """The first ``event_type`` event at or after ``since`` (monotonic), waiting if needed."""

        def found() -> Event | None:
            for event in self.events:
                if event.type == event_type and event.at >= since and call_id in (None, event.call_id):
                    return event
            return None

        deadline = time.monotonic() + timeout
        with self._cond:
            while (event := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped.is_set() or not self.service.alive():
                    seen = [(e.type, e.param) for e in self.events if e.type != "CALL_RTCP"]
                    raise SoftphoneError(
                        f"{self.name}: no {event_type} within {timeout}s; events: {seen}\n{self._tail()}"
                    )
                self._cond.wait(min(remaining, 0.2))
            return event

    # --- audio heard -------------------------------------------------------------------------

    def heard(self, call_id: str | None = None) -> Heard:
        """What the softphone has heard so far in a call (default: the newest call with audio)."""
        with self._cond:
            if call_id is None:
                candidates = [c for c in self.calls.values() if c.heard_path is not None]
                call = max(candidates, key=lambda c: c.started_at) if candidates else None
            else:
                call = self.calls.get(call_id)
            if call is None or call.heard_path is None:
                raise SoftphoneError(f"{self.name}: no recording (yet) for call {call_id or '(latest)'}")
            path, started_at = call.heard_path, call.heard_started_at
        data = path.read_bytes()
        offset = _data_offset(data[:4096]) or 44
        body = data[offset:]
        return Heard(np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").copy(), started_at)

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop baresip (SIGTERM: it sends BYE for calls still up) and the reader threads."""
        self._stopped.set()
        self.service.stop()
        if self._sock is not None:
            self._sock.close()
        with self._cond:
            self._cond.notify_all()

    def log(self) -> str:
        return self.service.log()

    # --- internals ---------------------------------------------------------------------------

    def _tail(self) -> str:
        return f"--- {self.service.log_path} ---\n{self.log()[-3000:]}"

    def _select(self, call_id: str | None) -> None:
        """Make ``call_id`` baresip's current call: menu commands act on the current call."""
        if call_id is None:
            call = self.call_state
            call_id = call.id if call else None
        if call_id is not None:
            self.command("callfind", call_id)

    def _connect(self) -> None:
        self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5)
        self._sock.settimeout(None)
        threading.Thread(target=self._read, name=f"{self.name}-ctrl", daemon=True).start()
        threading.Thread(target=self._watch_recordings, name=f"{self.name}-rec", daemon=True).start()

    def _read(self) -> None:
        """Split the ctrl_tcp stream into netstrings: ``<len>:<json>,``."""
        assert self._sock is not None
        buf = b""
        while not self._stopped.is_set():
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while (colon := buf.find(b":")) > 0:
                size = int(buf[:colon])
                if len(buf) < colon + size + 2:
                    break
                message = json.loads(buf[colon + 1 : colon + 1 + size])
                buf = buf[colon + size + 2 :]
                self._dispatch(message, time.monotonic())
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any], at: float) -> None:
        with self._cond:
            if message.get("response"):
                self._responses[str(message.get("token"))] = message
            elif message.get("event"):
                self._on_event(
                    Event(str(message.get("type")), at, message.get("id"), message.get("param"), message)
                )
            self._cond.notify_all()

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if event.call_id is None:
            return
        call = self.calls.get(event.call_id)
        if call is None:
            call = Call(
                event.call_id, str(event.raw.get("direction")), str(event.raw.get("peeruri")), event.at
            )
            self.calls[call.id] = call
            self._latest = call.id
        if event.type == "CALL_INCOMING":
            threading.Thread(target=self._on_incoming, args=(call.id,), daemon=True).start()
        elif event.type == "CALL_ESTABLISHED":
            call.established_at = event.at
            self._claim_recording(call)
        elif event.type == "CALL_CLOSED":
            call.closed_at, call.close_reason = event.at, event.param
        elif event.type == "CALL_DTMF_START" and event.param:
            call.dtmf += event.param
        elif event.type == "TRANSFER":
            call.transferred_to = event.param

    def _on_incoming(self, call_id: str) -> None:
        try:
            if self.reject_code is not None:
                self.reject(call_id)
            elif self.answer_delay is not None:
                time.sleep(self.answer_delay)
                self.answer(call_id)
        except SoftphoneError:
            pass  # the caller gave up first, or the phone is stopping: the events show it

    def _claim_recording(self, call: Call) -> None:
        """Give the newest unclaimed sndfile dump to ``call`` under a name no later call reuses."""
        dumps = sorted((self.dir / "audio").glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            return
        heard = dumps[-1]
        call.heard_path = heard.rename(heard.with_name(f"{call.id}-heard.wav"))
        sent = heard.with_name(heard.name.replace("-dec.wav", "-enc.wav"))
        if sent.exists():
            call.sent_path = sent.rename(sent.with_name(f"{call.id}-sent.wav"))

    def _watch_recordings(self) -> None:
        """Time the growth of each live call's dump to know when its sample 0 was heard."""
        while not self._stopped.wait(0.005):
            now = time.monotonic()
            with self._cond:
                for call in self.calls.values():
                    if call.established_at is None or (call.closed_at and now - call.closed_at > 1):
                        continue
                    if call.heard_path is None:
                        if now - call.established_at < 2:
                            self._claim_recording(call)
                        continue
                    try:
                        size = call.heard_path.stat().st_size
                        if call._data_offset is None:
                            with open(call.heard_path, "rb") as f:
                                call._data_offset = _data_offset(f.read(4096))
                    except OSError:
                        continue
                    if call._data_offset is None or size <= call._data_offset:
                        continue
                    estimate = now - (size - call._data_offset) // 2 / RATE
                    if call.heard_started_at is None or estimate < call.heard_started_at:
                        call.heard_started_at = estimate


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports() -> tuple[int, int]:
    """A SIP port and a ctrl_tcp port. baresip 1.0.0 binds SIP on UDP and TCP ``port`` and
    SIP/TLS on TCP ``port + 1`` (no setting turns TLS off), so both must be free."""
    while True:
        sip = free_port()
        if sip < 65535 and all(
            _bindable(p, k) for p, k in [(sip, socket.SOCK_DGRAM), (sip + 1, socket.SOCK_STREAM)]
        ):
            break
    ctrl = free_port()
    while ctrl in (sip, sip + 1):
        ctrl = free_port()
    return sip, ctrl


def _config(sip_port: int, ctrl_port: int, silence: Path, audio_dir: Path) -> str:
    lines = {
        "poll_method": "epoll",
        "sip_listen": f"127.0.0.1:{sip_port}",
        "net_interface": "127.0.0.1",  # the address put in Contact and SDP ("lo" fails here)
        "call_local_timeout": "600",
        "call_max_calls": "4",
        "audio_source": f"aufile,{silence}",
        "audio_player": "aubridge,speaker",  # no sound card: a device nobody reads
        "audio_alert": "aubridge,ringer",
        "ausrc_srate": str(RATE),
        "ausrc_channels": "1",
        "auplay_srate": str(RATE),
        "auplay_channels": "1",
        "jitter_buffer_delay": "5-10",
        "module_path": "/usr/lib/baresip/modules",
        "ctrl_tcp_listen": f"127.0.0.1:{ctrl_port}",
        "snd_path": str(audio_dir),
        "statmode_default": "off",
        "ringback_disabled": "yes",
        "menu_bell": "no",
    }
    modules = [
        ("module", "g711.so"),
        ("module", "aufile.so"),
        ("module", "sndfile.so"),
        ("module", "aubridge.so"),
        ("module_tmp", "account.so"),
        ("module_app", "menu.so"),
        ("module_app", "ctrl_tcp.so"),
    ]
    return "".join(f"{k}\t{v}\n" for k, v in [*lines.items(), *modules])


def start_softphone(
    work_dir: Path,
    name: str,
    *,
    user: str = "caller",
    auto_answer: bool = False,
    answer_delay: float = 0.0,
    reject_code: int | None = None,
    max_call_seconds: float = 600,
    sip_trace: bool = True,
) -> Softphone:
    """Start a softphone named ``name`` (files under ``work_dir/name``) on a free UDP port.

    Incoming calls ring and then: are answered after ``answer_delay`` s (``auto_answer``), are
    rejected (``reject_code``: only 486 is possible with baresip 1.0.0), or ring until the far
    end gives up (neither; a test may still call ``answer()``). ``user`` is the From user of
    its calls (an E.164 number shows the callee a calling number) and the only user it answers
    to. Calls last at most ``max_call_seconds`` (the length of the silence it sends).
    ``sip_trace`` writes every SIP message to the log.
    """
    if reject_code is not None and reject_code != 486:
        raise ValueError("baresip 1.0.0 can only reject an incoming call with 486")
    if reject_code is not None and auto_answer:
        raise ValueError("a softphone either answers or rejects")
    if answer_delay and not auto_answer:
        raise ValueError("answer_delay needs auto_answer=True")
    home = work_dir / name
    conf_dir = home / "baresip"
    audio_dir = home / "audio"
    conf_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(exist_ok=True)
    silence = _write_wav(home / "silence.wav", np.zeros(int(max_call_seconds * RATE), dtype=np.int16))
    (conf_dir / "accounts").write_text(
        f"<sip:{user}@127.0.0.1>;regint=0;answermode=manual;audio_codecs=PCMU;ptime=20\n"
    )
    argv = [BARESIP, "-f", str(conf_dir), *(["-s"] if sip_trace else [])]
    for attempt in range(3):  # another process may take a port between choosing and binding
        sip_port, ctrl_port = _free_ports()
        (conf_dir / "config").write_text(_config(sip_port, ctrl_port, silence, audio_dir))
        try:
            service = start_service(name, argv, home, ready=tcp_open(ctrl_port), timeout=15)
            break
        except RuntimeError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    phone = Softphone(
        name=name,
        user=user,
        port=sip_port,
        ctrl_port=ctrl_port,
        dir=home,
        service=service,
        answer_delay=answer_delay if auto_answer else None,
        reject_code=reject_code,
        max_call_seconds=max_call_seconds,
    )
    try:
        phone._connect()
    except OSError:
        service.stop()
        raise
    return phone
