"""What a kind of target can do, as its provider adapter declares it.

Each adapter (``providers/...``) declares one :class:`ProviderTraits`; the rules
(:mod:`bot.domain.rules`) and the services read these traits instead of testing which
kind a target is, so a new kind of provider brings its own traits and needs no new branch.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from bot.domain.models import NormalState, Verb


class ProviderTraits(BaseModel):
    """The declared capabilities of one kind of target (frozen: a fact, not a setting)."""

    model_config = ConfigDict(frozen=True)

    #: What people call the product ("Journey Builder"), in messages.
    product: str
    #: What one target is called in messages ("journey").
    noun: str = "automation"
    #: verb -> states it may start from; a verb missing here is not supported at all.
    allowed_from: Mapping[Verb, frozenset[NormalState]]
    #: verb -> states a read-back must show for the action to count as done.
    expected_after: Mapping[Verb, frozenset[NormalState]]
    #: Why a verb is not supported, when there is more to say than "not supported".
    unsupported: Mapping[Verb, str] = {}
    #: The hint when a verb is refused from a state the common hints do not cover.
    refused: Mapping[Verb, str] = {}
    #: Targets have versions (``--version``, ``--all-versions``).
    versions: bool = False
    #: The provider itself ends a timed pause (the bot only reads it back); such a pause
    #: may also end in a stop ('then stop').
    ends_pause_natively: bool = False
    #: A running pause can be lengthened (the bot moves its own timer).
    extends_running_pause: bool = True
    #: The longest pause the provider carries out, in whole days (None: no limit of its own).
    max_pause_days: int | None = None
    #: Targets a bulk request works on at once through one provider instance (the adapter
    #: keeps its own call limits as well: concurrent calls per SFMC business unit, scrip's
    #: requests per second).
    parallel_targets: int = 10

    def supports(self, verb: Verb) -> bool:
        return verb in self.allowed_from
