"""One request at a time per target (migration 0003): a second one is refused, never run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain.errors import DuplicateRequest, TargetBusy
from bot.domain.requests import OperationRequest, RequestStatus, Via
from bot.store import Store
from tests.store.test_repository import new_request, spec

S = RequestStatus


async def pending(store: Store, key: str, user: str = "U1", **kw: Any) -> OperationRequest:
    return await store.create_request(
        spec=spec(key, **kw),
        requested_by=user,
        via=Via.COMMAND,
        reason=None,
        channel="C1",
        status=S.AWAITING_APPROVAL,
    )


async def test_second_request_for_a_target_in_flight_is_refused(store: Store) -> None:
    first = await new_request(store, "welcome")
    with pytest.raises(TargetBusy, match="already changing"):
        await new_request(store, "welcome")
    await new_request(store, "other")  # another target is fine
    await store.transition(first.id, to=S.EXECUTING)
    with pytest.raises(TargetBusy):
        await new_request(store, "welcome")
    await store.transition(first.id, to=S.SUCCEEDED)
    await new_request(store, "welcome")  # done: the target is free again


async def test_pending_approvals_do_not_block_but_cannot_run_together(store: Store) -> None:
    a = await pending(store, "welcome")
    b = await pending(store, "welcome", "U2", all_versions=True)  # other parameters
    await store.transition(a.id, to=S.APPROVED)
    await store.transition(b.id, to=S.APPROVED)
    assert await store.transition(a.id, to=S.EXECUTING) is not None
    with pytest.raises(TargetBusy):
        await store.transition(b.id, to=S.EXECUTING)
    current = await store.get_request(b.id)
    assert current is not None
    assert current.status is S.APPROVED


async def test_concurrent_requests_for_one_target_exactly_one_recorded(store: Store) -> None:
    results = await asyncio.gather(
        *(
            store.create_request(
                spec=spec("welcome"),
                requested_by=f"U{i}",
                via=Via.COMMAND,
                reason=None,
                channel="C1",
            )
            for i in range(8)
        ),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, TargetBusy)]
    assert len(created) == 1
    assert len(refused) == 7


async def test_the_same_pending_approval_twice_is_refused_pointing_at_the_first(
    store: Store,
) -> None:
    first = await pending(store, "welcome")
    await store.set_card(first.id, channel="C1", card_ts="1700000000.000100")
    with pytest.raises(DuplicateRequest) as refused:
        await pending(store, "welcome", "U2")
    assert refused.value.request_id == first.id
    assert (refused.value.channel, refused.value.card_ts) == ("C1", "1700000000.000100")
    assert "channel C1, message 1700000000.000100" in refused.value.user_message()
    found = await store.pending_approval(spec("welcome"))
    assert found is not None
    assert found.id == first.id
    await store.transition(first.id, to=S.DENIED)
    assert await store.pending_approval(spec("welcome")) is None
    await pending(store, "welcome", "U2")  # decided: it may be asked again


async def test_identical_pending_approvals_at_once_exactly_one_recorded(store: Store) -> None:
    results = await asyncio.gather(
        *(pending(store, "welcome", f"U{i}") for i in range(8)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, OperationRequest)]
    refused = [r for r in results if isinstance(r, DuplicateRequest)]
    assert len(created) == 1
    assert len(refused) == 7
    assert {r.request_id for r in refused} == {created[0].id}
