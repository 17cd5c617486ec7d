#!/usr/bin/env python3
"""Local AGI for the ``[paging]`` context: the same dialog as the gateway's FastAGI server.

Install as ``/var/lib/asterisk/agi-bin/dutygw_page.py`` on the PBX when the gateway's
FastAGI port is not reachable from Asterisk (see ``dialplan/README.md``). It needs the
``duty-gateway`` package (for the dialog and the speech cache), pyst2, espeak-ng and sox
on the PBX host; prompts are rendered into ``DUTYGW_SOUNDS_DIR`` (default
``/var/lib/asterisk/sounds/dutygw/cache``). Without espeak-ng the recorded fallback
prompt is played, so the call still asks for a 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    from gateway.paging.agi import serve_one
    from gateway.paging.speech import Speech

    sounds = Path(os.environ.get("DUTYGW_SOUNDS_DIR", "/var/lib/asterisk/sounds/dutygw/cache"))
    result = serve_one(sys.stdin, sys.stdout, Speech(sounds))
    return 0 if result is not None else 1


if __name__ == "__main__":
    sys.exit(main())
