"""The pages as people use them, in real headless Chromium against the running data space.

An AI team searches and filters the catalogue, opens the provider's dataset, asks its own
connector for access, reads the offer as sentences and sees the negotiation reach an agreement.
A provider's invalid record is refused with the error next to the field. The provider terminates
an agreement, the next read is refused, and the audit page shows the denial with the chain
intact; the transparency register lists the agreement once the provider opts in. axe-core finds
no violation on any page.

Set ``SLUIS_PAGES_SCREENSHOTS=DIR`` to keep a screenshot of every page (``docs/pages/`` holds
the ones the README shows).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.jobs import JobError
from sluis import demo
from tests.pages.conftest import Space

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
axe = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed"
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Waiting for the page to change (a negotiation over DSP on loopback takes well under a second).
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    try:
        yield tab
    finally:
        context.close()


def check_page(page: Any, name: str) -> None:
    """No axe-core violation on the page as shown; keep a screenshot when asked to."""
    results = axe.Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_snapshot()}"
    folder = os.environ.get("SLUIS_PAGES_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page: Any, base: str, token: str, then: str) -> None:
    page.goto(f"{base}{then}")
    assert "/pages/login" in page.url
    page.get_by_label(re.compile("token")).fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(then.split("?")[0])))


def _record_id(space: Space) -> str:
    hits = httpx.get(f"{space.urls.catalogue}/catalogue/search", params={"q": "household electricity"}).json()
    return next(hit["id"] for hit in hits["hits"] if hit["dataset"] == demo.DATASET_IRI)


def consumer_view(space: Space, agreement: str) -> dict[str, Any]:
    """The consumer connector's agreement page as JSON (reads counted from the provider's audit log)."""
    answer = httpx.get(
        f"{space.urls.consumer}/pages/agreements/{agreement}",
        headers={"Accept": "application/json", "Authorization": f"Bearer {space.consumer_token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_search_filter_with_removable_chips_and_paging(space: Space, page: Any) -> None:
    page.goto(f"{space.urls.catalogue}/catalogue/search")  # the API URL answers a browser with the page
    assert page.get_by_role("heading", name="Search the catalogue").is_visible()
    everything = int(page.locator("#results-heading").inner_text().split()[0])
    page.get_by_role("link", name="Next page").click()
    expect(page.locator(".pager")).to_contain_text("Page 2 of")

    page.get_by_label("Words to look for").fill("electricity")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile("q=electricity"))
    found = int(page.locator("#results-heading").inner_text().split()[0])
    assert 0 < found < everything
    energy = (
        page.locator("aside .facet").filter(has_text="Theme").get_by_role("link", name=re.compile("^Energy"))
    )
    energy.click()
    chip = page.get_by_role("link", name=re.compile("Remove filter Theme: Energy"))
    expect(chip).to_be_visible()
    filtered = int(page.locator("#results-heading").inner_text().split()[0])
    assert 0 < filtered <= found
    titles = page.locator(".results h3").all_inner_texts()
    assert any("electricity" in title.lower() for title in titles)
    assert page.locator(".results .badge").first.is_visible()  # the quality badge
    check_page(page, "search")
    chip.click()
    expect(page.get_by_role("link", name=re.compile("Remove filter"))).to_have_count(0)
    assert int(page.locator("#results-heading").inner_text().split()[0]) == found

    json_answer = httpx.get(
        f"{space.urls.catalogue}/catalogue/search",
        params={"q": "electricity"},
        headers={"Accept": "application/json"},
    )
    assert json_answer.json()["total"] == found


def test_request_access_reads_the_offer_as_sentences_and_reaches_an_agreement(
    space: Space, page: Any
) -> None:
    record = _record_id(space)
    page.goto(f"{space.urls.catalogue}/catalogue/datasets/{record}")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hourly household electricity")
    assert page.get_by_role("heading", name="Quality").is_visible()
    assert "Findability" in page.locator("table").filter(has_text="Dimension").inner_text()
    check_page(page, "dataset")
    page.get_by_label("Your connector's address").fill(space.urls.consumer)
    page.get_by_role("button", name="Request access").click()
    check_page(page, "request-access-handover")
    page.get_by_role("link", name="Continue to your connector").click()

    assert "/pages/login" in page.url
    check_page(page, "login")
    page.get_by_label(re.compile("token")).fill(space.consumer_token)
    page.get_by_role("button", name="Log in").click()
    offer = page.locator("fieldset .sentences").first
    offer.wait_for()
    text = offer.inner_text()
    assert text.startswith("You may use this data for development and innovation")
    assert "inside the European Union" in text
    assert f"at most {demo.MAX_READS} reads" in text
    assert f"without the column {demo.FORBIDDEN_COLUMN}" in text
    check_page(page, "request-access")

    page.get_by_role("button", name="Request access").click()  # no purpose chosen yet
    assert (
        page.locator("#purpose-error").inner_text().strip() == "choose the purpose you will use the data for"
    )
    page.get_by_label("Purpose of use").select_option(demo.AI_TRAINING)
    page.get_by_label("Where the data will be processed").select_option(demo.COMPUTE_SITE)
    page.get_by_role("button", name="Request access").click()
    page.wait_for_url(re.compile("/pages/negotiations/"))
    page.locator('#state[data-progress-state="FINALIZED"]').wait_for()  # followed live by the page
    check_page(page, "negotiation")
    page.locator("dd a").click()
    assert page.get_by_role("heading", name="Agreement").is_visible()
    assert "verified" in page.locator(".facts").inner_text()
    assert "at most 3 reads" in page.locator(".sentences").inner_text()
    check_page(page, "agreement")


def test_invalid_record_is_refused_with_the_error_next_to_its_field(space: Space, page: Any) -> None:
    log_in(page, space.urls.catalogue, space.publisher_token, "/pages/catalogue/publish")
    check_page(page, "publish")
    page.get_by_label("Title", exact=True).fill("Grid losses per substation")
    page.get_by_role("button", name="Publish", exact=True).click()
    error = page.locator("#description-error")
    assert error.is_visible()
    assert page.get_by_label("Description", exact=True).get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Title", exact=True).input_value() == "Grid losses per substation"
    check_page(page, "publish-refused")
    before = httpx.get(f"{space.urls.catalogue}/catalogue/search", headers={"Accept": "application/json"})
    assert "Grid losses" not in before.text

    page.get_by_label("Description", exact=True).fill("Monthly technical losses of each substation, in MWh.")
    page.get_by_label("Publisher's name").fill("Demo grid operator")
    page.get_by_label("Access rights").select_option(
        "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
    )
    page.get_by_role("button", name="Publish", exact=True).click()
    page.wait_for_url(re.compile("/pages/catalogue/datasets/"))
    assert page.get_by_role("heading", level=1).inner_text() == "Grid losses per substation"
    page.goto(f"{space.urls.catalogue}/pages/catalogue/mine")
    assert page.get_by_role("link", name="Grid losses per substation").is_visible()
    check_page(page, "my-datasets")


def test_terminated_agreement_denies_the_next_read_in_the_audit_view_and_the_register_lists_it(
    space: Space,
    page: Any,
) -> None:
    say = demo.Narrator(io.StringIO(), space.files.root)
    table = demo.write_consumption_parquet(space.files.root / "check.parquet")
    run = demo.run_ai_job(space.files, space.urls, say, table)
    try:
        agreement = run.dataset.agreement_id
        seen = consumer_view(space, agreement)["reads_seen"]
        assert (seen["permitted"], seen["denied"]) == (2, 0), seen
        log_in(page, space.urls.provider, space.provider_token, f"/pages/agreements/{agreement}")
        facts = page.locator(".facts").inner_text()
        assert "2 used, 1 left of 3" in facts
        check_page(page, "agreement-provider")
        page.get_by_role("button", name="Terminate this agreement").click()
        assert page.get_by_role("status").inner_text().startswith("The agreement was terminated")
        with pytest.raises(JobError):
            run.dataset.query("SELECT count(*) AS readings FROM data")
    finally:
        run.job.close()

    seen = consumer_view(space, agreement)["reads_seen"]
    assert (seen["permitted"], seen["denied"]) == (2, 1), seen  # the consumer sees the refusal too
    page.goto(f"{space.urls.provider}/pages/audit?agreement={agreement}")
    assert page.get_by_role("status").inner_text().startswith("Intact.")
    rows = page.locator("tbody tr").all_inner_texts()
    assert "deny" in rows[0]  # the newest entry: the read after termination, refused
    assert any(code in rows[0] for code in ("agreement_terminated", "token_inactive", "transfer_not_started"))
    check_page(page, "audit")

    page.goto(f"{space.urls.provider}/pages/offers")
    check_page(page, "offers")
    page.get_by_role("button", name="List its agreements in the register").click()
    page.context.clear_cookies()  # the register is public
    page.goto(f"{space.urls.provider}/pages/register")
    register = page.locator("tbody").inner_text()
    assert space.files.consumer_did in register
    assert demo.DATASET_IRI in register
    assert "terminated" in register
    check_page(page, "register")
    csv = httpx.get(f"{space.urls.provider}/pages/register.csv").text
    assert agreement in csv
    listed = httpx.get(
        f"{space.urls.provider}/pages/register", headers={"Accept": "application/ld+json"}
    ).json()
    assert [item["@id"] for item in listed["@graph"]] == [agreement]


def test_offer_builder_previews_sentences_and_policy_check_shows_the_decision_tree(
    space: Space,
    page: Any,
) -> None:
    log_in(page, space.urls.provider, space.provider_token, "/pages/offers")
    page.get_by_label("Only for a purpose").check()
    page.get_by_label("Purpose", exact=True).select_option(
        "https://w3id.org/sluis/purpose/scientific-research"
    )
    page.get_by_label("A limited number of reads").check()
    page.locator("#reads").evaluate("field => field.removeAttribute('min')")  # the server checks too
    page.get_by_label("Reads", exact=True).fill("0")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#reads-error").inner_text().strip() == "a whole number from 1 to 1000000000"
    page.get_by_label("Reads", exact=True).fill("10")
    page.get_by_role("button", name="Preview").click()
    assert "at most 10 reads" in page.locator("form .sentences").inner_text()

    page.goto(f"{space.urls.provider}/pages/policy-check")
    policy = (
        '{"@id": "urn:p", "@type": "Offer", "permission": [{"action": "use", "constraint": '
        '[{"leftOperand": "purpose", "operator": "isA", '
        '"rightOperand": "https://w3id.org/sluis/purpose/scientific-research"}]}]}'
    )
    page.get_by_label("Policy (ODRL JSON-LD or Turtle)").fill(policy)
    page.get_by_label("Request (optional)").fill(
        '{"assignee": "did:web:team", "action": "use", "target": "urn:d", '
        '"context": {"purpose": "https://w3id.org/sluis/purpose/commercial-use"}}'
    )
    page.get_by_role("button", name="Check").click()
    assert page.locator("#decision").inner_text() == "deny"
    assert "unsatisfied" in page.locator(".tree").first.inner_text()
    check_page(page, "policy-check")
    for path, name in (
        ("/pages/transfers", "transfers"),
        ("/pages/lineage", "lineage"),
        ("/pages/agreements", "agreements"),
        ("/pages/", "connector-home"),
    ):
        page.goto(f"{space.urls.provider}{path}")
        check_page(page, name)


RECORD_WITH_OFFER = """\
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://data.sluis.example/dataset/substation-loads> a dcat:Dataset ;
  dct:title "Substation loads"@en ; dct:description "Quarter-hourly loads of each substation."@en ;
  dct:publisher <{publisher}> ;
  dct:accessRights <http://publications.europa.eu/resource/authority/access-right/PUBLIC> ;
  dcat:distribution <https://data.sluis.example/dataset/substation-loads/csv> .
