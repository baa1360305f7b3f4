"""The web page as a person uses it, in Debian's Chromium: sign in, Call AI, settings, console.

Everything is real (token server serving web/dist, Auth emulator, LiveKit, the agent worker,
Postgres); the microphone is Chromium's fake capture device playing an espeak-ng WAV once.
Screenshots of the main screens go to docs/screenshots/, which the README shows.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.async_api import expect
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import prompts
from tests.e2e.conftest import CUSTOMER_NUMBER, customer_line
from tests.support.audio import synthesize
from tests.support.browser import chromium
from tests.support.web_call import stored_call, stored_turns, summarized
from tests.support.web_page import DESKTOP_SIZE, PHONE_SIZE, agent_line, microphone, shot, sign_in

QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to five, Monday to Friday."
SUMMARY = {
    "text": json.dumps({"summary": "Asked for the opening hours.", "outcome": "resolved"}),
    "when": "Transcript of the call",
}
UUID = re.compile(r"^[0-9a-f-]{36}$")

pytestmark = pytest.mark.usefixtures("agent_worker")


async def test_call_ai_in_the_browser_then_the_call_in_the_console(
    tmp_path, web_dist, firebase_emulator, live_token_server, provider_emulators, database_url
) -> None:
    provider_emulators.reset()
    provider_emulators.script(stt=[QUESTION], llm=[{"text": ANSWER, "when": QUESTION}, SUMMARY])
    user = firebase_emulator.sign_up(display_name="Wendy Web")
    operator = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(operator.uid, {"operator": True})

    async with chromium(microphone(tmp_path, QUESTION, lead_s=9)) as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        await page.goto(live_token_server.url)
        await expect(page.get_by_test_id("signin-email")).to_be_visible()
        await shot(page, "sign-in")
        await sign_in(page, live_token_server.url, user.email, user.password)

        await page.get_by_test_id("call-button").click()
        status = page.get_by_test_id("call-status")
        await expect(status).to_have_attribute("data-state", "in-call", timeout=15_000)
        # The agent's level meter moves while the greeting plays.
        await page.wait_for_function(
            "() => Number(document.querySelector('[data-testid=level-agent]').dataset.level) > 0",
            timeout=20_000,
        )
        greeting = prompts.greeting("Wendy Web")
        await expect(agent_line(page, greeting)).to_be_visible(timeout=20_000)
        # The caller's words appear as they are recognised, then the agent's answer.
        await expect(
            page.locator(
                '[data-testid="transcript-line"][data-role="user"][data-final="true"]', has_text=QUESTION
            )
        ).to_be_visible(timeout=30_000)
        await expect(agent_line(page, ANSWER)).to_be_visible(timeout=30_000)
        await shot(page, "call")

        await page.get_by_test_id("end-call-button").click()
        await expect(status).to_have_attribute("data-state", "ended", timeout=15_000)

        newest = await newest_call_of(database_url, user.uid)
        row = await stored_call(database_url, newest["room_name"], ready=summarized)
        assert row["status"] == "completed"
        turns = [(t["role"], t["content"]) for t in await stored_turns(database_url, row["id"])]
        assert ("user", QUESTION) in turns and ("assistant", ANSWER) in turns

        # The operator finds the call in the console's history, reads it and plays it.
        console = await (await browser.new_context(viewport=DESKTOP_SIZE)).new_page()
        await sign_in(console, live_token_server.url, operator.email, operator.password)
        await console.goto(f"{live_token_server.url}/#/console")
        await console.get_by_test_id("history-search").fill("opening hours")
        await console.get_by_test_id("history-search-submit").click()
        item = console.locator(f'[data-testid="history-item"][data-call-id="{row["id"]}"]')
        await expect(item).to_be_visible(timeout=15_000)
        await item.get_by_test_id("history-open").click()
        lines = console.get_by_test_id("call-detail-line")
        await expect(lines.filter(has_text=ANSWER)).to_be_visible(timeout=15_000)
        audio = console.get_by_test_id("call-detail-audio")
        await console.wait_for_function(
            "() => { const a = document.querySelector('[data-testid=call-detail-audio]');"
            " return a && a.readyState >= 1 && a.duration > 0; }",
            timeout=15_000,
        )
        duration = await audio.evaluate("a => a.duration")
        assert duration > 3, "a playable recording as long as the call"
        await audio.evaluate("a => { a.muted = true; return a.play(); }")
        await expect(console.locator('[data-testid="call-detail-line"][aria-current="true"]')).to_have_count(
            1, timeout=10_000
        )
        await shot(console, "console-call")


async def newest_call_of(database_url: str, firebase_uid: str) -> dict:
    """The newest call started by this user (the room name the page never shows)."""
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select * from calls where started_by = %s order by started_at desc limit 1", (firebase_uid,)
            )
            row = await cur.fetchone()
    assert row is not None, "no call stored for the user"
    return row


async def test_settings_change_the_next_greeting(
    tmp_path, web_dist, firebase_emulator, live_token_server, provider_emulators, database_url
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[SUMMARY])
    user = firebase_emulator.sign_up(display_name="Gus Greeting")
    custom = "Hello {name}, this is your own greeting from the settings page."
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        await sign_in(page, live_token_server.url, user.email, user.password)
        await page.goto(f"{live_token_server.url}/#/settings")
        await page.get_by_test_id("settings-greeting").fill(custom)
        await page.get_by_test_id("settings-pin").fill("4821")
        await page.get_by_test_id("settings-save").click()
        await expect(page.get_by_test_id("settings-pin-status")).to_have_attribute("data-pin-set", "true")
        await shot(page, "settings")

        await page.goto(f"{live_token_server.url}/#/call")
        await page.get_by_test_id("call-button").click()
        first = page.locator('[data-testid="transcript-line"][data-role="agent"][data-final="true"]').first
        await expect(first).to_contain_text(custom.replace("{name}", "Gus"), timeout=20_000)
        await page.get_by_test_id("end-call-button").click()
        await expect(page.get_by_test_id("call-status")).to_have_attribute(
            "data-state", "ended", timeout=15_000
        )

        # The page shows what was saved, and never the PIN.
        await page.reload()
        await page.goto(f"{live_token_server.url}/#/settings")
        await expect(page.get_by_test_id("settings-greeting")).to_have_value(custom, timeout=10_000)
        await expect(page.get_by_test_id("settings-pin")).to_have_value("")
        await expect(page.get_by_test_id("settings-pin-status")).to_have_attribute("data-pin-set", "true")


async def test_muted_caller_is_not_heard(
    tmp_path, web_dist, firebase_emulator, live_token_server, provider_emulators
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[SUMMARY])
    user = firebase_emulator.sign_up(display_name="Mo Mute")
    async with chromium(microphone(tmp_path, QUESTION, lead_s=6)) as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        await sign_in(page, live_token_server.url, user.email, user.password)
        await page.get_by_test_id("call-button").click()
        await expect(page.get_by_test_id("call-status")).to_have_attribute(
            "data-state", "in-call", timeout=15_000
        )
        await page.get_by_test_id("mute-button").click()
        await expect(page.get_by_test_id("mute-button")).to_have_attribute("aria-pressed", "true")
        muted_at = time.time()
        await page.wait_for_timeout(12_000)  # the question plays into a muted microphone
        heard = [e for e in provider_emulators.log("stt") if e["event"] == "utterance" and e["t"] >= muted_at]
        assert heard == [], f"the agent heard a muted caller: {heard}"
        assert await page.locator('[data-testid="transcript-line"][data-role="user"]').count() == 0
        await page.get_by_test_id("end-call-button").click()


async def test_operator_calls_a_customer_and_follows_the_call(
    tmp_path, web_dist, firebase_emulator, live_token_server, provider_emulators, livekit_server, sip_trunks
) -> None:
    provider_emulators.reset()
    provider_emulators.script(stt=[QUESTION], llm=[{"text": ANSWER, "when": QUESTION}, SUMMARY])
    operator = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(operator.uid, {"operator": True})
    question = synthesize(QUESTION, tmp_path / "question.wav", sample_rate=8000)
    async with customer_line(tmp_path, livekit_server, auto_answer=True) as customer:
        async with chromium() as browser:
            page = await (await browser.new_context(viewport=DESKTOP_SIZE)).new_page()
            await sign_in(page, live_token_server.url, operator.email, operator.password)
            await page.goto(f"{live_token_server.url}/#/console")
            await page.get_by_test_id("outbound-number").fill(CUSTOMER_NUMBER)
            await page.get_by_test_id("outbound-purpose").fill("your renewal next week")
            await page.get_by_test_id("outbound-start").click()
            placed = page.get_by_test_id("outbound-status")
            await expect(placed).to_have_attribute("data-call-id", UUID, timeout=10_000)
            call_id = await placed.get_attribute("data-call-id")
            # Other calls may still be finishing: follow the one just placed.
            active = page.locator(f'[data-testid="active-call"][data-call-id="{call_id}"]')
            await expect(active).to_be_visible(timeout=20_000)
            await active.get_by_test_id("follow-button").click()
            live = page.get_by_test_id("monitor-transcript")
            await expect(page.get_by_test_id("monitor-status")).to_have_attribute(
                "data-state", "listening", timeout=10_000
            )
            customer.play(question)
            # Both sides appear live: what the customer asked and the agent's answer.
            await expect(live).to_contain_text(QUESTION, timeout=30_000)
            await expect(live).to_contain_text(ANSWER, timeout=30_000)
            await shot(page, "console-live")


async def test_a_refused_microphone_is_explained_and_starts_no_call(
    web_dist, firebase_emulator, live_token_server, database_url
) -> None:
    user = firebase_emulator.sign_up(display_name="Nia Nomic")
    async with chromium(allow_microphone=False) as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        await sign_in(page, live_token_server.url, user.email, user.password)
        await page.get_by_test_id("call-button").click()
        error = page.get_by_test_id("call-error")
        await expect(error).to_have_attribute("data-error-kind", "mic-denied", timeout=15_000)
        await expect(error).to_contain_text("microphone", ignore_case=True)
        await shot(page, "call-mic-refused")
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute("select count(*) as n from calls where started_by = %s", (user.uid,))
            assert (await cur.fetchone())["n"] == 0, "no token, no room, no call"


async def test_typed_question_is_answered(
    web_dist, firebase_emulator, live_token_server, provider_emulators
) -> None:
    typed = "Do you ship to Canada?"
    reply = "Yes, we ship to Canada within five working days."
    provider_emulators.reset()
    provider_emulators.script(llm=[{"text": reply, "when": typed}, SUMMARY])
    user = firebase_emulator.sign_up(display_name="Tia Typer")
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        await sign_in(page, live_token_server.url, user.email, user.password)
        await page.get_by_test_id("call-button").click()
        await expect(agent_line(page, prompts.greeting("Tia Typer"))).to_be_visible(timeout=20_000)
        await page.get_by_test_id("chat-input").fill(typed)
        await page.get_by_test_id("chat-input").press("Enter")
        await expect(
            page.locator('[data-testid="transcript-line"][data-role="user"]', has_text=typed)
        ).to_be_visible(timeout=10_000)
        await expect(agent_line(page, reply)).to_be_visible(timeout=20_000)
        await page.get_by_test_id("end-call-button").click()
