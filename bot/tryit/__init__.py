"""``automation-bot try``: a local Slack-like page in front of the bot and the emulators.

:class:`~bot.tryit.playground.Playground` starts the provider emulators, the Slack
emulator and the bot's own ASGI app (HTTP mode) on one clock; :func:`~bot.tryit.page.
create_page_app` serves a page that shows the Slack emulator's messages as a channel and
sends what the person does there to the bot as signed Slack requests.
"""
