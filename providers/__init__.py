"""Provider adapters: SFMC automations (SOAP), SFMC journeys (REST) and scrip.dev (REST)."""
