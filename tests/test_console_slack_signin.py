"""Sign in with Slack (OpenID Connect) on the console, against the Slack simulator.

The console's real slack_sdk client exchanges the code with ``openid.connect.token`` over real
HTTP and PyJWT fetches the simulator's JWKS to verify the id_token (RS256); the browser's part
(following Slack's redirects) is done by httpx here, and by the real Chromium in the last test.
Covers: the round trip to a viewer session on the team's workspace (same cookie rules as a
password sign-in), a state from another browser / tampered / too old, a replayed code, an
expired id_token, another app's or another issuer's token, a wrong nonce, a team that is not
installed, another team's person (isolation), cancelling on Slack's page, linking by email only
when it is safe, and the failed sign-in limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from console.app import SESSION_COOKIE, build_console
from console.models import Role
from console.slack_signin import STATE_TTL_S, SlackSignIn, SlackSignInError
from console.users import ConsoleUsers
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from supportbot.settings import Settings
from tests.browser import browser, fresh, serve  # noqa: F401
from tests.servers.slack import SlackSimulator

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "sim-client-secret"
ACME_TEAM, GLOBEX_TEAM = "T0ACME", "T0GLOBEX"


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as simulator:
        yield simulator


@pytest.fixture
def application(tmp_path: Path, sim: SlackSimulator) -> Iterator[App]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'console.db'}",
        slack_client_id=CLIENT_ID,
        slack_client_secret=SecretStr(CLIENT_SECRET),
        slack_api_url=sim.base_url,
        console_login_attempts_per_ip=4,
    )
    with App(settings) as app:
        model = "intfloat/multilingual-e5-small"
        app.registry.create(
            "acme", embedding_model=model, identities=[(IdentityKind.SLACK_TEAM, ACME_TEAM)]
        )
        app.registry.create(
            "globex", embedding_model=model, identities=[(IdentityKind.SLACK_TEAM, GLOBEX_TEAM)]
        )
        yield app


def client(app: App) -> TestClient:
    return TestClient(build_console(app), base_url="https://testserver", follow_redirects=False)


def to_slack(c: TestClient, next_path: str = "/") -> str:
    """The URL of Slack's authorize page the console sends the browser to."""
    response = c.get("/login/slack", params={"next": next_path})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def through_slack(authorize_url: str) -> str:
    """What Slack's page answers: the callback URL (path and query) it redirects to."""
    response = httpx.get(authorize_url, follow_redirects=False)
    assert response.status_code == 302, response.text
    back = urlsplit(response.headers["location"])
    assert back.netloc == "testserver" and back.path == "/login/slack/callback"
    return f"{back.path}?{back.query}"


def round_trip(c: TestClient, next_path: str = "/") -> Any:
    return c.get(through_slack(to_slack(c, next_path)))


def error_of(response: Any) -> str:
    assert 'id="login-error"' in response.text, response.text[:800]
    start = response.text.index('id="login-error">') + len('id="login-error">')
    return response.text[start : response.text.index("</p>", start)]


def test_the_login_page_offers_slack_only_when_the_app_credentials_are_set(
    application: App, tmp_path: Path
):
    assert 'id="slack-sign-in"' in client(application).get("/login").text
    plain = Settings(data_dir=tmp_path / "d2", database_url=f"sqlite:///{tmp_path / 'p.db'}")
    with App(plain) as other:
        c = client(other)
        assert 'id="slack-sign-in"' not in c.get("/login").text
        assert c.get("/login/slack").status_code == 404
        assert c.get("/login/slack/callback?code=x&state=y").status_code == 404


