"""What a person sees in Chromium when a call cannot start or goes wrong, and that Retry works.

Each failure is real: an account disabled while its sign-in ages, a token server that requires
a verified email, an agent that is not running until a worker for it starts, and the network
between the page and LiveKit cut by a TCP proxy.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import prompts
from tests.support.agent_worker import start_worker
from tests.support.browser import chromium
from tests.support.firebase_emulator import SignedUpUser
from tests.support.tcp_proxy import TcpProxy
from tests.support.token_server import TokenServer, start_token_server
from tests.support.web_page import PHONE_SIZE, agent_line, shot, sign_in

pytestmark = pytest.mark.usefixtures("agent_worker")

STANDBY_AGENT = "voicedesk-standby"


@pytest.fixture
def token_server_with(tmp_path: Path, live_token_server_env: dict[str, str]) -> Iterator:
    """Start a token server configured like the live one, with some settings changed."""
    servers: list[TokenServer] = []

    def start(**changes: str) -> TokenServer:
        server = start_token_server(
            tmp_path / f"token-server-{len(servers)}", {**live_token_server_env, **changes}
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.service.stop()


@asynccontextmanager
async def signed_in(
    server: TokenServer, user: SignedUpUser, *, fake_clock: bool = False
) -> AsyncIterator[Page]:
    """A phone-sized page of ``server``'s app with ``user`` signed in."""
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE_SIZE)).new_page()
        if fake_clock:
            await page.clock.install()
        await sign_in(page, server.url, user.email, user.password)
        yield page


async def calls_started_by(database_url: str, firebase_uid: str) -> int:
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute("select count(*) as n from calls where started_by = %s", (firebase_uid,))
            return (await cur.fetchone())["n"]


async def expect_greeting(page: Page, name: str) -> None:
    await expect(page.get_by_test_id("call-status")).to_have_attribute(
        "data-state", "in-call", timeout=15_000
    )
    await expect(agent_line(page, prompts.greeting(name))).to_be_visible(timeout=20_000)


async def test_an_expired_sign_in_asks_to_sign_in_again(
    web_dist, firebase_emulator, live_token_server, database_url
) -> None:
    user = firebase_emulator.sign_up(display_name="Eve Expired")
    async with signed_in(live_token_server, user, fake_clock=True) as page:
        # The account is disabled; two hours on, the page's ID token has expired and cannot be renewed.
        firebase_emulator.update_profile(user.uid, disabled=True)
        await page.clock.set_system_time(time.time() + 2 * 3600)  # timers stay as they were
        await page.get_by_test_id("call-button").click()
        notice = page.get_by_test_id("signin-notice")
        await expect(notice).to_contain_text("sign-in has expired", timeout=15_000)
        await expect(page.get_by_test_id("signin-email")).to_be_visible()
        await expect(page.get_by_test_id("call-button")).to_be_hidden()
        await shot(page, "sign-in-expired")
    assert await calls_started_by(database_url, user.uid) == 0


async def test_a_refused_token_is_explained_then_the_call_works_once_allowed(
    web_dist, firebase_emulator, token_server_with, provider_emulators, database_url
) -> None:
    provider_emulators.reset()
    server = token_server_with(REQUIRE_VERIFIED_EMAIL="true")
    user = firebase_emulator.sign_up(display_name="Una Verified")
    async with signed_in(server, user) as page:
        await page.get_by_test_id("call-button").click()
        error = page.get_by_test_id("call-error")
        await expect(error).to_have_attribute("data-error-kind", "token-refused", timeout=15_000)
        await expect(error).to_contain_text("verify your email address")
        await expect(page.get_by_test_id("call-status")).to_have_attribute("data-state", "error")
        await expect(page.get_by_test_id("call-retry")).to_be_hidden()  # retrying cannot help
        await shot(page, "call-token-refused")
        assert await calls_started_by(database_url, user.uid) == 0

        # Once the address is verified, signing in again (a reload renews the ID token) lets them call.
        firebase_emulator.update_profile(user.uid, email_verified=True)
        await page.reload()
        await page.get_by_test_id("call-button").click()
        await expect_greeting(page, "Una Verified")
        await expect(error).to_be_hidden()
        await page.get_by_test_id("end-call-button").click()


async def test_no_agent_is_explained_and_retry_reaches_the_agent_once_it_runs(
    tmp_path, web_dist, firebase_emulator, token_server_with, worker_env, provider_emulators
) -> None:
    provider_emulators.reset()
    server = token_server_with(AGENT_NAME=STANDBY_AGENT, ALLOWED_AGENT_NAMES=STANDBY_AGENT)
    user = firebase_emulator.sign_up(display_name="Ray Retry")
    async with signed_in(server, user) as page:
        await page.get_by_test_id("call-button").click()
        status = page.get_by_test_id("call-status")
        await expect(status).to_have_attribute("data-state", "agent-joining", timeout=15_000)
        error = page.get_by_test_id("call-error")
        await expect(error).to_have_attribute("data-error-kind", "no-agent", timeout=20_000)
        await expect(error).to_contain_text("No agent joined")
        retry = page.get_by_test_id("call-retry")
        await expect(retry).to_be_visible()
        await shot(page, "call-no-agent")

        worker = start_worker(
            tmp_path / "standby",
            {**worker_env, "AGENT_NAME": STANDBY_AGENT, "CALL_JOURNAL_DIR": str(tmp_path / "journal")},
            name="standby-worker",
        )
        try:
            await retry.click()
            await expect_greeting(page, "Ray Retry")
            await expect(error).to_be_hidden()
            await page.get_by_test_id("end-call-button").click()
            await expect(status).to_have_attribute("data-state", "ended", timeout=15_000)
        finally:
            worker.stop()


async def test_a_lost_connection_is_explained_and_retry_calls_again(
    web_dist, firebase_emulator, token_server_with, livekit_server, provider_emulators
) -> None:
    provider_emulators.reset()
    proxy = TcpProxy(livekit_server.port)
    await proxy.start()
    server = token_server_with(LIVEKIT_URL=proxy.url)
    user = firebase_emulator.sign_up(display_name="Lou Lost")
    try:
        async with signed_in(server, user) as page:
            await page.get_by_test_id("call-button").click()
            await expect_greeting(page, "Lou Lost")

            await proxy.cut()
            status = page.get_by_test_id("call-status")
            await expect(status).to_have_attribute("data-state", "reconnecting", timeout=15_000)
            error = page.get_by_test_id("call-error")
            # livekit-client keeps trying for about 45 s before it gives up.
            await expect(error).to_have_attribute("data-error-kind", "connection-lost", timeout=90_000)
            await expect(error).to_contain_text("connection to the call was lost")
            await shot(page, "call-connection-lost")

            await proxy.restore()
            await page.get_by_test_id("call-retry").click()
            await expect_greeting(page, "Lou Lost")
            await page.get_by_test_id("end-call-button").click()
    finally:
        await proxy.cut()
