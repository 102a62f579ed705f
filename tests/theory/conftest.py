"""Make ``import theory`` find the package, not this test folder of the same name.

pytest (default import mode) puts ``tests/`` on ``sys.path``, where ``tests/theory`` would be
picked up as a namespace package ``theory`` ahead of the installed (editable) package; the
repository root goes first instead. Superfluous once pytest is configured with
``pythonpath = ["."]``.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