def test_a_person_of_an_installed_team_signs_in_as_a_viewer_of_its_workspace(
    application: App, sim: SlackSimulator
):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="Anna@Acme.test", name="Anna")
    c = client(application)
    authorize = urlsplit(to_slack(c, "/w/acme/conversations"))
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        f"{sim.url}/openid/connect/authorize"
    )
    assert query["scope"] == "openid email profile" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == "https://testserver/login/slack/callback"
    assert query["response_type"] == "code" and query["nonce"] and query["state"]

    back = c.get(through_slack(authorize.geturl()))

    assert back.status_code == 303 and back.headers["location"] == "/w/acme/conversations"
    cookie = next(h for h in back.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert all(flag in cookie.lower() for flag in ("httponly", "secure", "samesite=lax"))
    assert "max-age=43200" in cookie.lower()
    page = c.get("/w/acme/conversations")
    assert page.status_code == 200 and "anna@acme.test" in page.text
    assert c.get("/w/globex/overview").status_code == 404
    summary = {u.email: u for u in ConsoleUsers(application.engine).list_users()}
    assert summary["anna@acme.test"].grants == {"acme": Role.VIEWER}
    assert not summary["anna@acme.test"].has_password
    token = c.get("/w/acme/overview").text.split('name="csrf_token" value="')[1].split('"')[0]
    assert c.post("/w/acme/sources", data={"csrf_token": token}).status_code == 403
    # The exchange went through Slack's method with the app's credentials, once.
    (call,) = sim.calls_to("openid.connect.token")
    assert call.args["redirect_uri"] == "https://testserver/login/slack/callback"
    # Signing in again finds the same user (by Slack id), still a viewer.
    assert round_trip(client(application)).status_code == 303
    assert len(ConsoleUsers(application.engine).list_users()) == 1


def test_an_admins_grant_is_kept_when_they_sign_in_with_slack(
    application: App, sim: SlackSimulator
):
    users = ConsoleUsers(application.engine)
    users.add_user("lead@acme.test", password="a long password", workspace="acme", role=Role.ADMIN)
    sim.openid.sign_in_as("U0LEAD", ACME_TEAM, email="lead@acme.test")
    c = client(application)

    assert round_trip(c).status_code == 303

    assert users.list_users()[0].grants == {"acme": Role.ADMIN}
    (lead,) = users.list_users()
    assert lead.has_password  # the same account, linked: its password still works
    token = c.get("/w/acme/overview").text.split('name="csrf_token" value="')[1].split('"')[0]
    assert c.post("/w/acme/sources", data={"csrf_token": token}).status_code != 403


@pytest.mark.parametrize(
    ("existing_workspace", "verified"),
    [
        pytest.param("globex", True, id="account-of-another-workspace"),
        pytest.param("acme", False, id="email-not-verified-by-slack"),
    ],
)
def test_an_account_is_never_taken_over_by_its_email(
    application: App, sim: SlackSimulator, existing_workspace: str, verified: bool
):
    users = ConsoleUsers(application.engine)
    users.add_user(
        "boss@corp.test", password="a long password", workspace=existing_workspace, role=Role.ADMIN
    )
    sim.openid.sign_in_as("U0MALLORY", ACME_TEAM, email="boss@corp.test", email_verified=verified)
    c = client(application)

    refused = round_trip(c)

    assert refused.status_code == 403 and SESSION_COOKIE not in refused.headers.get(
        "set-cookie", ""
    )
    assert "already has a console account" in error_of(refused)
    assert users.list_users()[0].grants == {existing_workspace: Role.ADMIN}


def test_a_team_that_has_not_installed_the_app_gets_a_clear_refusal(
    application: App, sim: SlackSimulator
):
    sim.openid.sign_in_as("U0ZED", "T0NOTHERE", email="zed@elsewhere.test")

    refused = round_trip(client(application))

    assert refused.status_code == 403
    assert error_of(refused).startswith("Your Slack workspace has not installed this app")
    assert ConsoleUsers(application.engine).list_users() == []


def test_a_person_of_another_team_sees_only_their_own_workspace(
    application: App, sim: SlackSimulator
):
    sim.openid.sign_in_as("U0GREG", GLOBEX_TEAM, email="greg@globex.test")
    c = client(application)

    landed = round_trip(c, "/w/acme/overview")

    assert landed.headers["location"] == "/w/acme/overview"  # asked for, but not granted:
    assert c.get("/w/acme/overview").status_code == 404
    assert c.get("/").headers["location"] == "/w/globex/overview"


def test_a_state_from_another_browser_tampered_or_too_old_is_refused(
    application: App, sim: SlackSimulator
):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test")
    victim = client(application)
    callback = through_slack(to_slack(victim))
    attacker = client(application)
    attacker.get("/login")  # a browser of its own, with its own CSRF cookie

    stolen = attacker.get(callback)
    assert stolen.status_code == 403 and "did not start in this browser" in error_of(stolen)
    tampered = callback.replace("state=", "state=x")
    assert "did not start in this browser" in error_of(victim.get(tampered))
    assert sim.calls_to("openid.connect.token") == []  # refused before any exchange

    slack = SlackSignIn(client_id=CLIENT_ID, client_secret="s", api_url=sim.base_url, key=b"k")
    state = slack.new_state(browser="b", next_path="/x", now=time.time() - STATE_TTL_S - 5)
    with pytest.raises(SlackSignInError, match="took too long"):
        slack.check_state(state, browser="b")
    assert slack.check_state(slack.new_state(browser="b", next_path="/x"), browser="b") == "/x"


def test_a_replayed_code_is_refused(application: App, sim: SlackSimulator):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test")
    c = client(application)
    callback = through_slack(to_slack(c))
    assert c.get(callback).status_code == 303

    again = client(application)
    again.cookies.set("supportbot_csrf", c.cookies["supportbot_csrf"])  # the same browser
    replayed = again.get(callback)

    assert replayed.status_code == 403
    assert "code_already_used" in error_of(replayed)
    assert SESSION_COOKIE not in replayed.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        pytest.param({"expires_in": -300}, "The Slack sign-in expired", id="expired"),
        pytest.param({"claims": {"aud": "9999.other-app"}}, "issued to another app", id="aud"),
        pytest.param({"claims": {"iss": "https://evil.test"}}, "not issued by Slack", id="iss"),
        pytest.param({"claims": {"nonce": "another-nonce"}}, "wrong nonce", id="nonce"),
        pytest.param({"claims": {"iat": int(time.time()) + 3600}}, "in the future", id="iat"),
    ],
)
def test_an_id_token_that_does_not_hold_is_refused(
    application: App, sim: SlackSimulator, shape: dict[str, Any], message: str
):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test", **shape)

    refused = round_trip(client(application))

    assert refused.status_code == 403 and message in error_of(refused)
    assert ConsoleUsers(application.engine).list_users() == []


