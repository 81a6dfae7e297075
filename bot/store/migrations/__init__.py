"""Alembic migrations, packaged with the bot (see :func:`bot.store.db.alembic_config`)."""