<{publisher}> a foaf:Agent ; foaf:name "Demo grid operator"@en .
<https://data.sluis.example/dataset/substation-loads/csv> a dcat:Distribution ;
  dcat:accessURL <https://data.sluis.example/download/substation-loads.csv> ;
  odrl:hasPolicy <https://data.sluis.example/policy/substation-loads> .
<https://data.sluis.example/policy/substation-loads> a odrl:Policy, odrl:Offer ;
  odrl:permission [ odrl:action odrl:use ;
    odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ;
        odrl:rightOperand "100"^^xsd:integer ] ,
      [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
        odrl:rightOperand "2028-01-01T00:00:00Z"^^xsd:dateTime ] ] .
"""


def test_uploaded_record_shows_its_offer_as_sentences_and_a_broken_file_its_line(
    space: Space, page: Any
) -> None:
    log_in(page, space.urls.catalogue, space.publisher_token, "/pages/catalogue/publish")
    upload = page.get_by_label(re.compile("A DCAT-AP file"))
    upload.set_input_files(files=[{"name": "broken.ttl", "mimeType": "text/turtle", "buffer": b"<a> <b> ."}])
    page.get_by_role("button", name="Publish the file").click()
    expect(page.locator("#file-error")).to_contain_text("line 1")

    record = RECORD_WITH_OFFER.format(publisher=space.publisher).encode()
    upload = page.get_by_label(re.compile("A DCAT-AP file"))
    upload.set_input_files(files=[{"name": "loads.ttl", "mimeType": "text/turtle", "buffer": record}])
    page.get_by_role("button", name="Publish the file").click()
    page.wait_for_url(re.compile("/pages/catalogue/datasets/"))
    offers = page.locator(".sentences")
    expect(offers).to_contain_text(
        "You may use this data"
    )  # RDF has no order: the clauses may come either way
    expect(offers).to_contain_text("until 31 December 2027")
    expect(offers).to_contain_text("at most 100 reads")
    check_page(page, "dataset-with-offer")


def test_the_other_pages_have_no_accessibility_violations(space: Space, page: Any) -> None:
    for url, name in (
        (f"{space.urls.catalogue}/pages/", "catalogue-home"),
        (
            f"{space.urls.catalogue}/pages/catalogue/request-access?connector=nonsense",
            "request-access-refused",
        ),
        (f"{space.urls.catalogue}/catalogue/datasets/unknown-record", "not-found"),
        (f"{space.urls.provider}/pages/register", "register-public"),
    ):
        page.goto(url)
        check_page(page, name)
    log_in(page, space.urls.consumer, space.consumer_token, "/pages/negotiations")
    check_page(page, "negotiations")
    page.goto(f"{space.urls.consumer}/pages/request")
    check_page(page, "request-form")
