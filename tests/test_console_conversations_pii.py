"""The conversations pages scrub PII like the review queue does (issue 14, W4).

What users pasted (e-mail addresses, phone and card numbers, Korean resident numbers) is shown
as its placeholder in the list and in the detail (question, answer, retrieved passages and the
prompt), to admins and viewers alike: the review queue has no "show original", so neither do
these pages. The stored rows keep the original (nothing is lost). Starlette's TestClient against
the real console and a SQLite database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from console.app import build_console
from console.models import Role
from console.users import ConsoleUsers
from feedback.models import Interaction
from feedback.store import AnswerRecord, SqlFeedbackStore
from supportbot.app import App
from supportbot.settings import Settings

PASSWORD = "correct horse battery"
# (what a user pasted, the placeholder the scrubber shows instead)
PASTED = [
    ("jane.doe@example.com", "[EMAIL]"),
    ("+1 415 555 0132", "[PHONE]"),
    ("4111 1111 1111 1111", "[CARD]"),
    ("900101-1234567", "[RRN]"),
]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[App, int]]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'pii.db'}")
    with App(settings) as application:
        users = ConsoleUsers(application.engine)
        users.add_user("admin@acme.test", password=PASSWORD, workspace="acme", role=Role.ADMIN)
        users.add_user("viewer@acme.test", password=PASSWORD, workspace="acme", role=Role.VIEWER)
        store = SqlFeedbackStore(application.engine, user_hash_key=b"k")
        made = store.record_answer(
            AnswerRecord(
                workspace="acme",
                platform="slack",
                question="My card 4111 1111 1111 1111 was charged twice, mail jane.doe@example.com",
                standalone_question="card charged twice jane.doe@example.com",
                answer="We will call you at +1 415 555 0132 about the refund.",
                mode="llm",
                user_id="U1",
                retrieved=[
                    {
                        "text": "Refunds: resident number 900101-1234567 on file.",
                        "score": 0.81,
                        "title": "Refunds",
                        "url": "https://help.example.com/refunds",
                    }
                ],
                prompt_messages=[
                    {"role": "system", "content": "Answer from the passages."},
                    {"role": "user", "content": "Reach me at jane.doe@example.com"},
                ],
            )
        )
        assert made is not None
        store.rate(made, user_id="U1", value=-1, source="reaction")  # in the review queue too
        yield application, made


def signed_in(application: App, email: str) -> TestClient:
    c = TestClient(build_console(application), base_url="https://testserver")
    page = c.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = c.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return c


@pytest.mark.parametrize("email", ["admin@acme.test", "viewer@acme.test"])
def test_the_list_and_the_detail_show_placeholders_not_what_was_pasted(
    console: tuple[App, int], email: str
):
    application, made = console
    c = signed_in(application, email)

    listing = c.get("/w/acme/conversations").text
    detail = c.get(f"/w/acme/conversations/{made}").text
    review = c.get(f"/w/acme/review/{made}").text

    for page in (listing, detail, review):
        for original, _ in PASTED:
            assert original not in page, (original, email)
    assert "[CARD]" in listing and "[EMAIL]" in listing and "[PHONE]" in listing
    for _, placeholder in PASTED:  # question, answer, passage and prompt all scrubbed
        assert placeholder in detail, placeholder
    assert "show original" not in detail.lower()  # as in the review queue: none
    assert "0.81" in detail and "Answer from the passages." in detail  # the rest as stored


def test_searching_still_finds_the_answer_and_the_stored_row_keeps_the_original(
    console: tuple[App, int],
):
    application, made = console
    c = signed_in(application, "admin@acme.test")

    found = c.get("/w/acme/conversations", params={"q": "charged twice"}).text

    assert f"/w/acme/conversations/{made}" in found and "[CARD]" in found
    with Session(application.engine) as session:
        stored = session.get(Interaction, made)
        assert stored is not None
        assert "4111 1111 1111 1111" in stored.question  # nothing lost
        assert "900101-1234567" in str(stored.retrieved)
