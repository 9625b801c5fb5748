"""`nbdeploy serve`'s start-up: what it imports while its cluster starts (so that nothing is left to import once
the cluster is up) names real modules, and jsonschema is imported without the grammar nbdeploy never uses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from nbdeploy.server_extension.standalone import startup_imports


def test_the_startup_imports_name_modules_that_exist() -> None:
    names = startup_imports()
    assert names[0] == "distributed" and "nbdeploy.models.serving" in names and "jsonschema" in names
    assert [n for n in names if importlib.util.find_spec(n) is None] == []


PROBE = """
import json, sys
from nbdeploy.server_extension.standalone import _import_quietly
_import_quietly(["jsonschema"])
imported = {"jsonschema": "jsonschema" in sys.modules, "grammar": "rfc3987_syntax" in sys.modules}
import jsonschema
jsonschema.Draft202012Validator({"type": "object", "required": ["a"]}).validate({"a": 1})
errors = [e.message for e in jsonschema.Draft202012Validator({"required": ["a"]}).iter_errors({})]
try:
    import rfc3987_syntax  # left importable for whoever needs it
    later = True
except ImportError:
    later = False
print(json.dumps({**imported, "errors": errors, "later": later}))
"""


def test_jsonschema_is_imported_without_the_iri_grammar_and_still_validates() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got == {
        "jsonschema": True,
        "grammar": False,
        "errors": ["'a' is a required property"],
        "later": importlib.util.find_spec("rfc3987_syntax") is not None,
    }
