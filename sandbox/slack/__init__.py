"""A local emulator of the Slack Web API and a driver that plays Slack towards the bot."""

from sandbox.slack.blockkit import check_message_blocks, check_view
from sandbox.slack.driver import Delivery, SlackDriver, sign
from sandbox.slack.emulator import SlackEmulator, SlackError
from sandbox.slack.model import (
    SANDBOX_APP_ID,
    SANDBOX_APP_TOKEN,
    SANDBOX_BOT_ID,
    SANDBOX_BOT_TOKEN,
    SANDBOX_BOT_USER_ID,
    SANDBOX_SIGNING_SECRET,
    SANDBOX_TEAM_ID,
    SANDBOX_VERIFICATION_TOKEN,
    Channel,
    ResponsePost,
    SlackCall,
    SlackSettings,
    SlackUser,
    Usergroup,
)

__all__ = [
    "SANDBOX_APP_ID",
    "SANDBOX_APP_TOKEN",
    "SANDBOX_BOT_ID",
    "SANDBOX_BOT_TOKEN",
    "SANDBOX_BOT_USER_ID",
    "SANDBOX_SIGNING_SECRET",
    "SANDBOX_TEAM_ID",
    "SANDBOX_VERIFICATION_TOKEN",
    "Channel",
    "Delivery",
    "ResponsePost",
    "SlackCall",
    "SlackDriver",
    "SlackEmulator",
    "SlackError",
    "SlackSettings",
    "SlackUser",
    "Usergroup",
    "check_message_blocks",
    "check_view",
    "sign",
]
