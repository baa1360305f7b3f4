"""Accessibility of the web page in Debian's Chromium: axe-core, a phone-sized layout, the keyboard.

Each main screen (sign-in, Call AI idle and in a call, Settings, the operator console with its
history and a call open) is checked with axe-core's WCAG 2.1 A/AA rules at a phone and a desktop
size, and for horizontal overflow and touch-target size on a phone. A person using only the
keyboard signs in, calls, types a question, hears the answer and ends the call. Everything is
real, as in test_browser.py: token server, Auth emulator, LiveKit, the agent worker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, expect

import prompts
from tests.support.browser import chromium
from tests.support.processes import REPO_ROOT
from tests.support.web_page import DESKTOP_SIZE, PHONE_SIZE, agent_line, sign_in

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
QUESTION = "Can I pay by bank transfer?"
ANSWER = "Yes, bank transfers are welcome; the details are on your invoice."
SUMMARY = {
    "text": json.dumps({"summary": "Asked about paying by bank transfer.", "outcome": "resolved"}),
    "when": "Transcript of the call",
}
MIN_TARGET_PX = 44  # WCAG 2.5.5 target size (enhanced); Apple and Google recommend the same
# Where each primary control lives: it must be visible and large enough on that screen.
PRIMARY_CONTROLS = {
    "call idle": ["call-button", "mute-button", "end-call-button"],
    "call in a call": ["call-button", "mute-button", "end-call-button"],
    "settings": ["settings-save"],
    "console": ["outbound-start"],
}
MAX_TABS = 25

pytestmark = pytest.mark.usefixtures("agent_worker")

Check = Callable[[Page, str], Awaitable[None]]


async def new_page(browser: Browser, viewport: dict[str, int], color_scheme: str = "light") -> Page:
    # The page's CSP (script-src 'self') would refuse the injected axe-core script.
    context = await browser.new_context(viewport=viewport, color_scheme=color_scheme, bypass_csp=True)
    return await context.new_page()


async def axe_violations(page: Page) -> list[dict]:
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        assert AXE.exists(), "axe-core is missing: run `npm ci` (or `make web`)"
        await page.add_script_tag(path=str(AXE))
    return await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
            }));
        }""",
        AXE_TAGS,
    )


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['summary']}" for n in v["nodes"])
    return "\n".join(lines)


async def no_axe_violations(page: Page, screen: str) -> None:
    violations = await axe_violations(page)
    assert not violations, f"axe on {screen}:\n{describe(violations)}"


async def fits_a_phone(page: Page, screen: str) -> None:
    sizes = await page.evaluate(
        "() => ({ scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth })"
    )
    assert sizes["scroll"] <= sizes["inner"], f"{screen} scrolls sideways on a phone: {sizes}"
    for test_id in PRIMARY_CONTROLS.get(screen, []):
        control = page.get_by_test_id(test_id)
        await expect(control).to_be_visible()
        box = await control.bounding_box()
        assert box is not None, f"{test_id} has no box on {screen}"
        assert box["x"] >= 0 and box["x"] + box["width"] <= sizes["inner"], f"{test_id} off screen: {box}"
        assert box["width"] >= MIN_TARGET_PX and box["height"] >= MIN_TARGET_PX, (
            f"{test_id} on {screen} is {box['width']:.0f}x{box['height']:.0f} CSS px, under "
            f"{MIN_TARGET_PX}x{MIN_TARGET_PX}"
        )


async def walk_the_screens(
    browser: Browser,
    viewport: dict[str, int],
    base_url: str,
    user,
    name: str,
    operator,
    check: Check,
    color_scheme: str = "light",
) -> None:
    """Visit every main screen as people use them, calling ``check(page, screen)`` on each."""
    page = await new_page(browser, viewport, color_scheme)
    await page.goto(base_url)
    await expect(page.get_by_test_id("signin-email")).to_be_visible(timeout=15_000)
    await check(page, "sign-in")

    await sign_in(page, base_url, user.email, user.password)
    status = page.get_by_test_id("call-status")
    await expect(status).to_have_attribute("data-state", "idle")
    await check(page, "call idle")

    await page.get_by_test_id("call-button").click()
    await expect(status).to_have_attribute("data-state", "in-call", timeout=15_000)
    await expect(agent_line(page, prompts.greeting(name))).to_be_visible(timeout=20_000)
    await check(page, "call in a call")
    await page.get_by_test_id("end-call-button").click()
    await expect(status).to_have_attribute("data-state", "ended", timeout=15_000)
    await check(page, "call ended")

    await page.get_by_test_id("nav-settings").click()
    await expect(page.get_by_test_id("settings-save")).to_be_enabled(timeout=10_000)
    await expect(page.get_by_test_id("settings-language")).not_to_have_value("")
    await check(page, "settings")
    await page.context.close()

    console = await new_page(browser, viewport, color_scheme)
    await sign_in(console, base_url, operator.email, operator.password)
    await console.get_by_test_id("nav-console").click()
    await expect(console.get_by_test_id("history-item").first).to_be_visible(timeout=15_000)
    await expect(console.get_by_test_id("history-list")).to_have_attribute("aria-busy", "false")
    await check(console, "console")

    await console.get_by_test_id("history-open").first.click()
    await expect(console.get_by_test_id("call-detail-title")).to_contain_text("Call with", timeout=15_000)
    await expect(console.get_by_test_id("call-detail-line").first).to_be_visible(timeout=15_000)
    await check(console, "console call detail")
    await console.context.close()


