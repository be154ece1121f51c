"""The audit log reads in Vietnamese (and English), issue 14.7: every action code the code base records has
a label in both languages; the page shows labels and readable details (no `\\u00e3` escapes), local time."""
import ast
import re
from pathlib import Path

import survey_app

ROOT = Path(survey_app.__file__).parent
#: Functions that write the audit log, with the name of their action argument and its position.
WRITERS = {"record": ("action", None)}


def _parents(tree):
    out = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def _enclosing_function(node, parents):
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _call_name(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _arg(call, name, pos):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return call.args[pos] if pos is not None and len(call.args) > pos else None


def _codes(expr, func, tree, parents, seen):
    """The string values `expr` can take: constants, both sides of `a if c else b`, a local variable's
    assignments, or a parameter's values at every call of its function in the module."""
    if expr is None:
        return set()
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.JoinedStr):  # f"case_{action}": every combination of its parts
        combos = {""}
        for part in expr.values:
            values = ({part.value} if isinstance(part, ast.Constant)
                      else _codes(part.value, func, tree, parents, seen))
            combos = {c + v for c in combos for v in values}
        return combos
    if isinstance(expr, ast.IfExp):
        return _codes(expr.body, func, tree, parents, seen) | _codes(expr.orelse, func, tree, parents, seen)
    if isinstance(expr, ast.Name) and func is not None and (func.name, expr.id) not in seen:
        seen.add((func.name, expr.id))
        out = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets):
                out |= _codes(node.value, func, tree, parents, seen)
        params = [a.arg for a in func.args.args]
        if expr.id in params:
            pos = params.index(expr.id)
            for call in ast.walk(tree):
                if isinstance(call, ast.Call) and _call_name(call) == func.name:
                    out |= _codes(_arg(call, expr.id, pos), _enclosing_function(call, parents), tree, parents, seen)
        return out
    raise AssertionError(f"cannot tell the audit action of {ast.dump(expr)[:120]} in {func and func.name}")


def recorded_actions(sources=None) -> set[str]:
    """Every action code an `audit.record(...)` call in survey_app (or in `sources`) can write."""
    codes = set()
    for text in sources if sources is not None else (p.read_text(encoding="utf-8") for p in ROOT.rglob("*.py")):
        tree = ast.parse(text)
        parents = _parents(tree)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and _call_name(call) in WRITERS:
                name, pos = WRITERS[_call_name(call)]
                expr = _arg(call, name, pos)
                if expr is None:
                    continue
                codes |= _codes(expr, _enclosing_function(call, parents), tree, parents, set())
    return codes


def test_the_scan_follows_conditions_variables_parameters_and_fstrings():
    src = """
def a(x):
    record(actor="u", action="lit")
    record(actor="u", action="yes" if x else "no")
    act = "var_one" if x else "var_two"
    record(actor="u", action=act)

def _change(user, action, status):
    record(actor="u", action=f"case_{action}")

def take(u):
    return _change(u, "taken", "in_progress")

def close(u):
    return _change(u, action="closed", status="closed")
"""
    assert recorded_actions([src]) == {"lit", "yes", "no", "var_one", "var_two", "case_taken", "case_closed"}


def test_every_recorded_action_has_a_label_in_both_languages(app):
    from flask_babel import force_locale

    from survey_app.ui.labels import AUDIT_ACTION_LABELS

    codes = recorded_actions()
    # The scan sees literal, conditional, variable and passed-in codes (it would fail, not pass, if it broke).
    assert {"login", "unit_update", "response_exclude", "exclusion_reject", "approval_publish", "user_unlock",
            "import_units", "api.volumes"} <= codes
    assert codes - set(AUDIT_ACTION_LABELS) == set(), "audit actions without a label in ui/labels.py"
    with app.test_request_context():
        for code in codes:
            with force_locale("en"):
                en = str(AUDIT_ACTION_LABELS[code])
            with force_locale("vi"):
                vi = str(AUDIT_ACTION_LABELS[code])
            assert en and en != code, code
            assert vi and vi != en, f"{code}: no Vietnamese for {en!r}"


def test_audit_page_shows_labels_readable_details_and_local_time(sapp, world, as_role):
    import datetime as dt

    from survey_app.extensions import db
    from survey_app.models import AuditLog
    from survey_app.services.audit import record

    with sapp.app_context():
        e = record(actor="admin", action="unit_update", target_type="unit", target_id="P-A",
                   details={"before": {"name_vi": "Xã An Phú"}, "after": {"name_vi": "Phường Ấn Định"},
                            "reason": "sáp nhập đơn vị", "active": True, "rows": None})
        db.session.flush()
        e.at = dt.datetime(2025, 3, 1, 17, 30, tzinfo=dt.timezone.utc)  # 2/3 00:30 in Hà Nội
        db.session.commit()
    c = as_role("admin")
    html = c.get("/staff/admin/audit").get_data(as_text=True)
    assert "\\u00" not in html and "&#34;" not in html  # no JSON escapes, no quoted JSON
    row = re.search(r'<tr data-action="unit_update">(.*?)</tr>', html, re.S).group(1)
    assert "sửa đơn vị" in row and "Phường Ấn Định" in row and "sáp nhập đơn vị" in row
    assert "<strong>lý do</strong>: sáp nhập đơn vị" in row and "<strong>đang hoạt động</strong>: có" in row
    assert "02/03/2025 00:30" in row
    assert "<td>đơn vị P-A</td>" in row  # the target type in words
    assert "đăng nhập" in html  # the admin's own sign-in, recorded by the login page
    assert '<option value="login"' in html and ">đăng nhập</option>" in html
    only = c.get("/staff/admin/audit?action=unit_update").get_data(as_text=True)
    assert 'data-action="login"' not in only and 'data-action="unit_update"' in only
    en = c.get("/staff/admin/audit?lang=en").get_data(as_text=True)
    assert "unit changed" in en and "signed in" in en and "<td>unit P-A</td>" in en
    assert "<strong>reason</strong>: sáp nhập đơn vị" in en
    with sapp.app_context():
        assert db.session.query(AuditLog).filter_by(action="login").count() >= 1
