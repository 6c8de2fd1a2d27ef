#!/usr/bin/env python3
"""One-command set-up for distill_core. Needs only Python >= 3.11.

  python3 dev.py app     set up .venv (if needed) and serve the app on http://localhost:8501
  python3 dev.py test    set up .venv (if needed) and run the test suite
  python3 dev.py setup   only set up .venv

Set-up is idempotent: requirements are installed again only when requirements.txt changes, and UMAP's
numba kernels are compiled into numba's on-disk cache once per umap-learn / numba version, so the app's
first UMAP in a new process loads them instead of compiling them (about 15 s on a 2-core CPU).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".requirements.sha256"
NUMBA_STAMP = VENV / ".umap-numba-cache"
EMBEDDINGS = ROOT / "distill_core" / "analysis" / "embeddings.py"


def _site_packages() -> Path:
    return Path(subprocess.run([str(PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())


def _link_project(site: Path) -> None:
    """Put the repository on the venv's path (a .pth file), so `import distill_core` works from
    bench/ scripts, streamlit pages and subprocesses alike, whatever the working directory."""
    pth = site / "distill_core_repo.pth"
    if not pth.exists() or pth.read_text().strip() != str(ROOT):
        pth.write_text(str(ROOT) + "\n")


def _warm_umap(site: Path) -> None:
    """Compile UMAP's kernels into numba's cache (`embeddings.warm_umap`) unless umap-learn, numba and the
    embedding code are those of the last warm-up."""
    versions = sorted(p.name for p in site.glob("*.dist-info") if p.name.lower().startswith(("umap_learn-", "numba-")))
    want = " ".join([*versions, hashlib.sha256(EMBEDDINGS.read_bytes()).hexdigest()[:16]])
    if NUMBA_STAMP.exists() and NUMBA_STAMP.read_text().strip() == want:
        return
    print("compiling UMAP's numba kernels into numba's cache (once per version, about 20 s)", flush=True)
    subprocess.run([str(PY), "-c", "from distill_core.analysis.embeddings import warm_umap; warm_umap()"],
                   check=True, cwd=ROOT)
    NUMBA_STAMP.write_text(want + "\n")


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is needed, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    want = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text().strip() == want):
        print("installing requirements (torch is large: a few minutes the first time)", flush=True)
        pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
        STAMP.write_text(want + "\n")
    site = _site_packages()
    _link_project(site)
    _warm_umap(site)


def app(args: list[str]) -> int:
    setup()
    port = os.environ.get("PORT", "8501")
    cmd = [str(PY), "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "localhost",
           "--server.port", port, "--server.headless", "true", "--browser.gatherUsageStats", "false", *args]
    print(f"serving on http://localhost:{port}", flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def test(args: list[str]) -> int:
    setup()
    return subprocess.call([str(PY), "-m", "pytest", "-q", *(args or ["tests"])], cwd=ROOT)


def main() -> int:
    command, *rest = sys.argv[1:] or ["help"]
    if command == "setup":
        setup()
        return 0
    if command == "app":
        return app(rest)
    if command == "test":
        return test(rest)
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
