"""Every ``sh`` block of docs/local-stack.md's "Try it" and ``modelsync invoke`` sections, then those of the
README's "Local stack" section, run as written.

The blocks run in order in one bash session (so ``$queue_url`` and files carry over), against the session's
stack, with the default ports replaced by that stack's, ``modelsync``/``python`` by this interpreter.
A ``# expect: TEXT`` line in a block means its output must contain TEXT.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from e2e_support import REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

DOC = REPO / "docs" / "local-stack.md"
SECTIONS = ("## Try it", "## `modelsync invoke`")
README = REPO / "README.md"
README_SECTIONS = ("## Local stack",)
BLOCK_TIMEOUT = 90.0


def _blocks(path: Path, sections: tuple[str, ...]) -> list[str]:
    blocks: list[str] = []
    for section in re.split(r"(?m)^(?=## )", path.read_text(encoding="utf-8")):
        if section.startswith(sections):
            blocks += re.findall(r"(?ms)^```sh\n(.*?)^```", section)
    return blocks


def doc_blocks() -> list[str]:
    return _blocks(DOC, SECTIONS) + _blocks(README, README_SECTIONS)


def test_readme_has_the_examples() -> None:
    joined = "\n".join(_blocks(README, README_SECTIONS))
    for needle in ("s3 cp", "/v2/models/iris/infer", "/models/iris/predict", "/manifest"):
        assert needle in joined, needle


def _localise(block: str, stack: Stack) -> str:
    out = block.replace("http://127.0.0.1:4566", stack.endpoint).replace("http://127.0.0.1:3000", stack.api)
    out = re.sub(r"(?m)^modelsync ", f"'{sys.executable}' -m modelsync.cli ", out)
    return re.sub(r"(?m)^python ", f"'{sys.executable}' ", out)


def test_doc_has_the_examples() -> None:
    joined = "\n".join(doc_blocks())
    for needle in ("aws --endpoint-url", "s3 cp", "/v2/models/iris/infer", "/models/iris/predict",
                   "If-None-Match", "modelsync invoke", "sns subscribe"):
        assert needle in joined, needle


def test_docs_examples(stack: Stack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("aws", path=env["PATH"]) is None:
        pytest.skip("the AWS CLI is not installed (pip install awscli)")
    (tmp_path / "events").symlink_to(REPO / "events")
    shell = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=tmp_path, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert shell.stdin is not None and shell.stdout is not None
    try:
        shell.stdin.write("set -euo pipefail\n")
        for i, block in enumerate(doc_blocks()):
            marker = f"__block_{i}_done__"
            shell.stdin.write(f"{_localise(block, stack)}\necho; echo {marker}\n")
            shell.stdin.flush()
            output = []
            watchdog = threading.Timer(BLOCK_TIMEOUT, shell.kill)  # the doc's wait loops are unbounded
            watchdog.start()
            try:
                for line in shell.stdout:
                    if line.strip() == marker:
                        break
                    output.append(line)
                else:
                    pytest.fail(f"block {i} failed or ran over {BLOCK_TIMEOUT:.0f} s:\n{block}\noutput:\n"
                                f"{''.join(output)[-3000:]}\nstack log:\n{stack.logs()[-3000:]}")
            finally:
                watchdog.cancel()
            text = "".join(output)
            for expected in re.findall(r"(?m)^# expect: (.*)$", block):
                assert expected in text, f"block {i}: {expected!r} not in output:\n{text[-3000:]}\n{block}"
    finally:
        shell.stdin.close()
        shell.kill()
        shell.wait()
