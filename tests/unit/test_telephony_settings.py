"""`voicedesk sip setup` settings: comma-separated lists from the environment, named errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telephony.settings import LiveKitApiSettings, TelephonySettings
from voicedesk.config import SettingsError, load_settings

LIVEKIT = {
    "LIVEKIT_URL": "wss://voicedesk.livekit.cloud",
    "LIVEKIT_API_KEY": "key",
    "LIVEKIT_API_SECRET": "livekit-secret",
}
MINIMAL = {
    **LIVEKIT,
    "SIP_INBOUND_NUMBERS": "+14155550100",
    "SIP_INBOUND_ALLOWED_ADDRESSES": "54.172.60.0/30",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no SIP_*/LIVEKIT_* from the shell, no .env from the checkout."""
    for key in list(os.environ):
        if key.startswith(("SIP_", "LIVEKIT_")) or key == "AGENT_NAME":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> TelephonySettings:
    for key, value in {**MINIMAL, **env}.items():
        monkeypatch.setenv(key, value)
    return TelephonySettings()


def _error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str) -> str:
    for key, value in {**MINIMAL, **env}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as stopped:
        load_settings(TelephonySettings)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert settings.agent_name == "voicedesk"
    assert settings.sip_inbound_trunk_name == "voicedesk-inbound"
    assert settings.sip_outbound_trunk_name == "voicedesk-outbound"
    assert settings.sip_dispatch_rule_name == "voicedesk-inbound"
    assert settings.sip_outbound_address is None and settings.sip_outbound_transport == "auto"
    assert settings.sip_inbound_username is None and settings.sip_inbound_password is None


def test_comma_separated_numbers_and_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        SIP_INBOUND_NUMBERS="+15550100, +15550101,,+15550100",
        SIP_INBOUND_ALLOWED_ADDRESSES=" 54.172.60.0/30 ,54.244.51.3,2001:db8::/32",
    )
    assert settings.sip_inbound_numbers == ["+15550100", "+15550101"]  # trimmed, deduplicated
    assert settings.sip_inbound_allowed_addresses == ["54.172.60.0/30", "54.244.51.3", "2001:db8::/32"]


def test_the_outbound_caller_id_defaults_to_the_first_inbound_number(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, SIP_INBOUND_NUMBERS="+15550100,+15550101")
    assert settings.outbound_caller_id == "+15550100"
    settings = _settings(monkeypatch, SIP_OUTBOUND_NUMBER="+442071838750")
    assert settings.outbound_caller_id == "+442071838750"


@pytest.mark.parametrize("bad", ["555-0100", "+1 555 0100", "15550100", "+05550100", "+1234567890123456"])
def test_a_number_that_is_not_e164_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    err = _error(monkeypatch, capsys, SIP_INBOUND_NUMBERS=f"+15550100,{bad}")
    assert "SIP_INBOUND_NUMBERS is invalid" in err and repr(bad) in err and "E.164" in err
    assert "example: SIP_INBOUND_NUMBERS=+14155550100" in err


def test_no_inbound_number_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "SIP_INBOUND_NUMBERS is not set" in _error(monkeypatch, capsys, SIP_INBOUND_NUMBERS="")
    assert "SIP_INBOUND_NUMBERS is invalid" in _error(monkeypatch, capsys, SIP_INBOUND_NUMBERS=" , ")


def test_a_bad_outbound_number_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "SIP_OUTBOUND_NUMBER is invalid" in _error(monkeypatch, capsys, SIP_OUTBOUND_NUMBER="0800 123")


def test_a_bad_address_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(monkeypatch, capsys, SIP_INBOUND_ALLOWED_ADDRESSES="54.172.60.0/30,sip.twilio.com")
    assert "SIP_INBOUND_ALLOWED_ADDRESSES is invalid" in err and "'sip.twilio.com'" in err


def test_inbound_calls_need_addresses_or_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(monkeypatch, capsys, SIP_INBOUND_ALLOWED_ADDRESSES="")
    assert "SIP_INBOUND_ALLOWED_ADDRESSES is invalid" in err and "SIP_INBOUND_USERNAME" in err
    settings = _settings(
        monkeypatch,
        SIP_INBOUND_ALLOWED_ADDRESSES="",
        SIP_INBOUND_USERNAME="twilio",
        SIP_INBOUND_PASSWORD="pw",
    )
    assert settings.sip_inbound_allowed_addresses == []
    assert (
        settings.sip_inbound_password is not None and settings.sip_inbound_password.get_secret_value() == "pw"
    )


@pytest.mark.parametrize("direction", ["INBOUND", "OUTBOUND"])
def test_user_name_and_password_go_together(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], direction: str
) -> None:
    err = _error(monkeypatch, capsys, **{f"SIP_{direction}_USERNAME": "someone"})
    assert f"set SIP_{direction}_USERNAME and SIP_{direction}_PASSWORD together" in err
    monkeypatch.delenv(f"SIP_{direction}_USERNAME")
    err = _error(monkeypatch, capsys, **{f"SIP_{direction}_PASSWORD": "a-password"})
    assert f"SIP_{direction}_PASSWORD is invalid" in err and "a-password" not in err


@pytest.mark.parametrize(
    "address", ["voicedesk.pstn.twilio.com", "voicedesk.pstn.twilio.com:5061", "203.0.113.7", "sip-gw:5060"]
)
def test_outbound_addresses_accepted(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    assert _settings(monkeypatch, SIP_OUTBOUND_ADDRESS=address).sip_outbound_address == address


@pytest.mark.parametrize(
    "address", ["sip:voicedesk.pstn.twilio.com", "voicedesk.pstn.twilio.com:99999", "https://x.com", "a b"]
)
def test_outbound_addresses_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    assert "SIP_OUTBOUND_ADDRESS is invalid" in _error(monkeypatch, capsys, SIP_OUTBOUND_ADDRESS=address)


def test_transport(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _settings(monkeypatch, SIP_OUTBOUND_TRANSPORT="tls").sip_outbound_transport == "tls"
    assert "SIP_OUTBOUND_TRANSPORT is invalid" in _error(monkeypatch, capsys, SIP_OUTBOUND_TRANSPORT="sctp")


def test_livekit_variables_are_checked_as_the_worker_checks_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "LIVEKIT_URL is invalid" in _error(monkeypatch, capsys, LIVEKIT_URL="livekit.example.com")
    assert "LIVEKIT_API_KEY is not set" in _error(monkeypatch, capsys, LIVEKIT_API_KEY="")


def test_status_needs_only_livekit(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in LIVEKIT.items():
        monkeypatch.setenv(key, value)
    assert LiveKitApiSettings().livekit_url == LIVEKIT["LIVEKIT_URL"]


def test_secrets_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        SIP_INBOUND_USERNAME="twilio",
        SIP_INBOUND_PASSWORD="inbound-secret-pw",
        SIP_OUTBOUND_ADDRESS="voicedesk.pstn.twilio.com",
        SIP_OUTBOUND_USERNAME="livekit",
        SIP_OUTBOUND_PASSWORD="outbound-secret-pw",
    )
    shown = repr(settings) + str(settings.model_dump())
    assert "inbound-secret-pw" not in shown and "outbound-secret-pw" not in shown
    assert "livekit-secret" not in shown
