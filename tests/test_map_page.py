"""The live world map in a real browser: Debian's headless chromium, driven by selenium
through chromium-driver (issue 22)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from jgsl.emudb import load_users
from tests.processes import Processes, wait_for
from tests.servers import ensure_debian_package
from tests.test_web import LOCAL, web_url

USERS = Path(__file__).parent / "data" / "map-walkers.xml"


@pytest.fixture
def browser(tmp_path):
    chromium = ensure_debian_package("chromium", "chromium")
    driver_path = ensure_debian_package("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,800",
                     f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    service = Service(executable_path=driver_path, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()  # (stops chromium and chromedriver, which it started)


def positions(browser) -> dict[str, tuple[float, float]]:
    """Each agent dot on the page: its JID -> (cx, cy)."""
    dots = browser.execute_script(
        "return [...document.querySelectorAll('circle.agent')].map("
        "c => [c.dataset.jid, +c.getAttribute('cx'), +c.getAttribute('cy')])")
    return {jid: (x, y) for jid, x, y in dots}


def test_the_map_shows_every_emulated_user_moving(procs: Processes, browser, tmp_path):
    users = [user.nickname for user in load_users(USERS)[0]]
    assert len(users) == 3
    procs.start("world", "--role", "world", "--listen", LOCAL, "--web", LOCAL,
                "--emu-users", str(USERS), "--update-interval", "0.5", "--seed", "5")
    url = web_url(procs, "world")
    browser.get(url)
    page_text = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    wait_for(lambda: all(name in page_text() for name in users), timeout=30,
             what="every user's name on the map")
    assert "live" in page_text()
    first = wait_for(lambda: (p := positions(browser)) and len(p) >= len(users) and p,
                     what="a dot per user")
    moved = wait_for(lambda: [jid for jid, at in positions(browser).items()
                              if jid in first and at != first[jid]], timeout=20,
                     what="dots that moved")
    assert any(jid.startswith("walker") for jid in moved)
    # a click on a dot shows that agent's details
    jid = next(j for j in first if j.startswith("walker"))
    browser.execute_script(
        "document.querySelector(`circle.agent[data-jid='${arguments[0]}']`)"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))", jid)
    wait_for(lambda: jid in browser.find_element("id", "details").text, what="the details")
    # and one of a tile, the node's
    browser.execute_script("document.querySelector('rect.tile')"
                           ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    wait_for(lambda: "grid1.localhost" in browser.find_element("id", "details").text,
             what="a node's details")
    shot = os.environ.get("JGSL_MAP_SCREENSHOT")
    if shot:  # docs/images/world-map.png is taken this way
        browser.save_screenshot(shot)
    with urllib.request.urlopen(url + "healthz", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"
    procs.stop_all_cleanly()
