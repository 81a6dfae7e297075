"""Slack surface: ids, metadata carried in Slack, and pure Block Kit builders."""
