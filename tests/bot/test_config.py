from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import config_path, load_config, parse_duration
from bot.domain.errors import ConfigError

GOOD = """
database_url: sqlite:///automation-bot.db
default_environment: staging
environments:
  staging:
    production: false
    sfmc:
      auth_url: https://mcabc.auth.marketingcloudapis.com/
      client_id: ${SFMC_CLIENT_ID}
      client_secret: ${SFMC_CLIENT_SECRET}
      account_id: 5100001
    scrip:
      base_url: https://api.scrip.dev/v1
      api_key: ${SCRIP_API_KEY}
      program_id: 6f1c2a9e-0b7d-4c55-9a11-3e2f5b8c7d10
  prod:
    production: true
    approval:
      approvers: [S0APPROVERS, U0LEAD]
      required: 1
      allow_self_approval: false
      expires_after: 4h
      approve_reaction: white_check_mark
      deny_reaction: x
      channel: C0APPROVALS
    notify_channel: C0MARKETINGOPS
    sfmc:
      auth_url: https://mcabc.auth.marketingcloudapis.com/
      client_id: prod-client
      client_secret: ${PROD_SECRET:-fallback-secret}
      account_id: 5100002
"""

ENV = {
    "SFMC_CLIENT_ID": "cid",
    "SFMC_CLIENT_SECRET": "very-secret-value",
    "SCRIP_API_KEY": "sk_live_123",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_design_example_loads_with_interpolation(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), environ=ENV)
    staging = cfg.environments["staging"]
    assert staging.sfmc is not None
    assert staging.sfmc.client_id == "cid"
    assert staging.sfmc.client_secret.get_secret_value() == "very-secret-value"
    assert staging.scrip is not None
    assert staging.scrip.api_key.get_secret_value() == "sk_live_123"
    prod = cfg.environments["prod"]
    assert prod.production is True
    assert prod.approval is not None
    assert prod.approval.expires_after == timedelta(hours=4)
    assert prod.sfmc is not None
    assert prod.sfmc.client_secret.get_secret_value() == "fallback-secret"
    assert cfg.environment(None)[0] == "staging"


def test_secrets_never_printed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), environ=ENV)
    dumped = repr(cfg) + str(cfg) + cfg.model_dump_json()
    assert "very-secret-value" not in dumped
    assert "sk_live_123" not in dumped


def test_missing_env_var_names_field_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    env = {k: v for k, v in ENV.items() if k != "SFMC_CLIENT_SECRET"}
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=env)
    assert str(path) in err.value.message
    assert "environments.staging.sfmc.client_secret" in err.value.message
    assert "SFMC_CLIENT_SECRET" in err.value.message


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (("account_id: 5100001", "account_id: abc"), "environments.staging.sfmc.account_id"),
        (("default_environment: staging", "default_environment: qa"), "default_environment"),
        (
            ("      deny_reaction: x", "      deny_reaction: x\n      colour: red"),
            "environments.prod.approval.colour",
        ),
        (("expires_after: 4h", "expires_after: soon"), "environments.prod.approval.expires_after"),
        (("api_key: ${SCRIP_API_KEY}", "api_key: pk_nope"), "environments.staging.scrip.api_key"),
        (
            (
                "auth_url: https://mcabc.auth.marketingcloudapis.com/\n      client_id: ${",
                "auth_url: not a url\n      client_id: ${",
            ),
            "environments.staging.sfmc.auth_url",
        ),
    ],
)
def test_invalid_values_name_the_field(
    tmp_path: Path, mutation: tuple[str, str], field: str
) -> None:
    old, new = mutation
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    assert field in err.value.message
    assert str(path) in err.value.message
    assert err.value.exit_code == 2


def test_environment_without_provider_is_refused(tmp_path: Path) -> None:
    text = "default_environment: a\nenvironments:\n  a:\n    production: false\n"
    with pytest.raises(ConfigError, match=r"environments\.a.*at least one provider"):
        load_config(write(tmp_path, text), environ={})


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2"), environ={})
    with pytest.raises(ConfigError, match="Cannot read configuration file"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"), environ={})


def test_unknown_environment_lists_known(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), environ=ENV)
    with pytest.raises(ConfigError, match="Known environments: prod, staging"):
        cfg.environment("qa")


