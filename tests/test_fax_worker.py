"""The OCR worker's watchdog: a page that overruns its CPU limit has the process killed,
the job fails with a reason for the register, and a fresh worker takes the next job.

The reader here is a stand-in that spins on one marked document, because no real engine
can be made to hang on demand (a PostScript loop is stopped by ghostscript's own CPU limit
before the watchdog would see it: ``test_fax_poison``). The process, the pipe, the
process-group CPU accounting and the restart are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image

from gateway.fax.worker import Document, HeaderJob, ProcessWorker, ReadFailed, group_cpu_seconds
from ocr.pages import FaxPage
from tests.conftest import FAX_FIXTURES

ROOT = Path(__file__).resolve().parent.parent

SPIN_WIDTH = 1234
"""A page exactly this wide makes the stand-in reader spin forever."""


class SpinningReader:
    """Returns the process it read in; burns CPU forever on a page ``SPIN_WIDTH`` wide."""

    def read_header(self, pages: Sequence[FaxPage], on_page: Callable[[int], None] | None = None) -> int:
        if on_page is not None:
            on_page(1)
        while pages[0].image.width == SPIN_WIDTH:
            pass
        return os.getpid()

    def read_rest(self, *_args: object, **_kwargs: object) -> int:
        """Never called: these tests give the worker header jobs only."""
        raise AssertionError("a header-only stand-in was given a body job")


def spinning_reader() -> SpinningReader:
    return SpinningReader()


def _job(path: Path) -> HeaderJob:
    return HeaderJob(Document(str(path), None, 2, 40_000_000))


def test_a_page_over_its_cpu_limit_is_killed_and_the_next_job_gets_a_fresh_worker(tmp_path: Path) -> None:
    fax, spin = FAX_FIXTURES / "fax_001.tif", tmp_path / "spin.tif"
    Image.new("1", (SPIN_WIDTH, 600), 1).save(spin, "TIFF", compression="group4", dpi=(204, 196))

    async def story() -> tuple[int, str, int]:
        worker = ProcessWorker(spinning_reader, 1.0, name="dutygw-ocr-test")
        worker.start()
        try:
            before = await worker.run(_job(fax))
            with pytest.raises(ReadFailed) as failed:
                await worker.run(_job(spin))
            after = await worker.run(_job(fax))
            return before, failed.value.reason, after
        finally:
            worker.close()

    before, reason, after = asyncio.run(story())
    assert "第1页识别超过1秒（处理器时间）" in reason and "请查看原件" in reason
    assert after != before  # the stuck process was killed; a fresh one read the next fax


def test_the_cpu_of_a_process_group_is_counted() -> None:
    own = group_cpu_seconds(os.getpgrp())
    spent = sum(i * i for i in range(3_000_000))
    assert spent > 0 and group_cpu_seconds(os.getpgrp()) > own


def test_bodies_run_lower_in_every_thread_of_the_worker() -> None:
    """Linux keeps a nice value per thread: onnxruntime's threads must go down with the main one."""
    script = (
        "import os, threading\n"
        "from gateway.fax.worker import _set_nice\n"
        "from ocr.engines import RapidOcrEngine\n"
        "from PIL import Image\n"
        "RapidOcrEngine(threads=2).read(Image.new('L', (400, 200), 255))\n"
        "_set_nice(7)\n"
        "print(sorted({int(open(f'/proc/self/task/{t}/stat').read().rsplit(')', 1)[1].split()[16])"
        " for t in os.listdir('/proc/self/task')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[7]", done.stdout