def script_a_call(provider_emulators) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[{"text": ANSWER, "when": QUESTION}, SUMMARY])


@pytest.mark.parametrize(
    ("viewport", "color_scheme"),
    [(PHONE_SIZE, "light"), (DESKTOP_SIZE, "light"), (PHONE_SIZE, "dark")],  # style.css has a dark theme
    ids=["phone", "desktop", "phone-dark"],
)
async def test_every_screen_passes_axe(
    viewport, color_scheme, web_dist, firebase_emulator, live_token_server, provider_emulators
) -> None:
    script_a_call(provider_emulators)
    user = firebase_emulator.sign_up(display_name="Axel Axe")
    operator = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(operator.uid, {"operator": True})
    checked: list[str] = []

    async def check(page: Page, screen: str) -> None:
        await no_axe_violations(page, screen)
        checked.append(screen)

    async with chromium() as browser:
        await walk_the_screens(
            browser, viewport, live_token_server.url, user, "Axel Axe", operator, check, color_scheme
        )
    assert len(checked) == 7, checked


async def test_every_screen_fits_a_phone(
    web_dist, firebase_emulator, live_token_server, provider_emulators
) -> None:
    script_a_call(provider_emulators)
    user = firebase_emulator.sign_up(display_name="Pia Phone")
    operator = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(operator.uid, {"operator": True})
    checked: list[str] = []

    async def check(page: Page, screen: str) -> None:
        await fits_a_phone(page, screen)
        checked.append(screen)

    async with chromium() as browser:
        await walk_the_screens(browser, PHONE_SIZE, live_token_server.url, user, "Pia Phone", operator, check)
    assert set(PRIMARY_CONTROLS) <= set(checked), checked


async def focused(page: Page) -> dict:
    return await page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = el ? getComputedStyle(el) : null;
            return {
                testid: el?.dataset?.testid ?? null,
                id: el?.id ?? null,
                tag: el?.tagName ?? null,
                outline: style ? style.outlineStyle : null,
                outlineWidth: style ? parseFloat(style.outlineWidth) : 0,
            };
        }"""
    )


async def tab_to(page: Page, test_id: str) -> None:
    """Press Tab until ``test_id`` has focus (at most MAX_TABS), then check its focus ring."""
    trail = []
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        now = await focused(page)
        trail.append(now["testid"] or now["id"] or now["tag"])
        if now["testid"] == test_id:
            assert now["outline"] != "none" and now["outlineWidth"] > 0, (
                f"{test_id} has no visible focus indicator when focused by keyboard: {now}"
            )
            return
    raise AssertionError(f"{test_id} not reached in {MAX_TABS} presses of Tab; focus went {trail}")


async def test_a_call_with_the_keyboard_only(
    web_dist, firebase_emulator, live_token_server, provider_emulators
) -> None:
    script_a_call(provider_emulators)
    user = firebase_emulator.sign_up(display_name="Kim Keys")
    async with chromium() as browser:
        page = await new_page(browser, PHONE_SIZE)
        await page.goto(live_token_server.url)
        await expect(page.get_by_test_id("signin-email")).to_be_visible(timeout=15_000)

        await tab_to(page, "signin-email")
        await page.keyboard.type(user.email)
        await tab_to(page, "signin-password")
        await page.keyboard.type(user.password)
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("call-button")).to_be_visible(timeout=15_000)

        await tab_to(page, "call-button")
        await page.keyboard.press("Enter")
        status = page.get_by_test_id("call-status")
        await expect(status).to_have_attribute("data-state", "in-call", timeout=15_000)
        await expect(agent_line(page, prompts.greeting("Kim Keys"))).to_be_visible(timeout=20_000)

        await tab_to(page, "chat-input")
        await page.keyboard.type(QUESTION)
        await page.keyboard.press("Enter")
        await expect(agent_line(page, ANSWER)).to_be_visible(timeout=20_000)

        await tab_to(page, "end-call-button")
        await page.keyboard.press("Space")
        await expect(status).to_have_attribute("data-state", "ended", timeout=15_000)

        await tab_to(page, "nav-settings")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("page-settings")).to_be_visible()
        await expect(page.locator("#settings-title")).to_be_focused()
        await expect(page).to_have_url(re.compile(r"#/settings$"))
