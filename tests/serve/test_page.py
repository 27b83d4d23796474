"""The page in a real browser (Debian's headless chromium via playwright): upload a real cover,
see predict's level, open its LIME explanation; screenshots are kept as test artifacts."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from tests.serve.harness import REPO, running

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
README_SHOT = REPO / "docs" / "serve-page.png"


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_page_predicts_and_explains_a_real_cover(served, tiny_run, real_covers, consumer_predictions, chromium,
                                                 tmp_path):
    cover = real_covers[5]
    want = consumer_predictions[cover.name]
    with running(served, "--checkpoint", str(tiny_run / "best.pt"), "--explain-samples", "200") as server:
        for name, viewport in (("desktop", {"width": 1000, "height": 760}), ("phone", {"width": 390, "height": 844})):
            page = chromium.new_page(viewport=viewport)
            failed: list[str] = []
            page.on("requestfailed", lambda req, failed=failed: failed.append(req.url))
            page.on("request", lambda req, failed=failed: None if req.url.startswith(server.url)
                    or req.url.startswith(("blob:", "data:")) else failed.append(req.url))
            page.goto(server.url + "/")
            page.set_input_files("#files", [str(cover), str(real_covers[6]), str(real_covers[7])])
            card = page.locator(".card", has_text=cover.name)
            card.locator(".bars li").first.wait_for(timeout=60_000)
            assert card.locator(".level").inner_text() == str(want["level"])
            assert card.locator(".expected").inner_text() == f"expected level {want['expected_level']:.2f}"
            assert card.locator(".bars li").count() == len(want["level_probs"])
            assert page.locator(".card .bars li.predicted").count() == 3
            if name == "desktop":
                card.locator("button.explain").click()
                card.locator("img.overlay").wait_for(state="visible", timeout=120_000)
                page.wait_for_function("() => [...document.querySelectorAll('img.overlay')]"
                                       ".some(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
            else:  # readable at phone width: nothing wider than the screen
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            shot = tmp_path / f"serve-page-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if name == "desktop" and os.environ.get("BOOKCOVER_README_SHOT"):
                README_SHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, README_SHOT)
            assert not failed, f"the page asked for outside resources: {failed}"
            page.close()
        bad = httpx.post(server.url + "/v1/covers:explain", files=[("file", ("empty.jpg", b"", "image/jpeg"))], timeout=60)
        assert bad.status_code == 422 and "empty file" in bad.json()["error"]
    assert "Traceback" not in server.log
