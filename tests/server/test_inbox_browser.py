"""The web inbox in a real browser (headless Chromium driven by Selenium): it lists pending
interrupts, answers an Agent Inbox `HumanInterrupt` with edit and with accept (the threads move
on), shows a thread's state, refuses bad JSON plainly, and drops an interrupt answered
elsewhere. With HITL_UPDATE_SCREENSHOTS=1 it saves the screenshot the README shows
(docs/inbox.png)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps.servers import CONFIG, ROOT, Proc, serving, store_url
from apps.services import unavailable
from langgraph_sdk import get_sync_client

SCREENSHOT = ROOT / "docs" / "inbox.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed: pip install -e '.[test]'")
    if CHROMIUM is None or CHROMEDRIVER is None:
        unavailable(
            "chromium and chromedriver are not installed: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def inbox_server(tmp_path: Path) -> Iterator[Proc]:
    with serving(
        store_url("sqlite", tmp_path), tmp_path, config=CONFIG.with_name("langgraph_inbox.json")
    ) as proc:
        yield proc


def test_inbox_answers_and_updates_live(inbox_server: Proc, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    c = get_sync_client(url=inbox_server.url)
    threads = {}
    for name, amount in (("edit", 150.0), ("accept", 250.0)):
        tid = c.threads.create()["thread_id"]
        c.runs.wait(tid, "expenses", input={"who": "ada", "amount": amount, "purpose": name})
        threads[name] = tid
    other = c.threads.create()["thread_id"]
    plain = c.runs.wait(other, "agent", input={"amount": 7})["__interrupt__"][0]["id"]

    browser.get(f"{inbox_server.url}/ui")
    cards = lambda: browser.find_elements(By.CSS_SELECTOR, "article.card")  # noqa: E731
    wait_until(lambda: len(cards()) == 3, "three pending interrupts")
    assert "3 pending" in browser.find_element(By.ID, "count").text

    def card(thread_id: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, f"article[data-thread='{thread_id}']")

    plain_card = card(other)
    answer = plain_card.find_element(By.CSS_SELECTOR, "textarea[name='answer']")
    answer.clear()
    answer.send_keys("{not json")
    plain_card.find_element(By.CSS_SELECTOR, "button[data-action='answer']").click()
    assert "not valid JSON" in wait_until(
        lambda: plain_card.find_element(By.CSS_SELECTOR, ".result.error").text, "a JSON error"
    )

    edit_card = card(threads["edit"])
    edit_card.find_element(By.CSS_SELECTOR, "a[data-role='open-thread']").click()
    wait_until(
        lambda: "interrupted" in browser.find_element(By.CSS_SELECTOR, "[data-role='status']").text,
        "thread status",
    )
    browser.execute_script("window.scrollTo(0, 0)")
    shot = SCREENSHOT if os.environ.get("HITL_UPDATE_SCREENSHOTS") else tmp_path / "inbox.png"
    browser.save_screenshot(str(shot))
    args = edit_card.find_element(By.CSS_SELECTOR, "textarea[name='args']")
    args.clear()
    args.send_keys('{"amount": 120}')
    edit_card.find_element(By.CSS_SELECTOR, "button[data-action='edit']").click()
    wait_until(
        lambda: c.threads.get(threads["edit"])["status"] == "idle", "the edited thread to finish"
    )
    assert c.threads.get_state(threads["edit"])["values"]["amount"] == 120
    assert c.threads.get_state(threads["edit"])["values"]["decision"] == "approved"

    card(threads["accept"]).find_element(By.CSS_SELECTOR, "button[data-action='accept']").click()
    wait_until(lambda: c.threads.get(threads["accept"])["status"] == "idle", "the accepted thread")
    assert c.threads.get_state(threads["accept"])["values"]["note"] == "approved: $250.00"
    wait_until(lambda: len(cards()) == 1, "answered interrupts to leave the list")

    c.runs.wait(other, "agent", command={"resume": {plain: "yes"}})  # answered elsewhere
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".empty"), "an empty inbox")
    assert cards() == []