def test_config_path_precedence(tmp_path: Path) -> None:
    assert (
        config_path(tmp_path / "x.yaml", {"AUTOMATION_BOT_CONFIG": "y.yaml"}) == tmp_path / "x.yaml"
    )
    assert config_path(None, {"AUTOMATION_BOT_CONFIG": "y.yaml"}) == Path("y.yaml")
    assert config_path(None, {}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        (90, timedelta(seconds=90)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_production_needs_a_satisfiable_approval_policy(tmp_path: Path) -> None:
    no_policy = GOOD.replace(
        """    approval:
      approvers: [S0APPROVERS, U0LEAD]
      required: 1
      allow_self_approval: false
      expires_after: 4h
      approve_reaction: white_check_mark
      deny_reaction: x
      channel: C0APPROVALS
""",
        "",
    )
    with pytest.raises(ConfigError, match=r"environments\.prod: a production environment needs"):
        load_config(write(tmp_path, no_policy), environ=ENV)
    nobody = GOOD.replace("approvers: [S0APPROVERS, U0LEAD]", "approvers: []")
    with pytest.raises(ConfigError, match=r"environments\.prod\.approval: no approvers"):
        load_config(write(tmp_path, nobody), environ=ENV)
    too_many = GOOD.replace("approvers: [S0APPROVERS, U0LEAD]", "approvers: [U0LEAD, U0BOB]")
    too_many = too_many.replace("required: 1", "required: 3")
    with pytest.raises(ConfigError, match=r"required is 3 but only 2 approver\(s\) are listed"):
        load_config(write(tmp_path, too_many), environ=ENV)
    cfg = load_config(write(tmp_path, GOOD), environ=ENV)
    policy = cfg.approval_policy("prod")
    assert policy is not None
    assert policy.approvers == {"S0APPROVERS", "U0LEAD"}
    assert cfg.approval_policy("staging") is None


def test_pause_timings_are_configurable(tmp_path: Path) -> None:
    text = GOOD + "pauses:\n  reminders: [48h, 2h]\n  drift_every: 10m\n"
    cfg = load_config(write(tmp_path, text), environ=ENV)
    assert cfg.pauses.reminders == [timedelta(hours=48), timedelta(hours=2)]
    assert cfg.pauses.drift_every == timedelta(minutes=10)
    with pytest.raises(ConfigError, match=r"pauses\.reminders"):
        load_config(write(tmp_path, GOOD + "pauses:\n  reminders: soon\n"), environ=ENV)


def test_slack_budgets_default_to_slacks_and_are_configurable(tmp_path: Path) -> None:
    limits = load_config(write(tmp_path, GOOD), environ=ENV).slack_limits
    assert (limits.tier3_per_min, limits.tier3_burst) == (50.0, 10)  # chat.update
    assert (limits.tier4_per_min, limits.tier4_burst) == (100.0, 20)
    assert limits.post_message_workspace_per_min == 300.0
    text = GOOD + "slack_limits:\n  tier3_per_min: 100\n  tier3_burst: 20\n"
    raised = load_config(write(tmp_path, text), environ=ENV).slack_limits
    assert (raised.tier3_per_min, raised.tier3_burst, raised.tier4_per_min) == (100.0, 20, 100.0)
    for bad in ("tier3_per_min: 0", "tier4_burst: 0", "tier5_per_min: 1"):
        with pytest.raises(ConfigError, match=r"slack_limits\."):
            load_config(write(tmp_path, GOOD + f"slack_limits:\n  {bad}\n"), environ=ENV)


def test_the_most_common_policy_starts_with_a_warning(tmp_path: Path) -> None:
    """One lead approves, self-approval off: the configuration loads (staging keeps
    working); the lead's own requests cannot be approved, which is a warning."""
    lonely = GOOD.replace("approvers: [S0APPROVERS, U0LEAD]", "approvers: [U0LEAD]")
    cfg = load_config(write(tmp_path, lonely), environ=ENV)
    (warning,) = cfg.warnings()
    assert warning.startswith("environments.prod.approval: required is 1")
    assert "a request by U0LEAD has only 0 other approver(s)" in warning
    assert load_config(write(tmp_path, GOOD), environ=ENV).warnings() == []


# -- what `config check` says ---------------------------------------------------------------


def check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`automation-bot config check` as a real process (the environment given, nothing else)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATION_BOT")}
    environ.update(env if env is not None else ENV)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "config", "check", "--config", str(path)],
        capture_output=True, text=True, env=environ, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("default_environment:", "defualt_environment:", "defualt_environment: unknown key; did "
         "you mean 'default_environment'?"),
        ("environments:", "enviroments:", "enviroments: unknown key; did you mean 'environments'?"),
        ("      deny_reaction: x", "      deny_reaction: x\n      expires_afer: 2h",
         "environments.prod.approval.expires_afer: unknown key; did you mean 'expires_after'?"),
        ("    notify_channel:", "    notfy_channel:",
         "environments.prod.notfy_channel: unknown key; did you mean 'notify_channel'?"),
        ("account_id: 5100001", "account_id: abc",
         "environments.staging.sfmc.account_id: Input should be a valid integer, unable to "
         "parse string as an integer (got 'abc')"),
        ("expires_after: 4h", "expires_after: soon",
         "environments.prod.approval.expires_after: expected a duration such as 30m, 4h or 2d "
         "(got 'soon')"),
        ("database_url: sqlite:///automation-bot.db", "database_url: mysql://u:pw@h/db",
         "database_url: the database 'mysql' is not supported: use sqlite:///automation-bot.db "
         "or postgresql+psycopg://user:password@host/db"),
        ("database_url: sqlite:///automation-bot.db", "database_url: oracle://u:pw@h/db",
         "the database 'oracle' is not supported"),
        ("client_secret: ${PROD_SECRET:-fallback-secret}", "client_secret: ${PROD_SECRET:-}",
         "environments.prod.sfmc.client_secret: is empty: set the secret"),
        ("api_key: ${SCRIP_API_KEY}", "api_key: pk_live_leak",
         "environments.staging.scrip.api_key: scrip API keys start with 'sk_' (value hidden)"),
    ],
)  # fmt: skip
def test_config_check_explains_a_bad_file(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    done = check(write(tmp_path, GOOD.replace(old, new, 1)))
    assert done.returncode == 2, done.stdout
    assert expected in done.stderr
    assert str(tmp_path / "bot.yaml") in done.stderr
    for secret in ("very-secret-value", "sk_live_123", "fallback-secret", "pk_live_leak", "pw@"):
        assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: b: c\n", "(line 1, column 5): mapping values are not allowed here; quote a value"),
        ("a:\n\tb: 1\n", "(line 2, column 1): found character '\\t' that cannot start any "
         "token (while scanning for the next token); YAML does not allow tabs"),
        ("a: [1, 2\n", "(line 2, column 1): expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence)"),
        ("a:\n  b: 1\n c: 2\n", "(line 3, column 2): expected <block end>, but found '<block "
         "mapping start>' (while parsing a block mapping); this key is indented differently"),
        ("", "is empty"),
    ],
)  # fmt: skip
def test_config_check_explains_yaml_errors(tmp_path: Path, text: str, expected: str) -> None:
    done = check(write(tmp_path, text))
    assert done.returncode == 2
    assert expected in done.stderr


