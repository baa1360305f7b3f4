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
