"""The owner's phone browser on a running `tars serve`: a real headless Chromium (Debian's
chromium and chromium-driver, installed by .ci/run) driven with Selenium against the real
server process wired to the Twilio and Gemini emulators.

Every wait is on the page (WebDriverWait on the DOM), never on the clock. Each page is saved
as a screenshot under ``test-artifacts/web/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tars.emulators.gemini.emulator import GeminiEmulator
from tars.emulators.twilio.emulator import TwilioEmulator
from tests.server.harness import ACCOUNT, API_KEY, PUBLIC, TOKEN
from tests.server.test_serve_process import free_port, owner_rings, served_project
from tests.waiting import eventually
from tests.web.helpers import Chatty

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
#: Long enough for a busy 2-core machine; a page that never changes fails here instead of hanging.
PATIENCE = 90

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)",
)

T = TypeVar("T")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=430,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


async def in_browser(work: Callable[[], T]) -> T:
    """Selenium blocks: it runs on a thread, so the emulators on this loop keep the call going."""
    return await asyncio.to_thread(work)


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)  # the page changing under us
    return WebDriverWait(driver, PATIENCE, ignored_exceptions=ignored).until(
        condition, message=f"the page never showed {what}"
    )


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def confirm(driver: Any) -> None:
    from selenium.webdriver.support import expected_conditions

    wait_for(driver, expected_conditions.alert_is_present(), "the confirmation").accept()


def text_of(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, selector))


async def test_the_owner_watches_a_call_live_ends_it_and_cancels_a_scheduled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    async with (
        TwilioEmulator(account_sid=ACCOUNT, auth_token=TOKEN, realtime=False) as twilio,
        GeminiEmulator(api_key=API_KEY, brain_factory=Chatty) as gemini,
    ):
        project, env = served_project(tmp_path, monkeypatch, twilio, gemini)
        port = free_port()
        log = tmp_path / "serve.log"
        command = ["-m", "tars", "--project", str(project.root), "serve", "--port", str(port), "--log-level", "info"]
        with log.open("wb") as sink:
            server = subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.DEVNULL, stderr=sink)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:

                async def up() -> bool:
                    if server.poll() is not None:
                        pytest.fail("tars serve did not come up: " + log.read_text()[-2000:])
                    try:
                        async with http.get(f"{base}/healthz") as r:
                            return r.status == 200
                    except aiohttp.ClientError:
                        return False

                await eventually(up, 120, "tars serve answering /healthz")
                token = (project.state_dir / "api-token").read_text().strip()
                async with http.post(  # what `tars call dentist --at 'tomorrow 10am'` asks the server
                    f"{base}/api/calls",
                    json={
                        "target": "dentist",
                        "playbook": "book_appointment",
                        "inputs": {"preferred_day": "Wednesday"},
                        "at": "tomorrow 10am",
                    },
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    assert r.status == 202, await r.text()
                    scheduled = (await r.json())["call_id"]
            twilio.route(PUBLIC, base)

            def sign_in() -> None:
                browser.get(f"{base}/")  # no session: sent to the sign-in page
                wait_for(browser, lambda d: d.find_elements(By.ID, "token"), "the sign-in form")
                screenshot(browser, "1-sign-in")
                browser.find_element(By.ID, "token").send_keys(token)
                browser.find_element(By.CSS_SELECTOR, "#signin button").click()
                wait_for(browser, lambda d: d.find_elements(By.ID, "live"), "the calls page")

            await in_browser(sign_in)

            call = await owner_rings(twilio, project)
            await call.wait_for_agent_utterance(timeout=30)

            def watch_live_list() -> str:
                item = wait_for(
                    browser,
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#live-calls li[data-call]"),
                    "the call in the live list",
                )[0]
                wait_for(browser, lambda d: "Hello, TARS here." in text_of(d, "#live-calls"), "its latest line")
                screenshot(browser, "2-calls-live")
                call_id = item.get_attribute("data-call")
                item.find_element(By.CSS_SELECTOR, "a").click()
                wait_for(browser, lambda d: "Hello, TARS here." in text_of(d, "#transcript"), "the transcript")
                wait_for(browser, lambda d: "open_the_pod_bay_doors" in text_of(d, "#tools .refused"), "the refusal")
                return call_id

            call_id = await in_browser(watch_live_list)
            lines_before = await in_browser(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#transcript li")))

            await call.say("Please water the plants at six.")
            await in_browser(
                lambda: wait_for(browser, lambda d: "Noted: Please water" in text_of(d, "#transcript"), "the reply")
            )
            await call.say("And feed the cat.")
            await in_browser(
                lambda: wait_for(browser, lambda d: "And feed the cat." in text_of(d, "#transcript"), "the next line")
            )
            lines_now = await in_browser(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#transcript li")))
            assert lines_now >= lines_before + 3  # it grew while the call ran, without a reload
            assert await in_browser(lambda: "in-progress" in text_of(browser, "#call-status"))
            await in_browser(lambda: screenshot(browser, "3-call-live"))

            def end_it() -> None:
                browser.find_element(By.CSS_SELECTOR, f'form[action="/calls/{call_id}/end"] button').click()
                confirm(browser)
                wait_for(browser, lambda d: "completed" in text_of(d, "#call-status"), "the call completed")
                wait_for(browser, lambda d: d.find_element(By.ID, "result").is_displayed(), "the outcome")

            await in_browser(end_it)
            assert await call.wait_ended(timeout=30) == "completed"
            assert call.rest_hangups, "ended through Twilio's REST API"
            await in_browser(
                lambda: wait_for(
                    browser,
                    lambda d: text_of(d, "#call-summary") not in ("", "Being written…", "No summary was written."),
                    "the summary, once written",
                )
            )
            await in_browser(lambda: screenshot(browser, "4-call-ended"))

            def history_and_cancel() -> None:
                browser.get(f"{base}/")
                row = f'#history li[data-call="{call_id}"]'
                wait_for(browser, lambda d: "completed" in text_of(d, row), "the call in the history, completed")
                assert not browser.find_elements(By.CSS_SELECTOR, "#live-calls li[data-call]")
                screenshot(browser, "5-history")
                browser.find_element(By.CSS_SELECTOR, f'#scheduled li[data-call="{scheduled}"] button').click()
                confirm(browser)
                wait_for(browser, lambda d: f"Call {scheduled} is cancelled" in text_of(d, ".note"), "the cancel")
                assert not browser.find_elements(By.CSS_SELECTOR, f'#scheduled li[data-call="{scheduled}"]')
                screenshot(browser, "6-scheduled-cancelled")

            await in_browser(history_and_cancel)
            assert server.poll() is None
            server.terminate()  # the page still has its event stream open: the stop is graceful all the same
            assert await asyncio.to_thread(server.wait, 60) == 0
        except BaseException:
            print("tars serve's log:\n" + log.read_text()[-6000:])  # shown with the failure
            raise
        finally:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()

    from tars.store.call_queue import CANCELLED
    from tars.store.calls import call_details, get_call
    from tars.store.database import connect

    with connect(project.database_url) as db, db.session() as s:
        cancelled = get_call(s, scheduled)
        ended = call_details(s, int(call_id))
    assert (cancelled.status, cancelled.failure_reason, cancelled.sid) == ("failed", CANCELLED, None)
    assert ended.call.status == "completed"
    said = [line.text for line in ended.transcript]
    assert "call ended by the owner from the web view" in said
    assert [(t.tool, t.allowed) for t in ended.tools] == [("open_the_pod_bay_doors", False)]