def test_config_check_summarises_a_good_file_and_warns(tmp_path: Path) -> None:
    done = check(write(tmp_path, GOOD))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'bot.yaml'} is valid.",
        "  database: sqlite:///automation-bot.db",
        "  default environment: staging",
        "  staging (not production): sfmc (MID 5100001, "
        "https://mcabc.auth.marketingcloudapis.com/), scrip (program "
        "6f1c2a9e-0b7d-4c55-9a11-3e2f5b8c7d10, https://api.scrip.dev/v1)",
        "  prod (production): sfmc (MID 5100002, https://mcabc.auth.marketingcloudapis.com/)",
        "    approval: 1 of S0APPROVERS, U0LEAD; self-approval not allowed; expires after 4h; "
        "reactions :white_check_mark: / :x:; channel C0APPROVALS",
        "    notices: C0MARKETINGOPS",
    ]
    lonely = GOOD.replace("approvers: [S0APPROVERS, U0LEAD]", "approvers: [U0LEAD]")
    lonely = lonely.replace("      channel: C0APPROVALS\n", "")
    lonely = lonely.replace("sqlite:///automation-bot.db", "postgresql+psycopg://bot:pw@db/bot")
    done = check(write(tmp_path, lonely))
    assert done.returncode == 0, done.stderr
    assert "  database: postgresql+psycopg://bot:***@db/bot" in done.stdout
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert "a request by U0LEAD has only 0 other approver(s)" in warnings[0]
    assert warnings[1].startswith("warning: environments.prod.approval.channel is not set")
    assert "very-secret-value" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db",
        "postgres://u@h/db",
        "postgresql+psycopg://u@h/db",
        "postgresql+psycopg2://u@h/db",
        "sqlite:///automation-bot.db",
    ],
)
def test_database_urls_as_people_write_them_are_accepted(url: str) -> None:
    from bot.config import check_database_url

    check_database_url(url)  # the store maps every PostgreSQL spelling to psycopg 3
