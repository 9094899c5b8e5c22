"""Runs faiss's own Python test suite with nearly in faiss's place and
counts what passes, per test file: the measure of "import nearly as faiss
keeps faiss code working" on code we did not write.

    python tests/faiss_own_suite.py --faiss-src /path/to/faiss [--out bench/results/faiss_own_suite.json]

--faiss-src is a faiss checkout, or a bare git directory (its HEAD is read).
faiss.contrib is pure Python over faiss's API; where faiss-cpu is installed
its contrib runs over nearly too (--no-contrib: not). Nothing here is
collected by the project's pytest run (the file name does not start with
test_); the suite takes some minutes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict

CONFTEST = '''
import os, sys, types
path = os.environ.get("NEARLY_SUITE_PATH")
if path:  # another build of nearly (pip install --target DIR), over an editable install
    sys.meta_path[:] = [f for f in sys.meta_path
                        if "editable" not in (type(f).__module__ + type(f).__name__).lower()]
    sys.path.insert(0, path)
import nearly
assert not path or nearly.__file__.startswith(path), nearly.__file__
sys.modules["faiss"] = nearly
contrib = os.environ.get("NEARLY_SUITE_CONTRIB")
if contrib and not hasattr(nearly, "contrib"):
    pkg = types.ModuleType("faiss.contrib")
    pkg.__path__ = [contrib]
    sys.modules["faiss.contrib"] = pkg
    nearly.contrib = pkg
'''


def faiss_test_files(src, into):
    """Copies faiss's tests/*.py into `into`; returns the faiss commit."""
    if os.path.isdir(os.path.join(src, "tests")):
        names = [n for n in os.listdir(os.path.join(src, "tests")) if n.endswith(".py")]
        for n in names:
            with open(os.path.join(src, "tests", n), "rb") as f, open(os.path.join(into, n), "wb") as g:
                g.write(f.read())
        git = ["git", "-C", src]
    else:  # a bare repository
        git = ["git", "--git-dir", src]
        listing = subprocess.run(git + ["ls-tree", "--name-only", "HEAD", "tests/"], check=True,
                                 capture_output=True, text=True).stdout.split()
        for path in listing:
            if path.endswith(".py"):
                blob = subprocess.run(git + ["show", "HEAD:" + path], check=True, capture_output=True).stdout
                with open(os.path.join(into, os.path.basename(path)), "wb") as g:
                    g.write(blob)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    # a compiled extension module of faiss's own build, not an API test
    ext = os.path.join(into, "external_module_test.py")
    if os.path.exists(ext):
        os.remove(ext)
    return commit


def faiss_contrib_dir():
    try:
        import importlib.util

        spec = importlib.util.find_spec("faiss")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "contrib")
    return path if os.path.isdir(path) else None


def per_file(junit_xml):
    counts = defaultdict(lambda: {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        # collection errors carry no class name: file them under the test name
        name = (case.get("classname") or case.get("name") or "?").split(".")[0]
        name = name if name.endswith(".py") else name + ".py"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        counts[name][outcome] += 1
        if outcome in ("failed", "error"):  # which ones, for whoever takes the next gap
            counts[name].setdefault("not_passing", []).append(
                f"{case.get('classname', '').split('.')[-1]}.{case.get('name')}")
    return dict(sorted(counts.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faiss-src", required=True)
    ap.add_argument("--out", default=None, help="JSON summary (per-file counts)")
    ap.add_argument("--no-contrib", action="store_true")
    ap.add_argument("--nearly-path", default=None,
                    help="run another build of nearly, installed with pip install --target DIR")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="faiss_suite_") as tmp:
        commit = faiss_test_files(args.faiss_src, tmp)
        with open(os.path.join(tmp, "conftest.py"), "w") as f:
            f.write(CONFTEST)
        env = dict(os.environ)
        contrib = None if args.no_contrib else faiss_contrib_dir()
        if contrib:
            env["NEARLY_SUITE_CONTRIB"] = contrib
        if args.nearly_path:
            env["NEARLY_SUITE_PATH"] = os.path.abspath(args.nearly_path)
        junit = os.path.join(tmp, "junit.xml")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--junitxml={junit}", *args.pytest_args]
        proc = subprocess.run(cmd, cwd=tmp, env=env, timeout=args.timeout, capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        files = per_file(junit) if os.path.exists(junit) else {}

    totals = {k: sum(c[k] for c in files.values()) for k in ("passed", "failed", "error", "skipped")}
    head = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    summary = {"faiss_commit": commit, "nearly_commit": head if not args.nearly_path else None,
               "nearly_path": args.nearly_path,
               "contrib_from_faiss_cpu": bool(contrib), "pytest_summary": tail[0] if tail else "",
               "totals": totals, "files": files}
    for name, c in files.items():
        ran = c["passed"] + c["failed"] + c["error"]
        print(f"{name:42s} {c['passed']:5d} / {ran:5d} passed   ({c['skipped']} skipped)")
    print(f"{'total':42s} {totals['passed']:5d} / {totals['passed'] + totals['failed'] + totals['error']:5d} passed")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
