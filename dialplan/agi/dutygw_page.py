#!/usr/bin/env python3
"""Local AGI for the ``[paging]`` context: the same dialog as the gateway's FastAGI server.

Install as ``/var/lib/asterisk/agi-bin/dutygw_page.py`` on the PBX when the gateway's
FastAGI port is not reachable from Asterisk (see ``dialplan/README.md``). It needs the
``duty-gateway`` package (for the dialog and the speech cache), pyst2, espeak-ng and sox
on the PBX host. The dialplan runs it as ``AGI(dutygw_page.py,${PAGE_ID},${PAGE_SOUNDS})``:
prompts are rendered into the folder of the second argument (``PAGE_SOUNDS``, set in the
``[paging]`` context), else ``DUTYGW_SOUNDS_DIR``, else
``/var/lib/asterisk/sounds/dutygw/cache``. It speaks ``PAGE_TEXT_B64``, which the gateway
built when it placed this attempt. Without espeak-ng the recorded fallback prompt is
played, so the call still asks for a 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_SOUNDS = "/var/lib/asterisk/sounds/dutygw/cache"


def sounds_folder(env: dict[str, str]) -> Path:
    """The dialplan's argument first, then the environment, then the default."""
    return Path(env.get("agi_arg_2") or os.environ.get("DUTYGW_SOUNDS_DIR") or DEFAULT_SOUNDS)


def main() -> int:
    from asterisk.agi import AGIException

    from gateway.paging.agi import ConnectionAGI, page_from_channel, run_page_dialog
    from gateway.paging.speech import Speech

    try:
        agi = ConnectionAGI(sys.stdin, sys.stdout)
        run_page_dialog(agi, Speech(sounds_folder(agi.env)), page_from_channel(agi))
    except (AGIException, OSError, ValueError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