def test_a_token_not_signed_with_slacks_keys_is_refused(application: App, sim: SlackSimulator):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test", forged=True)

    refused = round_trip(client(application))

    assert refused.status_code == 403 and "bad signature" in error_of(refused)
    assert ConsoleUsers(application.engine).list_users() == []


def test_cancelling_on_slacks_page_and_the_failed_sign_in_limit(
    application: App, sim: SlackSimulator
):
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test", decline=True)
    c = client(application)
    cancelled = round_trip(c)
    assert cancelled.status_code == 403 and "cancelled" in error_of(cancelled)

    for _ in range(4):  # forged callbacks count toward the per-address limit (4 here)
        assert c.get("/login/slack/callback?code=x&state=forged").status_code == 403
    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test")
    refused = c.get("/login/slack")
    assert refused.status_code == 429 and "Too many failed sign-ins" in error_of(refused)
    assert int(refused.headers["retry-after"]) > 0


def test_the_whole_round_trip_in_a_real_browser(
    browser: Any,  # noqa: F811
    application: App,
    sim: SlackSimulator,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sim.openid.sign_in_as("U0ANNA", ACME_TEAM, email="anna@acme.test")
    with serve(build_console(application)) as url:
        fresh(browser)
        browser.get(f"{url}/w/acme/overview")  # signed out: the sign-in page
        browser.find_element(By.ID, "slack-sign-in").click()
        WebDriverWait(browser, 20).until(lambda d: d.current_url.endswith("/w/acme/overview"))
        assert "anna@acme.test" in browser.page_source
        assert sim.openid.authorize_requests[-1]["redirect_uri"] == (f"{url}/login/slack/callback")
