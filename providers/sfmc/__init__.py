"""Salesforce Marketing Cloud: Automation Studio (SOAP) and Journey Builder (REST)."""
