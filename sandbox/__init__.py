"""Local emulators of the providers (and, later, Slack): real HTTP servers on loopback."""
