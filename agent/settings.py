"""Worker configuration: LiveKit, the three providers and the database, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import prompts
from agent.guardrails import Guardrails
from voicedesk.config import CommaList, split_commas

# An ordered provider list written as ``a,b`` in the environment: the first one serves, the next
# ones take over when it fails.
SttProviders = Annotated[list[Literal["deepgram", "openai"]], NoDecode, BeforeValidator(split_commas)]
TtsProviders = Annotated[list[Literal["elevenlabs", "openai"]], NoDecode, BeforeValidator(split_commas)]

# Environments where the benchmark-only FEATURES_OFF switch is accepted.
NON_PRODUCTION_ENVS: frozenset[str] = frozenset({"dev", "test"})
# voicedesk's own per-call work that a benchmark's baseline switches off (FEATURES_OFF), one name
# per feature so each one's cost can be measured alone as well as all of them together.
Feature = Literal["call_record", "retrieval", "recording"]
FeaturesOff = Annotated[list[Feature], NoDecode, BeforeValidator(split_commas)]

# The token server's default VOICE_CHOICES (ElevenLabs premade: Rachel, Bella, Antoni, Adam).
DEFAULT_GREETING_VOICES = (
    "21m00Tcm4TlvDq8ikWAM",
    "EXAVITQu4vr4xnSDxMaL",
    "ErXwobaYiN019PkySvjV",
    "pNInz6obpgDQGcFmaJgB",
)


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    app_env: Literal["dev", "test", "production"] = Field(
        default="production", description="Deployment environment.", examples=["dev"]
    )
    agent_name: str = Field(
        default="voicedesk",
        min_length=1,
        description="Name the worker registers for explicit dispatch; the token server dispatches it.",
        examples=["voicedesk"],
    )
    agent_mode: Literal["pipeline", "realtime"] = Field(
        default="pipeline",
        description="`pipeline`: STT -> LLM -> TTS. `realtime`: the OpenAI Realtime model; speech to speech, "
        "or text with ElevenLabs for the voice when ELEVENLABS_API_KEY is set. Falls back to the pipeline.",
        examples=["realtime"],
    )
    realtime_model: str = Field(
        default="gpt-realtime",
        description="OpenAI Realtime model (AGENT_MODE=realtime).",
        examples=["gpt-realtime"],
    )
    realtime_voice: str = Field(
        default="marin",
        description="The Realtime model's own voice, used when it speaks (no ELEVENLABS_API_KEY).",
        examples=["marin"],
    )

    livekit_url: str = Field(
        pattern=r"^(wss?|https?)://",
        description="LiveKit server URL the worker registers with.",
        examples=["ws://127.0.0.1:7880"],
    )
    livekit_api_key: str = Field(min_length=1, description="LiveKit API key.", examples=["devkey"])
    livekit_api_secret: SecretStr = Field(
        min_length=1, description="LiveKit API secret.", examples=["a-long-random-secret"]
    )

    openai_api_key: SecretStr = Field(
        description="API key of the OpenAI-compatible LLM server.", examples=["sk-..."]
    )
    openai_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="OpenAI-compatible API base URL (Ollama, vLLM, ...). Unset: api.openai.com.",
        examples=["http://127.0.0.1:11434/v1"],
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model name.", examples=["gpt-4o-mini"])

    deepgram_api_key: SecretStr = Field(description="Deepgram API key (speech to text).", examples=["dg-..."])
    deepgram_base_url: str | None = Field(
        default=None,
        pattern=r"^(wss?|https?)://",
        description="Deepgram live transcription endpoint. Unset: Deepgram's cloud.",
        examples=["wss://api.deepgram.com/v1/listen"],
    )
    stt_model: str = Field(default="nova-3", description="Deepgram model.", examples=["nova-3"])
    stt_language: str = Field(default="en-US", description="Language the caller speaks.", examples=["en-US"])

    elevenlabs_api_key: SecretStr | None = Field(
        default=None,
        validate_default=True,
        validation_alias=AliasChoices("ELEVENLABS_API_KEY", "ELEVEN_API_KEY"),
        description="ElevenLabs API key (text to speech). Required in pipeline mode; in realtime mode it "
        "chooses ElevenLabs over the Realtime model's own voice.",
        examples=["sk_..."],
    )
    elevenlabs_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="ElevenLabs API base URL. Unset: ElevenLabs' cloud.",
        examples=["https://api.elevenlabs.io/v1"],
    )
    elevenlabs_voice_id: str = Field(
        default="21m00Tcm4TlvDq8ikWAM",
        min_length=1,
        description="Default ElevenLabs voice.",
        examples=["21m00Tcm4TlvDq8ikWAM"],
    )
    elevenlabs_model: str = Field(
        default="eleven_flash_v2_5", description="ElevenLabs model.", examples=["eleven_flash_v2_5"]
    )
    elevenlabs_stability: float = Field(
        default=0.5, ge=0, le=1, description="Voice stability.", examples=[0.5]
    )
    elevenlabs_similarity_boost: float = Field(
        default=0.75, ge=0, le=1, description="Voice similarity boost.", examples=[0.75]
    )
    elevenlabs_speed: float = Field(
        default=1.0, ge=0.7, le=1.2, description="Speaking speed.", examples=[1.0]
    )

    min_endpointing_delay: float = Field(
        default=0.4,
        ge=0,
        le=5,
        description="Seconds of silence before the turn detector may end the caller's turn.",
        examples=[0.4],
    )
    max_endpointing_delay: float = Field(
        default=2.5,
        ge=0.1,
        le=10,
        description="Longest wait for the caller to go on when the turn seems unfinished.",
        examples=[2.5],
    )
    recording_enabled: bool = Field(
        default=True, description="Record every call (both sides, Ogg/Opus) and store it.", examples=[True]
    )
    recording_consent_message: str = Field(
        default="",
        description="Spoken before the greeting when recording is on (empty: no announcement).",
        examples=["This call is recorded for quality and training."],
    )
    call_journal_dir: Path = Field(
        default=Path("/var/tmp/voicedesk/journal"),
        description="Where call-record writes wait while the database is unreachable.",
        examples=["/var/lib/voicedesk/journal"],
    )
    worker_num_idle_processes: int | None = Field(
        default=None,
        ge=0,
        description="Job processes kept warm. Unset: LiveKit's default (0 in dev, one per core in start).",
        examples=[2],
    )
    worker_http_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of the worker's health/status HTTP server (0: any free port).",
        examples=[8081],
    )
    worker_max_calls: int | None = Field(
        default=None,
        ge=1,
        description="Concurrent calls one worker accepts before LiveKit sends calls elsewhere. "
        "Unset: LiveKit's CPU-based load (full at 70% CPU), which a busy shared host can trip.",
        examples=[8],
    )

    # phone calls -------------------------------------------------------------------------------
    call_policy_file: Path | None = Field(
        default=None,
        description="YAML call policy (business hours, allow/deny lists, concurrency). Unset: admit all.",
        examples=["call_policy.yaml"],
    )
    silence_reprompt_seconds: float | None = Field(
        default=8.0,
        gt=0,
        description="Seconds of silence from both sides before the agent asks if the caller is there.",
        examples=[4.0],
    )
    caller_join_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds the agent waits in a call's room for the caller, who may not have joined "
        "yet (the token server dispatches the agent as it mints the token); then the call is "
        "stored failed, end_reason caller_never_joined.",
        examples=[60.0],
    )
    silence_max_reprompts: int = Field(
        default=2, ge=0, description="Re-prompts before a silent call is ended politely.", examples=[2]
    )
    max_call_seconds: float = Field(
        default=1800,
        gt=0,
        description="Longest call; the agent then says goodbye and hangs up.",
        examples=[1800],
    )
    call_end_warning_seconds: float = Field(
        default=60, ge=0, description="Spoken warning this long before MAX_CALL_SECONDS.", examples=[60]
    )
    human_transfer_to: str | None = Field(
        default=None,
        pattern=r"^(\+[1-9][0-9]{6,14}|(tel|sips?):.+)$",
        description="Where a phone caller asking for a person is transferred (SIP REFER): an E.164 "
        "number or a SIP URI. Unset: the caller is offered a call back instead.",
        examples=["+15550199"],
    )
    pin_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Wrong phone PINs before account data stays locked for the call.",
        examples=[3],
    )
    sip_outbound_trunk_id: str | None = Field(
        default=None,
        description="LiveKit outbound trunk to dial with. Unset: the trunk named SIP_OUTBOUND_TRUNK_NAME.",
        examples=["ST_abc123"],
    )
    sip_outbound_trunk_name: str = Field(
        default="voicedesk-outbound",
        description="Name of the outbound trunk `voicedesk sip setup` creates.",
        examples=["voicedesk-outbound"],
    )
    outbound_ringing_seconds: float = Field(
        default=30,
        ge=1,
        le=80,
        description="How long an outbound call rings before it is no-answer.",
        examples=[30],
    )
    voicemail_action: Literal["leave_message", "hang_up"] = Field(
        default="leave_message",
        description="What the agent does when an outbound call reaches voicemail.",
        examples=["hang_up"],
    )

    # turn-taking and the cached greeting ----
    min_interruption_duration: float = Field(
        default=0.5,
        ge=0,
        description="Seconds of caller speech (VAD) while the agent talks before its audio pauses; "
        "shorter sounds (a click, a breath, a short cough) do not stop it.",
        examples=[0.5],
    )
    false_interruption_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds after a barge-in without any transcribed words (a cough, a noise) "
        "before the paused agent resumes its sentence.",
        examples=[2.0],
    )
    resume_false_interruption: bool = Field(
        default=True,
        description="Resume the agent's paused sentence after a false interruption (else it stays cut off).",
        examples=[True],
    )
    greeting_cache_enabled: bool = Field(
        default=True,
        description="Synthesise the greeting's fixed opening for every voice when a job process "
        "starts, so a call's greeting starts from cached audio instead of waiting for TTS.",
        examples=[True],
    )
    greeting_cache_voices: CommaList = Field(
        default_factory=lambda: list(DEFAULT_GREETING_VOICES),
        description="ElevenLabs voice ids callers may choose (the token server's VOICE_CHOICES), "
        "comma-separated; ELEVENLABS_VOICE_ID is always cached too.",
        examples=["21m00Tcm4TlvDq8ikWAM,EXAVITQu4vr4xnSDxMaL"],
    )
    greeting_cache_dir: Path | None = Field(
        default=Path.home() / ".cache" / "voicedesk" / "greetings",
        description="Where cached greeting audio is kept across restarts (keyed by voice, model, "
        "voice settings and text).",
        examples=["/var/cache/voicedesk/greetings"],
    )
    greeting_cache_prewarm_seconds: float = Field(
        default=0.0,
        ge=0,
        le=8,
        description="How long a starting job process waits for greeting synthesis (only when "
        "GREETING_CACHE_DIR lacks it); 0: not at all, the synthesis finishes in the background and "
        "calls until then use live TTS. LiveKit allows a process 10 s to start.",
        examples=[0.0],
    )

    @field_validator("elevenlabs_api_key")
    @classmethod
    def _voice_for_the_pipeline(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and info.data.get("agent_mode") == "pipeline":
            raise ValueError("required with AGENT_MODE=pipeline, which speaks every reply with ElevenLabs")
        return value

    # guardrails and response style ------------------------------------------------------------
    persona_file: Path | None = Field(
        default=None,
        description="TOML persona (company, agent_name, tone) the prompts use. Unset: prompts/persona.toml.",
        examples=["prompts/persona.toml"],
    )
    guardrails_enabled: bool = Field(
        default=True,
        description="Check each caller turn against the guardrail rules before the LLM sees it, "
        "and neutralise instruction-like text in knowledge-base passages.",
        examples=[True],
    )
    guardrails_file: Path | None = Field(
        default=None,
        description="TOML guardrail rules (refusals, escalation, KB instruction patterns). "
        "Unset: prompts/guardrails.toml.",
        examples=["prompts/guardrails.toml"],
    )
    reply_max_words: int = Field(
        default=prompts.MAX_REPLY_WORDS,
        ge=20,
        le=prompts.MAX_REPLY_WORDS,
        description="Longest LLM reply spoken; a longer one is cut after the last whole sentence that fits.",
        examples=[120],
    )

    @field_validator("persona_file")
    @classmethod
    def _readable_persona(cls, path: Path | None) -> Path | None:
        if path is not None:
            prompts.load_persona(path)  # ValueError naming the file and the field
        return path

    @field_validator("guardrails_file")
    @classmethod
    def _readable_guardrails(cls, path: Path | None) -> Path | None:
        if path is not None:
            Guardrails.load(path)
        return path

    def guardrails(self) -> Guardrails | None:
        """The rule set calls use, None when GUARDRAILS_ENABLED is off."""
        return Guardrails.load(self.guardrails_file) if self.guardrails_enabled else None

    # more than one worker ------------------------------------------------------------------
    worker_overflow_calls: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Calls past WORKER_MAX_CALLS a worker still answers when every worker is full, "
        "only to say all agents are busy and hang up (0: such callers wait in silence). "
        "Needs WORKER_MAX_CALLS.",
        examples=[1],
    )
    worker_drain_timeout: int = Field(
        default=3600,
        ge=0,
        description="Seconds a worker told to stop (SIGTERM) waits for its calls to end before it "
        "cuts them off (0: no limit); keep it above MAX_CALL_SECONDS, below your orchestrator's kill "
        "timeout.",
        examples=[1900],
    )

    # provider fallbacks and faults -------------------------------------------------------------
    stt_providers: SttProviders = Field(
        default=["deepgram", "openai"],
        min_length=1,
        description="Speech-to-text providers in the order they are tried (comma-separated). "
        "`openai` uses OPENAI_API_KEY/OPENAI_BASE_URL and transcribes each utterance after the VAD.",
        examples=["deepgram,openai"],
    )
    tts_providers: TtsProviders = Field(
        default=["elevenlabs", "openai"],
        min_length=1,
        description="Text-to-speech providers in the order they are tried (comma-separated). "
        "`openai` uses OPENAI_API_KEY/OPENAI_BASE_URL.",
        examples=["elevenlabs,openai"],
    )
    openai_stt_model: str = Field(
        default="gpt-4o-mini-transcribe",
        min_length=1,
        description="OpenAI transcription model (STT_PROVIDERS entry `openai`).",
        examples=["gpt-4o-mini-transcribe"],
    )
    openai_tts_model: str = Field(
        default="gpt-4o-mini-tts",
        min_length=1,
        description="OpenAI speech model (TTS_PROVIDERS entry `openai`).",
        examples=["gpt-4o-mini-tts"],
    )
    openai_tts_voice: str = Field(
        default="ash", min_length=1, description="OpenAI TTS voice.", examples=["ash"]
    )
    llm_fallback_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Second OpenAI-compatible LLM endpoint, used when the first fails. Unset (and "
        "LLM_FALLBACK_MODEL unset): no LLM fallback.",
        examples=["https://my-vllm.internal/v1"],
    )
    llm_fallback_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the fallback LLM endpoint. Unset: OPENAI_API_KEY.",
        examples=["sk-..."],
    )
    llm_fallback_model: str | None = Field(
        default=None,
        min_length=1,
        description="Model of the fallback LLM. Unset: LLM_MODEL.",
        examples=["gpt-4.1-mini"],
    )
    stt_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="A speech-to-text provider that has not connected (or, after the caller stopped "
        "speaking, not transcribed) within this is abandoned for the next one.",
        examples=[2.0],
    )
    llm_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="An LLM that sends nothing for this long (first token or mid-answer) is "
        "abandoned for the next one.",
        examples=[3.0],
    )
    tts_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="A text-to-speech provider that sends no audio for this long is abandoned "
        "for the next one.",
        examples=[2.0],
    )
    provider_max_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Times the whole provider list of a kind is tried again after every provider "
        "in it failed, before the caller hears the apology.",
        examples=[1],
    )
    provider_retry_interval_seconds: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="Pause before such a second round (the first is retried after 0.1 s).",
        examples=[0.5],
    )

    # mid-utterance provider drops ----
    stt_replay_seconds: float = Field(
        default=15.0,
        ge=0,
        le=60,
        description="Audio of the caller's utterance in progress kept for the next speech-to-text "
        "provider, replayed to it when one drops or stalls mid-utterance (0: no replay).",
        examples=[15.0],
    )

    # benchmarks only ----------------------------------------------------------------------------
    features_off: FeaturesOff = Field(
        default_factory=list,
        description="Dev and test only, for benchmarks' baseline: voicedesk's own per-call work to "
        "skip, comma-separated: `call_record` (no calls/call_turns/call_events rows, journal or "
        "summary), `retrieval` (no knowledge-base search; the tool answers 'not found'), "
        "`recording` (as RECORDING_ENABLED=false). Refused unless APP_ENV is dev or test.",
        examples=["call_record,retrieval,recording"],
    )

    @field_validator("features_off", mode="before")
    @classmethod
    def _features_off(cls, value: object, info: ValidationInfo) -> object:
        # A list of names rather than one BENCH_BASELINE flag: the benchmark switches all three
        # off for its baseline, and any one can be switched off alone to see its own cost.
        names = split_commas(value)
        if not names:
            return []
        app_env = info.data.get("app_env")
        if app_env not in NON_PRODUCTION_ENVS:
            raise ValueError(
                f"FEATURES_OFF is set but APP_ENV={app_env or '?'}: switching off the call record, "
                "knowledge-base retrieval or recording is for benchmarks only, so it is refused "
                "unless APP_ENV is dev or test. Unset FEATURES_OFF or set APP_ENV=dev."
            )
        return names

    @model_validator(mode="after")
    def _recording_off(self) -> AgentSettings:
        # One place instead of every use of recording_enabled (consent notice, recorder, upload).
        if "recording" in self.features_off:
            self.recording_enabled = False
        return self

    @property
    def keeps_call_record(self) -> bool:
        """False under FEATURES_OFF=call_record: no rows, journal or summary for any call."""
        return "call_record" not in self.features_off

    @property
    def uses_retrieval(self) -> bool:
        """False under FEATURES_OFF=retrieval: no early or tool-driven knowledge-base search."""
        return "retrieval" not in self.features_off

    @field_validator("stt_providers", "tts_providers")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"a provider is listed twice: {','.join(value)}")
        return value

    @model_validator(mode="after")
    def _fallback_llm_differs(self) -> AgentSettings:
        same_url = (self.llm_fallback_base_url or self.openai_base_url) == self.openai_base_url
        same_model = (self.llm_fallback_model or self.llm_model) == self.llm_model
        if (self.llm_fallback_base_url or self.llm_fallback_model) and same_url and same_model:
            raise ValueError(
                "LLM_FALLBACK_BASE_URL/LLM_FALLBACK_MODEL name the primary LLM itself; "
                "set a different endpoint or model (or neither)"
            )
        return self

    @property
    def has_llm_fallback(self) -> bool:
        return bool(self.llm_fallback_base_url or self.llm_fallback_model)

    @property
    def transfer_uri(self) -> str | None:
        """SIP REFER wants a URI: a bare E.164 number becomes tel:+..."""
        if self.human_transfer_to and self.human_transfer_to.startswith("+"):
            return f"tel:{self.human_transfer_to}"
        return self.human_transfer_to
