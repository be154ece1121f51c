"""SECURITY.md tells only the truth (issue 11 hole 12), as far as a machine
can check it: every test it names exists (a file, and each `::test` in it),
every source file it names exists, and every `module.name` it gives as the
control in the code is defined in that module."""
import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "SECURITY.md"
#: Where a short module name (`accounts.authenticate`) is looked up.
PACKAGES = ("", "services/", "staff/", "public/", "cli/", "ui/")
#: Table names: `responses.dossier_hash` names a column, not code.
TABLES = {"responses", "answers", "users", "units", "counters", "audit_log", "volumes", "import_batches"}


@cache
def _defined(path: Path) -> frozenset:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _cells():
    """(line number, backticked tokens) of each line of the document."""
    for lineno, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        yield lineno, [t.strip() for t in re.findall(r"`([^`]+)`", line)]


def test_every_test_named_in_security_md_exists():
    problems, named = [], 0
    for lineno, tokens in _cells():
        current = None
        for tok in tokens:
            m = re.match(r"^(tests/[\w/]+\.py)(?:::(\w+))?", tok) or re.match(r"^::(\w+)()", tok)
            if not m:
                continue
            if tok.startswith("tests/"):
                current = ROOT / m.group(1)
                name = m.group(2)
                if not current.is_file():
                    problems.append(f"line {lineno}: {tok}: no such file")
                    current = None
                    continue
            else:
                name = m.group(1)
                if current is None:
                    problems.append(f"line {lineno}: {tok}: which file?")
                    continue
            if name:
                named += 1
                if name not in _defined(current):
                    problems.append(f"line {lineno}: {tok}: no such test in {current.relative_to(ROOT)}")
    assert named > 50  # the parser found the tests
    assert problems == []


def test_every_file_and_code_name_in_security_md_exists():
    problems = []
    for lineno, tokens in _cells():
        for tok in tokens:
            named = re.match(r"^((?!tests/)[\w/]+\.py)::(\w+)$", tok)  # `public/routes.py::_form_limits`
            if named:
                # a bare test file name is one of tests/reliability/ (the "Reliability promises" table)
                found = [f for f in (ROOT / named.group(1), ROOT / "survey_app" / named.group(1),
                                     ROOT / "tests" / "reliability" / named.group(1)) if f.is_file()]
                if not found or named.group(2) not in _defined(found[0]):
                    problems.append(f"line {lineno}: {tok}: not defined")
                continue
            path = re.match(r"^([\w.-]+/[\w/.-]+\.(?:py|sh|json|html|css|js|txt))$", tok)
            if path:
                if not ((ROOT / path.group(1)).is_file() or (ROOT / "survey_app" / path.group(1)).is_file()):
                    problems.append(f"line {lineno}: {tok}: no such file")
                continue
            code = re.match(r"^(?:survey_app/)?([a-z_][a-z_/]*)\.([A-Za-z_]\w*)(?:\(\))?$", tok)
            if not code or code.group(1) in TABLES or code.group(2) in ("py", "sh", "md", "json", "txt"):
                continue
            module, name = code.groups()
            files = [ROOT / "survey_app" / f"{pkg}{module}{end}" for pkg in PACKAGES
                     for end in (".py", "/__init__.py")]
            files = [f for f in files if f.is_file()]
            if module == "secrets":
                continue  # the standard library's
            if not files:
                problems.append(f"line {lineno}: {tok}: no module {module}")
            elif not any(name in _defined(f) for f in files):
                problems.append(f"line {lineno}: {tok}: {name} is not defined in {module}")
    assert problems == []
