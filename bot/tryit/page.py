"""The try-it page: a Slack-like channel in the browser, served next to the emulators.

The page only shows what the Slack emulator holds (messages, threads, reactions, modals,
Home tabs, ephemeral answers) and turns each click into the signed request Slack would
send (:class:`sandbox.slack.SlackDriver`). ``GET /fragments`` renders the changing parts;
the page's script polls it and swaps what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.tryit.mrkdwn import emoji, mrkdwn, plain
from bot.tryit.playground import NOTIFY_CHANNEL, OPS_CHANNEL, PEOPLE, Playground
from bot.tryit.views import ViewInputError, submission_values
from sandbox.slack import SlackDriver
from sandbox.slack.driver import Delivery

CHANNELS: tuple[str, ...] = (OPS_CHANNEL, "C0APPROVALS", NOTIFY_CHANNEL)
QUICK_REACTIONS: tuple[str, ...] = ("white_check_mark", "x", "eyes")
MAX_CLOCK_STEP_S = 400 * 24 * 3600


class PageError(Exception):
    """A request from the page that cannot be carried out (shown to the person as is)."""


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.tryit", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["emoji"] = emoji
    env.globals["QUICK_REACTIONS"] = QUICK_REACTIONS
    return env


def _time(ts: str | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M")


class Page:
    """Renders the page from the playground's emulators and sends what the person does."""

    def __init__(self, playground: Playground) -> None:
        self.play = playground
        self.env = _templates()
        self.env.globals["text"] = self._text
        self.env.globals["user_name"] = self.user_name
        self.env.filters["user_name"] = self.user_name
        self.env.globals["time"] = _time
        self.view_errors: dict[str, dict[str, str]] = {}
        #: response_url of a click on an ephemeral message -> that message's ts
        self._ephemeral_clicks: dict[str, str] = {}

    # -- helpers ----------------------------------------------------------------------------

    @property
    def driver(self) -> SlackDriver:
        assert self.play.driver is not None, "the playground is not started"
        return self.play.driver

    def user_name(self, user_id: str) -> str:
        user = self.play.slack.user(user_id)
        return user.name if user else user_id

    def _text(self, obj: Mapping[str, Any] | str | None) -> Markup:
        if isinstance(obj, str):
            return mrkdwn(obj, user_name=self.user_name)
        return plain(obj, user_name=self.user_name)

    def channel_name(self, channel: str) -> str:
        found = self.play.slack.channel(channel)
        return found.name if found else channel

    def _user(self, value: object) -> str:
        people = {p for p, _ in PEOPLE}
        if not isinstance(value, str) or value not in people:
            raise PageError(f"Unknown user {value!r}: pick one of {', '.join(sorted(people))}.")
        return value

    def _channel(self, value: object) -> str:
        if not isinstance(value, str) or value not in CHANNELS:
            raise PageError(f"Unknown channel {value!r}.")
        return value

    # -- reading ----------------------------------------------------------------------------

    def _message_view(self, message: dict[str, Any], channel: str) -> dict[str, Any]:
        replies: list[dict[str, Any]] = []
        if message.get("ts") and message.get("thread_ts") in (None, message.get("ts")):
            try:
                replies = self.play.slack.thread(channel, message["ts"])[1:]
            except KeyError:
                replies = []
        return {**message, "reply_total": len(replies)}

    def _gone_ephemerals(self) -> set[str]:
        """Ephemeral messages the bot deleted or replaced through a click's response_url."""
        gone = set()
        for url, ts in list(self._ephemeral_clicks.items()):
            for post in self.play.slack.responses(url):
                payload = post.payload or {}
                if payload.get("delete_original") or payload.get("replace_original"):
                    gone.add(ts)
        return gone

    def _timeline(self, channel: str, user: str, thread: str | None) -> list[dict[str, Any]]:
        """Messages (or a thread's) and the user's ephemeral answers, by time."""
        slack = self.play.slack
        gone = self._gone_ephemerals()
        items: list[dict[str, Any]] = []
        if thread is None:
            for m in slack.messages(channel):
                items.append({"kind": "message", "sort": float(m["ts"]), **m})
        else:
            for m in slack.thread(channel, thread):
                items.append({"kind": "message", "sort": float(m["ts"]), **m})
        for e in slack.ephemerals(channel, user):
            if (e.get("thread_ts") or None) == thread and e["ts"] not in gone:
                items.append({"kind": "ephemeral", "sort": float(e["ts"]), **e})
        if thread is None:
            for a in self.play.acks(user=user, channel=channel):
                items.append(
                    {
                        "kind": "ephemeral",
                        "sort": float(a.ts),
                        "ts": a.ts,
                        "text": a.text,
                        "blocks": a.blocks,
                    }
                )
        items.sort(key=lambda i: i["sort"])
        return [
            self._message_view(i, channel) if i["kind"] == "message" and thread is None else i
            for i in items
        ]

    def fragments(self, *, user: str, channel: str, thread: str | None, tab: str) -> dict[str, Any]:
        """The parts of the page that change, rendered."""
        user, channel = self._user(user), self._channel(channel)
        slack = self.play.slack
        out: dict[str, Any] = {"clock": self._clock()}
        if tab == "home":
            home = slack.home(user)
            out["main"] = self.env.get_template("home.html").render(home=home, user=user)
        else:
            out["main"] = self.env.get_template("channel.html").render(
                items=self._timeline(channel, user, None), channel=channel, user=user
            )
        thread_html = ""
        if thread:
            try:
                items = self._timeline(channel, user, thread)
            except KeyError:
                items = []
            thread_html = self.env.get_template("thread.html").render(
                items=items, channel=channel, user=user, thread=thread
            )
        out["thread"] = thread_html
        out["providers"] = self.env.get_template("providers.html").render(
            state=self.play.providers()
        )
        view = slack.latest_view(user)
        if view is None:
            out["modal"] = {"key": "", "html": ""}
        else:
            errors = self.view_errors.get(str(view.get("id")), {})
            key = f"{view.get('id')}:{view.get('hash')}:{json.dumps(errors, sort_keys=True)}"
            out["modal"] = {
                "key": key,
                "html": self.env.get_template("modal.html").render(view=view, errors=errors),
            }
        return out

    def _clock(self) -> dict[str, str]:
        now = self.play.clock.now()
        ahead = now - datetime.now(UTC)
        hours = max(0, round(ahead / timedelta(hours=1), 1))
        return {
            "now": now.strftime("%a %d %b %H:%M UTC"),
            "ahead": f"+{hours:g} h ahead of the real time" if hours else "real time",
        }

    def page(self, *, user: str, channel: str) -> str:
        return self.env.get_template("page.html").render(
            people=PEOPLE,
            channels=[(c, self.channel_name(c)) for c in CHANNELS],
            user=self._user(user),
            channel=self._channel(channel),
            user_name=self.user_name,
        )

    # -- acting -----------------------------------------------------------------------------

    @staticmethod
    def _answer(delivery: Delivery) -> dict[str, Any]:
        if delivery.status_code != 200:
            raise PageError(f"The bot answered HTTP {delivery.status_code}: {delivery.text[:200]}")
        return {"ok": True}

    def send(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user, channel = self._user(body.get("user")), self._channel(body.get("channel"))
        text = str(body.get("text") or "").strip()
        command, _, rest = text.partition(" ")
        if command != "/automation":
            raise PageError(
                "Only the bot's slash command goes here: start with /automation "
                "(e.g. /automation help)."
            )
        delivery = self.driver.slash_command(rest.strip(), user=user, channel=channel)
        answer = self._answer(delivery)
        self.play.remember_ack(user=user, channel=channel, data=delivery.data)
        return answer

    def action(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user = self._user(body.get("user"))
        action_id = str(body.get("action_id") or "")
        if not action_id:
            raise PageError("The click named no action_id.")
        block_id = body.get("block_id") or None
        value = body.get("value")
        selected = body.get("selected_option")
        view_id = body.get("view_id")
        try:
            if view_id:
                view = self.play.slack.view(str(view_id))
                values = body.get("values")
                state = (
                    self.driver.state_values_for(view, submission_values(view, values))
                    if isinstance(values, Mapping)
                    else None
                )
                delivery = self.driver.block_action(
                    action_id=action_id,
                    user=user,
                    value=value,
                    view=str(view_id),
                    block_id=block_id,
                    selected_option=selected if isinstance(selected, Mapping) else None,
                    state_values=state,
                )
            else:
                channel = self._channel(body.get("channel"))
                delivery = self.driver.block_action(
                    action_id=action_id,
                    user=user,
                    value=value,
                    channel=channel,
                    message_ts=body.get("ts") or None,
                    block_id=block_id,
                )
                ephemeral = body.get("ephemeral")
                if not body.get("ts") and ephemeral and delivery.response_url:
                    self._ephemeral_clicks[delivery.response_url] = str(ephemeral)
        except (KeyError, LookupError) as exc:
            raise PageError(f"That button is gone: {exc}") from None
        except ViewInputError as exc:
            raise PageError(str(exc)) from None
        return self._answer(delivery)

    def react(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user, channel = self._user(body.get("user")), self._channel(body.get("channel"))
        ts, name = str(body.get("ts") or ""), str(body.get("name") or "").strip(":")
        if not ts or not name:
            raise PageError("A reaction needs the message (ts) and the emoji name.")
        try:
            mine = any(
                r["name"] == name and user in r["users"]
                for r in self.play.slack.reactions(channel, ts)
            )
        except KeyError:
            raise PageError("That message is gone.") from None
        if mine:
            delivery = self.driver.reaction_removed(user, name, channel, ts)
        else:
            delivery = self.driver.reaction_added(user, name, channel, ts)
        return self._answer(delivery)

    def submit(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user = self._user(body.get("user"))
        view_id = str(body.get("view_id") or "")
        try:
            view = self.play.slack.view(view_id)
        except KeyError:
            raise PageError("That form is closed.") from None
        try:
            values = submission_values(view, body.get("values"))
        except ViewInputError as exc:
            raise PageError(str(exc)) from None
        delivery = self.driver.view_submission(view_id, values, user=user)
        answer = self._answer(delivery)
        data = delivery.data or {}
        if data.get("response_action") == "errors":
            self.view_errors[view_id] = {str(k): str(v) for k, v in data["errors"].items()}
            answer["errors"] = self.view_errors[view_id]
        else:
            self.view_errors.pop(view_id, None)
        return answer

    def close(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user = self._user(body.get("user"))
        view_id = str(body.get("view_id") or "")
        try:
            view = self.play.slack.view(view_id)
        except KeyError:
            return {"ok": True}
        if view.get("notify_on_close"):
            return self._answer(self.driver.view_closed(view_id, user=user))
        self.play.slack.close_view(view_id)
        return {"ok": True}

    def suggest(self, *, user: str, view_id: str, action_id: str, query: str) -> dict[str, Any]:
        user = self._user(user)
        try:
            delivery = self.driver.block_suggestion(
                action_id=action_id, value=query, user=user, view=view_id
            )
        except (KeyError, LookupError) as exc:
            raise PageError(f"That form is closed: {exc}") from None
        if delivery.status_code != 200:
            raise PageError(f"The bot answered HTTP {delivery.status_code}.")
        data = delivery.data or {}
        groups = data.get("option_groups")
        if groups is None:
            groups = [{"label": {"text": ""}, "options": data.get("options") or []}]
        return {
            "groups": [
                {
                    "label": (g.get("label") or {}).get("text", ""),
                    "options": [
                        {"text": o["text"]["text"], "value": o["value"]}
                        for o in g.get("options") or []
                    ],
                }
                for g in groups
            ]
        }

    def open_home(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user = self._user(body.get("user"))
        return self._answer(self.driver.app_home_opened(user))

    def advance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        seconds = body.get("seconds")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds <= MAX_CLOCK_STEP_S
        ):
            raise PageError("Move the clock forward by a number of seconds (at most 400 days).")
        self.play.clock.advance(float(seconds))
        return {"ok": True, "clock": self._clock()}


def create_page_app(playground: Playground) -> Starlette:
    """The page's ASGI app (served next to the emulators by ``automation-bot try``)."""
    page = Page(playground)

    def guarded(method: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": "The body must be JSON."}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "The body must be a JSON object."}, status_code=400)
            try:
                return JSONResponse(await run_in_threadpool(method, body))
            except PageError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return endpoint

    async def index(request: Request) -> Response:
        q = request.query_params
        try:
            html = page.page(
                user=q.get("user", PEOPLE[0][0]), channel=q.get("channel", OPS_CHANNEL)
            )
        except PageError as exc:
            return HTMLResponse(str(exc), status_code=400)
        return HTMLResponse(html)

    def fragments(request: Request) -> Response:
        q = request.query_params
        try:
            return JSONResponse(
                page.fragments(
                    user=q.get("user", ""),
                    channel=q.get("channel", ""),
                    thread=q.get("thread") or None,
                    tab=q.get("tab", "channel"),
                )
            )
        except PageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    def suggest(request: Request) -> Response:
        q = request.query_params
        try:
            return JSONResponse(
                page.suggest(
                    user=q.get("user", ""),
                    view_id=q.get("view_id", ""),
                    action_id=q.get("action_id", ""),
                    query=q.get("q", ""),
                )
            )
        except PageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def favicon(_: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/favicon.ico", favicon, methods=["GET"]),
            Route("/fragments", fragments, methods=["GET"]),
            Route("/api/suggest", suggest, methods=["GET"]),
            Route("/api/send", guarded(page.send), methods=["POST"]),
            Route("/api/action", guarded(page.action), methods=["POST"]),
            Route("/api/react", guarded(page.react), methods=["POST"]),
            Route("/api/submit", guarded(page.submit), methods=["POST"]),
            Route("/api/close", guarded(page.close), methods=["POST"]),
            Route("/api/home", guarded(page.open_home), methods=["POST"]),
            Route("/api/clock", guarded(page.advance), methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("bot.tryit", "static")]), name="static"),
        ]
    )
