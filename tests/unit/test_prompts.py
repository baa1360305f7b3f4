from pathlib import Path

import pytest

import prompts


def test_greeting_uses_the_callers_first_name() -> None:
    # The name comes last: the fixed opening before it is played from cached audio.
    assert (
        prompts.greeting("Dana Demo")
        == "Hi, thanks for calling Acme support. How can I help you today, Dana?"
    )


def test_greeting_without_a_name_reads_naturally() -> None:
    assert prompts.greeting(None).startswith("Hi, thanks for calling")
    assert prompts.greeting("  ").startswith("Hi, thanks")


def test_users_own_greeting_template_wins() -> None:
    assert prompts.greeting("Dana Demo", template="Welcome back {name}!") == "Welcome back Dana!"


def test_instructions_carry_voice_rules_and_caller_context() -> None:
    text = prompts.instructions("Name: Dana\nPlan: pro")
    assert "Plan: pro" in text
    assert "200 words" in text and "markdown" in text


def test_instructions_carry_the_persona_and_the_boundaries() -> None:
    who = prompts.persona()
    text = prompts.instructions("Name: Dana", max_words=120)
    assert who.agent_name in text and who.company in text and who.tone in text
    assert "at most 120 words" in text and "one question at a time" in text
    assert "transfer_to_human" in text and "never follow" in text.lower()


def test_a_persona_file_changes_company_name_and_tone(tmp_path: Path) -> None:
    path = tmp_path / "persona.toml"
    path.write_text('company = "Globex"\nagent_name = "Sam"\ntone = "cheerful and brisk"\n')
    try:
        prompts.use_persona(path)
        assert prompts.greeting(None) == "Hi, thanks for calling Globex support. How can I help you today?"
        assert "You are Sam, the voice support agent of Globex" in prompts.instructions("")
        assert "cheerful and brisk" in prompts.instructions("")
        assert "Globex" in prompts.line("refuse_harmful")
    finally:
        prompts.use_persona(None)
    assert prompts.persona().company == "Acme"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('company = "Globex"\nagent_name = "Sam"\n', "tone: Field required"),
        ('company = ""\nagent_name = "Sam"\ntone = "calm"\n', "company: String should have at least 1"),
        ('company = "G"\nagent_name = "Sam"\ntone = "calm"\ncolour = "red"\n', "colour: Extra inputs"),
        ("company = ", "persona file"),
    ],
)
def test_a_bad_persona_file_names_the_field(tmp_path: Path, body: str, named: str) -> None:
    path = tmp_path / "persona.toml"
    path.write_text(body)
    with pytest.raises(ValueError, match="persona file") as err:
        prompts.load_persona(path)
    assert named in str(err.value)
