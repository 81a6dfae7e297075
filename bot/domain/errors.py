"""The project's one error tree.

Every error the bot raises on purpose is a :class:`BotError`. Adapters translate library
exceptions (httpx, zeep) into these with ``raise ... from exc``. An error carries its
context: the verb and the target it was raised for (set once, by whoever knows them first:
the use-case entry point :mod:`bot.service.commands` for a command), so no front end
re-assembles a message from pieces. Each front end turns an error into words in one place:
``bot.slack.errors.error_message`` (Slack) and ``bot.render.error_text`` (console, CLI).

::

    BotError
    ├── BadInput                 the user typed something we cannot use (shows usage)
    ├── ConfigError              the configuration file is wrong (names file and field)
    ├── NotFound                 no such target (carries "did you mean" suggestions)
    ├── AmbiguousTarget          a bare name matched several targets
    ├── InvalidState             the verb is not allowed from the target's current state
    │   └── TargetBusy           another request is changing the same target right now
    │       └── DuplicateRequest the same request is already waiting for approval
    ├── Unsupported              the provider cannot do this verb at all
    ├── ProductionRefused        a change on a production environment needs approval
    └── ProviderError            the provider failed (carries its own code and message)
        ├── AuthError            credentials refused or token unusable
        ├── RateLimited          throttled (carries retry_after seconds when known)
        └── VerificationFailed   the read-back did not show what the action should have done
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from bot.domain.models import TargetSummary


class BotError(Exception):
    """Root of every error the bot raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        #: The verb (``pause``, ``status``...) and the target (as typed, e.g.
        #: ``staging/automation:daily-send``) the error was raised for, when known.
        self.verb: str | None = None
        self.target: str | None = None

    def in_context(self, *, verb: str | None = None, target: str | None = None) -> Self:
        """This error, with its verb and target set where they are not set already."""
        if self.verb is None:
            self.verb = verb
        if self.target is None:
            self.target = target
        return self

    def user_message(self) -> str:
        """One sentence for the person who asked."""
        return self.message


class BadInput(BotError):
    """Input that cannot be used; ``usage`` shows what correct input looks like."""

    exit_code = 2

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage

    def user_message(self) -> str:
        if self.usage:
            return f"{self.message}\nUsage: {self.usage}"
        return self.message


class ConfigError(BotError):
    """The configuration is invalid; the message names the file and the field."""

    exit_code = 2


class NotFound(BotError):
    """No target matched; ``suggestions`` lists close names, best first."""

    def __init__(self, message: str, *, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.suggestions = list(suggestions)

    def user_message(self) -> str:
        if self.suggestions:
            return f"{self.message} Did you mean: {', '.join(self.suggestions)}?"
        return self.message


class AmbiguousTarget(BotError):
    """A bare name matched more than one target; ``candidates`` are qualified targets.

    ``matches`` carries the matching targets themselves (for a picker), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        candidates: Sequence[str],
        environment: str | None = None,
        query: str | None = None,
        matches: Sequence[TargetSummary] = (),
    ) -> None:
        super().__init__(message)
        self.candidates = list(candidates)
        self.environment = environment
        self.query = query
        self.matches = list(matches)

    def user_message(self) -> str:
        return f"{self.message} Pick one: {', '.join(self.candidates)}."


class InvalidState(BotError):
    """The verb is not allowed from the current state, which the error names."""

    def __init__(self, message: str, *, current_state: str) -> None:
        super().__init__(message)
        self.current_state = current_state


class TargetBusy(InvalidState):
    """Another request is changing the same target right now."""

    def __init__(self, message: str) -> None:
        super().__init__(message, current_state="busy")


class DuplicateRequest(TargetBusy):
    """The same request (target and every parameter) is already waiting for approval;
    ``request_id``, ``channel`` and ``card_ts`` point at it and its card."""

    def __init__(
        self, message: str, *, request_id: str, channel: str | None, card_ts: str | None
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.channel = channel
        self.card_ts = card_ts


class Unsupported(BotError):
    """The provider has no such verb (e.g. running a journey)."""


class ProductionRefused(BotError):
    """A change on a production environment was asked for outside the approval flow."""


class ProviderError(BotError):
    """A provider call failed.

    ``provider`` names the system ("SFMC", "scrip"), ``code`` is the provider's own error
    code (errorcode, apifault code, fault code, scrip ``code``) and ``provider_message`` its
    own message. ``retryable`` says whether trying again later could work.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        provider_message: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code
        self.provider_message = provider_message
        self.http_status = http_status
        self.retryable = retryable

    def user_message(self) -> str:
        detail = []
        if self.code is not None:
            detail.append(f"code {self.code}")
        if self.provider_message and self.provider_message not in self.message:
            detail.append(self.provider_message)
        suffix = f" ({self.provider}: {': '.join(detail)})" if detail else ""
        hint = " Try again in a moment." if self.retryable else ""
        return f"{self.message}{suffix}.{hint}".replace("..", ".")


class AuthError(ProviderError):
    """Credentials were refused or the token could not be used after one refresh."""


class RateLimited(ProviderError):
    """The provider throttled us; ``retry_after`` is in seconds when the provider said."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        provider_message: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            code=code,
            provider_message=provider_message,
            http_status=http_status,
            retryable=True,
        )
        self.retry_after = retry_after

    def user_message(self) -> str:
        base = super().user_message()
        if self.retry_after is not None:
            return f"{base} The provider asks to wait {self.retry_after:g}s."
        return base


class VerificationFailed(ProviderError):
    """The action was accepted but the read-back does not show the expected state."""
