"""Production approvals over the real endpoint, signed like Slack signs them.

A production request becomes a pending card; approvers approve or deny with the card's
buttons or with reactions; quorum, self-approval, group membership, expiry, withdrawal,
replays, races, retries and two bot processes on one database all end with the provider
called exactly as often as it should be (counted on the SFMC emulator), not just with the
right words on the card.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from bot.domain.requests import OperationRequest, RequestStatus
from bot.slack.ids import ApprovalAction, CardBlock
from bot.slack.metadata import ButtonValue
from bot.store import Store
from sandbox.clock import Clock
from sandbox.sfmc import PROD_MID
from sandbox.slack import SlackDriver
from tests.scenarios.conftest import BotFactory, BotUnderTest, wait_for

CHANNEL = "C0OPS"
TARGET = "daily-welcome-send"
PROD_PAUSE = f"pause prod/{TARGET} for 1d"
APPROVE, DENY = "white_check_mark", "x"
#: Two approvals needed; U0CAROL is listed too so that a requester who is an approver
#: still leaves two others (otherwise the card says it cannot be approved as configured).
QUORUM_2 = {"approvers": ["S0APPROVERS", "U0ADMIN", "U0CAROL"], "required": 2}


# -- helpers ---------------------------------------------------------------------------------


def changes(bot: BotUnderTest) -> list[Any]:
    """Provider calls that change something: SOAP Schedule/Perform, journey pauses."""
    return [
        c
        for c in list(bot.providers.sfmc.calls)
        if c.soap_action in ("Schedule", "Perform") or "/pause/" in c.path
    ]


def decisions(bot: BotUnderTest, ts: str) -> list[str]:
    """The thread's decision replies, once at least one has arrived (replies are paced)."""
    wait_for(
        lambda: [t for t in thread(bot, ts) if t.startswith(":ballot_box_with_check:")],
        what="the decision reply",
    )
    bot.settle()  # room for a wrong second one to show up
    return [t for t in thread(bot, ts) if t.startswith(":ballot_box_with_check:")]


