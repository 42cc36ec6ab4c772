"""The README's Python examples run as written, top to bottom, so the docs match the code."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(BLOCKS) >= 3, "README.md should show the API with runnable python examples"


def test_readme_examples_run_in_order():
    # Later blocks build on earlier ones, as a reader would run them.
    namespace: dict = {}
    for number, block in enumerate(BLOCKS):
        exec(compile(block, f"{README.name}, python block {number}", "exec"), namespace)
