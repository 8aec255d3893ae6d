import subprocess
import sys


def _run(body: str):
    code = ("from dlsys.core.stage import run_stage\n"
            "from dlsys.core.errors import UserError\n"
            f"def main():\n    {body}\n"
            "run_stage(main, 'demo')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_user_error_is_one_line_without_traceback():
    proc = _run("raise UserError('data/raw/x: missing (run acquire_x)')")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: data/raw/x: missing (run acquire_x)"


def test_bugs_still_show_a_traceback():
    proc = _run("raise ZeroDivisionError('bug')")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_success_logs_summary():
    proc = _run("pass")
    assert proc.returncode == 0 and "demo finished" in proc.stderr