def card(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> dict[str, Any]:
    return dict(bot.slack.message(channel, ts))


def card_text(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> str:
    message = card(bot, ts, channel)
    return str(message.get("text", "")) + json.dumps(message.get("blocks", []), ensure_ascii=False)


def action_ids(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> list[str]:
    blocks = card(bot, ts, channel).get("blocks", [])
    return [
        e["action_id"]
        for b in blocks
        if b.get("block_id") == CardBlock.ACTIONS
        for e in b.get("elements", [])
    ]


def thread(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> list[str]:
    return bot.thread_texts(channel, ts)


def ask(
    bot: BotUnderTest, text: str = PROD_PAUSE, *, user: str = "U0ALICE", channel: str = CHANNEL
) -> str:
    """Send a production command; the ts of its pending card, once it is ready for votes."""
    before = {c["ts"] for c in bot.cards(channel)}
    delivery = bot.driver.slash_command(text, user=user, channel=channel)
    assert delivery.status_code == 200
    new = wait_for(
        lambda: [c for c in bot.cards(channel) if c["ts"] not in before],
        what="a pending card",
    )
    ts = str(new[0]["ts"])
    # the first reply is posted after the card is stored: reactions can be matched now
    wait_for(lambda: any("approval" in t for t in thread(bot, ts, channel)), what="the ask")
    return ts


def click(
    bot: BotUnderTest,
    ts: str,
    action: str,
    user: str,
    *,
    driver: SlackDriver | None = None,
    channel: str = CHANNEL,
) -> None:
    delivery = (driver or bot.driver).block_action(
        action_id=action, user=user, channel=channel, message_ts=ts
    )
    assert delivery.status_code == 200, delivery.text


def find_request(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> OperationRequest | None:
    """The request behind a card (None until the bot has stored the card's ts)."""

    async def find() -> OperationRequest | None:
        store = Store.from_url(bot.config.database_url)
        try:
            return await store.find_by_card(channel=channel, card_ts=ts)
        finally:
            await store.close()

    return asyncio.run(find())


def request_of(bot: BotUnderTest, ts: str, channel: str = CHANNEL) -> OperationRequest:
    found = find_request(bot, ts, channel)
    assert found is not None, f"no request for card {ts}"
    return found


def wait_status(bot: BotUnderTest, ts: str, status: RequestStatus) -> OperationRequest:
    def reached() -> OperationRequest | None:
        request = find_request(bot, ts)  # the card can show before its ts is stored
        return request if request is not None and request.status is status else None

    found: OperationRequest = wait_for(reached, what=f"status {status.value}")
    return found


def wait_card(bot: BotUnderTest, ts: str, *needles: str) -> str:
    def shows() -> str | None:
        text = card_text(bot, ts)
        return text if all(n in text for n in needles) else None

    return str(wait_for(shows, what=f"the card to show {needles}"))


def wait_reply(bot: BotUnderTest, needle: str) -> str:
    found = wait_for(
        lambda: [t for t in bot.reply_texts() if needle in t], what=f"an answer with {needle!r}"
    )
    return str(found[0])


def wait_thread(bot: BotUnderTest, ts: str, needle: str) -> list[str]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: [t for t in thread(bot, ts) if needle in t], what=f"a reply with {needle!r}"
    )


def automation_status(bot: BotUnderTest) -> int:
    return bot.providers.sfmc.automation(PROD_MID, TARGET).status


def together(*calls: Callable[[], None]) -> None:
    """Run ``calls`` in threads released at the same moment."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def second_driver(bot: BotUnderTest) -> SlackDriver:
    """Another Slack connection to the same bot (clicks sent from another thread)."""
    return SlackDriver(
        bot_url=bot.url + "/slack/events",
        signing_secret=bot.driver.signing_secret,
        emulator=bot.slack,
        emulator_url=bot.slack_url,
    )


# -- the pending card ------------------------------------------------------------------------


def test_production_request_waits_with_a_card_that_says_what_is_needed(
    bot: BotUnderTest,
) -> None:
    ts = ask(bot)
    text = wait_card(bot, ts, "Approval needed:* 0 of 1 from <!subteam^S0APPROVERS> or <@U0ADMIN>")
    assert "until <!date^" in text
    assert ":white_check_mark: to approve or :x: to deny" in text
    assert action_ids(bot, ts) == [ApprovalAction.APPROVE, ApprovalAction.DENY]
    (ask_reply,) = thread(bot, ts)
    assert "1 approval(s) from <!subteam^S0APPROVERS> or <@U0ADMIN>" in ask_reply
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    bot.settle()
    assert changes(bot) == []
    assert automation_status(bot) == 6


def test_without_a_channel_the_card_goes_to_the_approval_channel(bot: BotUnderTest) -> None:
    """The modal from a DM-less context: the environment's approval channel is used."""
    from bot.domain.commands import PauseCommand, TargetRef
    from bot.domain.models import PauseOptions, TargetKind
    from bot.domain.requests import Via
    from bot.runtime import build_runtime
    from bot.service.notify import NullNotifier

    async def submit() -> OperationRequest:
        store = Store.from_url(bot.config.database_url)
        runtime = build_runtime(bot.config, store=store, notifier=NullNotifier())
        try:
            command = PauseCommand(
                target=TargetRef(environment="prod", kind=TargetKind.AUTOMATION, name=TARGET),
                options=PauseOptions(),
            )
            return await runtime.requests.submit(
                command, requester="U0ALICE", via=Via.CLI, channel=None
            )
        finally:
            await runtime.aclose()

    request = asyncio.run(submit())
    assert request.status is RequestStatus.AWAITING_APPROVAL
    assert request.channel == "C0APPROVALS"


# -- approve ---------------------------------------------------------------------------------


def test_approval_by_button_executes_once(bot: BotUnderTest) -> None:
    ts = ask(bot)
    click(bot, ts, ApprovalAction.APPROVE, "U0BOB")
    done = wait_status(bot, ts, RequestStatus.SUCCEEDED)
    assert done.state_after
    text = wait_card(bot, ts, "Approved by <@U0BOB> at <!date^", "Done")
    assert ApprovalAction.APPROVE not in text
    wait_thread(bot, ts, "<@U0BOB> approved (1 of 1)")
    wait_thread(bot, ts, "Approved (last approval by <@U0BOB>)")
    wait_thread(bot, ts, "Verified")
    assert len(changes(bot)) == 1
    assert automation_status(bot) == 4
    assert bot.reply_texts() == []  # a counted vote needs no private answer


def test_approval_by_reaction_executes_once(bot: BotUnderTest) -> None:
    ts = ask(bot)
    bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Approved by <@U0BOB>", "Done")
    wait_thread(bot, ts, "<@U0BOB> approved (1 of 1)")
    # a skin-toned or repeated reaction after the decision changes nothing
    bot.driver.reaction_added("U0ADMIN", f"{APPROVE}::skin-tone-3", CHANNEL, ts)
    bot.settle()
    assert len(changes(bot)) == 1
    assert automation_status(bot) == 4


def test_member_of_an_approver_group_counts(bot: BotUnderTest) -> None:
    ts = ask(bot)
    click(bot, ts, ApprovalAction.APPROVE, "U0CAROL")  # in S0APPROVERS
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Approved by <@U0CAROL>")
    assert len(changes(bot)) == 1


# -- deny ------------------------------------------------------------------------------------


def test_deny_by_button_changes_nothing_and_offers_request_again(bot: BotUnderTest) -> None:
    ts = ask(bot)
    click(bot, ts, ApprovalAction.DENY, "U0BOB")
    wait_status(bot, ts, RequestStatus.DENIED)
    wait_card(bot, ts, "Denied by <@U0BOB> at <!date^")
    assert action_ids(bot, ts) == [ApprovalAction.REQUEST_AGAIN]
    wait_thread(bot, ts, "<@U0BOB> denied")
    wait_thread(bot, ts, "Denied by <@U0BOB>: nothing was changed")
    # an approval after the deny is too late
    bot.driver.reaction_added("U0ADMIN", APPROVE, CHANNEL, ts)
    bot.settle()
    assert changes(bot) == []
    assert automation_status(bot) == 6

    # Request again: a new pending card with the same parameters
    click(bot, ts, ApprovalAction.REQUEST_AGAIN, "U0ALICE")
    new = wait_for(lambda: [c for c in bot.cards() if c["ts"] != ts], what="a new card")
    new_ts = str(new[0]["ts"])
    wait_card(bot, new_ts, "Approval needed:* 0 of 1")
    # the card is posted before its ts is stored with the request: wait for that too
    again = wait_status(bot, new_ts, RequestStatus.AWAITING_APPROVAL)
    assert again.spec == request_of(bot, ts).spec
    assert again.requested_by == "U0ALICE"
    assert changes(bot) == []


def test_deny_by_reaction_changes_nothing(bot: BotUnderTest) -> None:
    ts = ask(bot)
    bot.driver.reaction_added("U0ADMIN", DENY, CHANNEL, ts)
    wait_status(bot, ts, RequestStatus.DENIED)
    wait_card(bot, ts, "Denied by <@U0ADMIN>")
    bot.settle()
    assert changes(bot) == []
    assert automation_status(bot) == 6


# -- quorum and withdrawal -------------------------------------------------------------------


def test_quorum_of_two(make_bot: BotFactory) -> None:
    bot = make_bot(approval=QUORUM_2)
    ts = ask(bot)
    wait_card(bot, ts, "Approval needed:* 0 of 2")
    click(bot, ts, ApprovalAction.APPROVE, "U0BOB")
    wait_card(bot, ts, "Approval needed:* 1 of 2", "<@U0BOB> approved <!date^")
    wait_thread(bot, ts, "<@U0BOB> approved (1 of 2)")
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert changes(bot) == []

    bot.driver.reaction_added("U0ADMIN", APPROVE, CHANNEL, ts)
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Approved by <@U0BOB> at", "and <@U0ADMIN> at")
    wait_thread(bot, ts, "<@U0ADMIN> approved (2 of 2)")
    assert len(changes(bot)) == 1


def test_removing_a_reaction_withdraws_the_vote(make_bot: BotFactory) -> None:
    bot = make_bot(approval=QUORUM_2)
    ts = ask(bot)
    bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
    wait_card(bot, ts, "Approval needed:* 1 of 2")
    bot.driver.reaction_removed("U0BOB", APPROVE, CHANNEL, ts)
    wait_thread(bot, ts, "<@U0BOB> withdrew their approval (0 of 2)")
    wait_card(bot, ts, "Approval needed:* 0 of 2")
    bot.driver.reaction_added("U0CAROL", APPROVE, CHANNEL, ts)
    wait_thread(bot, ts, "<@U0CAROL> approved (1 of 2)")
    wait_card(bot, ts, "Approval needed:* 1 of 2")
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert changes(bot) == []


# -- who may vote ----------------------------------------------------------------------------


def test_self_approval_is_refused(bot: BotUnderTest) -> None:
    ts = ask(bot, user="U0ADMIN")
    wait_card(bot, ts, "<@U0ADMIN> asked for it and cannot approve it")
    click(bot, ts, ApprovalAction.APPROVE, "U0ADMIN")
    wait_reply(bot, "cannot approve it yourself")
    bot.driver.reaction_added("U0ADMIN", APPROVE, CHANNEL, ts)
    wait_for(lambda: bot.slack.ephemerals(CHANNEL, "U0ADMIN"), what="a private answer")
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert "approved (" not in "\n".join(thread(bot, ts))
    assert changes(bot) == []


def test_self_approval_when_allowed(make_bot: BotFactory) -> None:
    bot = make_bot(approval={"allow_self_approval": True})
    ts = ask(bot, user="U0ADMIN")
    assert "cannot approve it" not in card_text(bot, ts)
    click(bot, ts, ApprovalAction.APPROVE, "U0ADMIN")
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Approved by <@U0ADMIN>")
    assert len(changes(bot)) == 1


def test_non_approver_click_is_explained_privately_and_not_counted(bot: BotUnderTest) -> None:
    ts = ask(bot)
    click(bot, ts, ApprovalAction.APPROVE, "U0DAVE")
    answer = wait_reply(bot, "Only approvers for prod")
    assert "not counted" in answer
    assert bot.replies()[0]["response_type"] == "ephemeral"
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert "Approval needed:* 0 of 1" in card_text(bot, ts)
    assert len(thread(bot, ts)) == 1  # only the ask: nothing was counted
    assert changes(bot) == []


def test_non_approver_reactions_are_ignored_and_noted_once(bot: BotUnderTest) -> None:
    ts = ask(bot)
    bot.driver.reaction_added("U0DAVE", APPROVE, CHANNEL, ts)
    wait_thread(bot, ts, "is not an approver")
    bot.driver.reaction_added("U0DAVE", DENY, CHANNEL, ts)
    bot.driver.reaction_removed("U0DAVE", APPROVE, CHANNEL, ts)
    bot.driver.reaction_added("U0DAVE", APPROVE, CHANNEL, ts)
    bot.driver.reaction_added("U0ALICE", APPROVE, CHANNEL, ts)  # the requester, no approver
    bot.settle()
    notes = [t for t in thread(bot, ts) if "is not an approver" in t]
    assert len(notes) == 2  # once per person
    assert notes[0].startswith("<@U0DAVE> reacted")
    assert notes[1].startswith("<@U0ALICE> reacted")
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert bot.slack.ephemerals(CHANNEL, "U0DAVE") == []  # ignored: no private answer
    assert bot.slack.ephemerals(CHANNEL, "U0ALICE") == []  # the thread said it already
    assert changes(bot) == []


def test_group_membership_is_read_again_after_the_cache_ttl(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock, directory_ttl=0.5)
    ts = ask(bot)
    click(bot, ts, ApprovalAction.APPROVE, "U0CAROL")
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    assert len(changes(bot)) == 1

    bot.slack.set_usergroup("S0APPROVERS", ["U0BOB"])  # Carol leaves the group
    clock.advance(timedelta(seconds=1))  # past the cache's TTL
    resume = ask(bot, f"resume prod/{TARGET}")
    click(bot, resume, ApprovalAction.APPROVE, "U0CAROL")
    wait_reply(bot, "Only approvers for prod")
    bot.settle()
    assert request_of(bot, resume).status is RequestStatus.AWAITING_APPROVAL
    assert len(changes(bot)) == 1

    click(bot, resume, ApprovalAction.APPROVE, "U0BOB")
    wait_status(bot, resume, RequestStatus.SUCCEEDED)
    assert len(changes(bot)) == 2
    assert automation_status(bot) == 6


# -- expiry ----------------------------------------------------------------------------------


def test_expiry_ends_the_request_and_request_again_asks_anew(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    ts = ask(bot)
    request = request_of(bot, ts)
    assert request.expires_at is not None
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL

    clock.advance(timedelta(hours=4, minutes=1))
    wait_status(bot, ts, RequestStatus.EXPIRED)
    wait_card(bot, ts, "Expired at <!date^", "0 of 1 approval(s)")
    assert action_ids(bot, ts) == [ApprovalAction.REQUEST_AGAIN]
    wait_thread(bot, ts, "Expired before enough approvals")

    # approvals after the expiry do nothing: a reaction, and a click on a stale card
    bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts)
    stale = ButtonValue(request_id=request.id).dump()
    bot.driver.block_action(
        action_id=ApprovalAction.APPROVE, user="U0BOB", value=stale, channel=CHANNEL
    )
    wait_reply(bot, "This request is expired")
    bot.settle()
    assert request_of(bot, ts).status is RequestStatus.EXPIRED
    assert len([t for t in thread(bot, ts) if "Expired" in t]) == 1
    assert changes(bot) == []

    click(bot, ts, ApprovalAction.REQUEST_AGAIN, "U0ALICE")
    new = wait_for(lambda: [c for c in bot.cards() if c["ts"] != ts], what="a new card")
    new_ts = str(new[0]["ts"])
    again = wait_status(bot, new_ts, RequestStatus.AWAITING_APPROVAL)
    assert again.expires_at is not None
    assert again.expires_at > clock.now()
    click(bot, new_ts, ApprovalAction.APPROVE, "U0BOB")
    wait_status(bot, new_ts, RequestStatus.SUCCEEDED)
    assert len(changes(bot)) == 1


def test_expiry_in_two_processes_is_announced_once(make_bot: BotFactory) -> None:
    clock = Clock()
    bot = make_bot(clock=clock)
    bot.start_another()
    ts = ask(bot)
    clock.advance(timedelta(hours=5))
    wait_status(bot, ts, RequestStatus.EXPIRED)
    wait_thread(bot, ts, "Expired before")
    wait_card(bot, ts, "Expired at")
    bot.settle()
    assert len([t for t in thread(bot, ts) if "Expired before" in t]) == 1
    assert "Expired at" in card_text(bot, ts)


def test_request_again_on_an_open_request_is_refused_privately(bot: BotUnderTest) -> None:
    ts = ask(bot)
    value = ButtonValue(request_id=request_of(bot, ts).id).dump()
    bot.driver.block_action(
        action_id=ApprovalAction.REQUEST_AGAIN, user="U0ALICE", value=value, channel=CHANNEL
    )
    wait_reply(bot, "still open")
    bot.settle()
    assert [c["ts"] for c in bot.cards()] == [ts]
    assert changes(bot) == []


# -- replays, races, retries, replicas -------------------------------------------------------


def test_an_old_approve_button_after_completion_does_nothing(bot: BotUnderTest) -> None:
    ts = ask(bot)
    request = request_of(bot, ts)
    click(bot, ts, ApprovalAction.APPROVE, "U0BOB")
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_thread(bot, ts, "Verified")
    replies_before = len(thread(bot, ts))
    old = ButtonValue(request_id=request.id).dump()
    for user in ("U0BOB", "U0ADMIN"):
        bot.driver.block_action(
            action_id=ApprovalAction.APPROVE, user=user, value=old, channel=CHANNEL
        )
    wait_for(
        lambda: len([t for t in bot.reply_texts() if "already approved and done" in t]) == 2,
        what="two 'already' answers",
    )
    bot.settle()
    assert len(changes(bot)) == 1
    assert len(thread(bot, ts)) == replies_before


def test_two_approvers_at_the_same_moment_execute_once(bot: BotUnderTest) -> None:
    ts = ask(bot)
    other = second_driver(bot)
    try:
        together(
            lambda: click(bot, ts, ApprovalAction.APPROVE, "U0BOB"),
            lambda: click(bot, ts, ApprovalAction.APPROVE, "U0ADMIN", driver=other),
        )
    finally:
        other.close()
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Done")
    bot.settle()
    assert len(changes(bot)) == 1
    assert len(decisions(bot, ts)) == 1
    assert automation_status(bot) == 4


def test_duplicated_and_retried_reaction_events_count_once(make_bot: BotFactory) -> None:
    bot = make_bot(approval=QUORUM_2)
    ts = ask(bot)
    first = bot.driver.reaction_added("U0BOB", APPROVE, CHANNEL, ts, event_id="Ev0DUPLICATE")
    again = bot.driver.event({}, event_id="Ev0DUPLICATE")  # the same envelope
    retry = bot.driver.event({}, event_id="Ev0DUPLICATE", retry_num=1)
    assert {d.status_code for d in (first, again, retry)} == {200}
    wait_thread(bot, ts, "<@U0BOB> approved (1 of 2)")
    wait_card(bot, ts, "Approval needed:* 1 of 2")
    bot.settle()
    assert len([t for t in thread(bot, ts) if "approved (" in t]) == 1
    assert "Approval needed:* 1 of 2" in card_text(bot, ts)
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL
    assert changes(bot) == []


def test_two_bot_processes_on_one_database_execute_once(bot: BotUnderTest) -> None:
    replica = bot.start_another()
    ts = ask(bot)
    together(
        lambda: click(bot, ts, ApprovalAction.APPROVE, "U0BOB"),
        lambda: click(bot, ts, ApprovalAction.APPROVE, "U0ADMIN", driver=replica.driver),
    )
    wait_status(bot, ts, RequestStatus.SUCCEEDED)
    wait_card(bot, ts, "Done")
    bot.settle()
    assert len(changes(bot)) == 1
    assert automation_status(bot) == 4
    assert len(decisions(bot, ts)) == 1
    # whichever process edited the card last, it shows the final state
    text = card_text(bot, ts)
    assert "Done" in text
    assert ApprovalAction.APPROVE not in text


def test_the_same_vote_through_both_processes_counts_once(make_bot: BotFactory) -> None:
    bot = make_bot(approval=QUORUM_2)
    replica = bot.start_another()
    ts = ask(bot)
    together(
        lambda: click(bot, ts, ApprovalAction.APPROVE, "U0BOB"),
        lambda: click(bot, ts, ApprovalAction.APPROVE, "U0BOB", driver=replica.driver),
    )
    wait_reply(bot, "already counted")
    wait_card(bot, ts, "Approval needed:* 1 of 2")
    bot.settle()
    assert len([t for t in thread(bot, ts) if "approved (" in t]) == 1
    assert changes(bot) == []


def test_requester_may_deny_their_own_request(bot: BotUnderTest) -> None:
    ts = ask(bot, user="U0ALICE")
    click(bot, ts, ApprovalAction.DENY, "U0ALICE")
    wait_status(bot, ts, RequestStatus.DENIED)
    assert changes(bot) == []


def test_only_listed_requesters_may_ask(make_bot: BotFactory) -> None:
    bot = make_bot(approval={"requesters": ["S0OPERATORS"]})
    bot.driver.slash_command(PROD_PAUSE, user="U0DAVE")
    texts = wait_for(bot.reply_texts, what="a refusal")
    assert "not among the people who may ask" in texts[0]
    assert bot.cards() == []
    ask(bot, user="U0ALICE")  # a member of S0OPERATORS
    assert changes(bot) == []


# -- a policy that leaves a requester short ------------------------------------------------


def test_the_only_approver_asking_is_told_at_once_who_could_approve(make_bot: BotFactory) -> None:
    """`approvers: [U0LEAD]`, `required: 1`, self-approval off: the bot starts (staging works),
    and U0LEAD's own production request says on its card, at once, that nobody could approve
    it and what to change; U0LEAD can still withdraw it, and nothing is changed."""
    with capture_logs() as logs:
        bot = make_bot(approval={"approvers": ["U0LEAD"], "required": 1})
        started = wait_for(
            lambda: [e for e in logs if e["event"] == "bot started"], what="the start"
        )
    assert started
    (warning,) = [e["warning"] for e in logs if e["event"] == "config_warning"]
    assert "a request by U0LEAD has only 0 other approver(s)" in warning

    bot.driver.slash_command("pause automation:hourly-lead-sync for 1d", user="U0LEAD")
    staging = wait_for(lambda: bot.cards(), what="the staging card")[0]
    wait_thread(bot, staging["ts"], "Verified")

    ts = ask(bot, user="U0LEAD")
    text = wait_card(bot, ts, "cannot be approved as configured")
    assert "nobody could approve it" in text
    assert "<@U0LEAD>" in text
    assert "environments.prod.approval" in text
    assert "allow_self_approval: true" in text
    assert "withdraw it with *Deny*" in text
    assert any("cannot be approved as configured" in t for t in thread(bot, ts))
    assert request_of(bot, ts).status is RequestStatus.AWAITING_APPROVAL

    click(bot, ts, ApprovalAction.APPROVE, "U0LEAD")
    wait_reply(bot, "cannot approve it yourself")
    click(bot, ts, ApprovalAction.DENY, "U0LEAD")
    wait_status(bot, ts, RequestStatus.DENIED)
    assert "cannot be approved as configured" not in wait_card(bot, ts, "Denied")
    assert automation_status(bot) == 6  # the production automation was never touched


def test_another_requester_under_the_same_policy_is_not_warned(make_bot: BotFactory) -> None:
    bot = make_bot(approval={"approvers": ["U0LEAD"], "required": 1})
    ts = ask(bot, user="U0ALICE")
    text = wait_card(bot, ts, "Approval needed")
    assert "cannot be approved as configured" not in text
    click(bot, ts, ApprovalAction.APPROVE, "U0LEAD")
    wait_status(bot, ts, RequestStatus.SUCCEEDED)


def test_a_group_holding_only_the_requester_is_said_on_the_card(make_bot: BotFactory) -> None:
    """Group membership is read when the request is made: a group with nobody but the
    requester in it leaves nobody to approve, and the card says so at once."""
    bot = make_bot(approval={"approvers": ["S0APPROVERS"], "required": 1})
    bot.slack.set_usergroup("S0APPROVERS", ["U0BOB"])
    ts = ask(bot, user="U0BOB")
    text = wait_card(bot, ts, "cannot be approved as configured")
    assert "nobody could approve it" in text
    assert "<!subteam^S0APPROVERS>" in text
