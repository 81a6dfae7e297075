"""Serve the SFMC emulator alone: ``python -m sandbox.sfmc [--port 8701]``."""

from __future__ import annotations

import argparse

import uvicorn

from sandbox.sfmc import SfmcEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the SFMC emulator on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    args = parser.parse_args()
    uvicorn.run(SfmcEmulator().app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
