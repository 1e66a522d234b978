"""gunicorn's configuration, read by gunicorn from the directory it starts in.

Prometheus' multiprocess mode: every worker writes its metrics to files in one directory, and
``/metrics`` sums them. The directory (``PROMETHEUS_MULTIPROC_DIR`` when set, else a new
temporary one) is emptied here, when gunicorn starts and before the app is imported (even
with ``--preload``), so that no count of an earlier run is served; a worker that exits is
marked dead in it.
"""

import os
import shutil
import tempfile

_directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_made = not _directory
if _directory:
    shutil.rmtree(_directory, ignore_errors=True)
    os.makedirs(_directory, mode=0o700)
else:
    _directory = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="gatehouse-metrics-")


def child_exit(server, worker):
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    if _made:  # a directory of our own goes with the server
        shutil.rmtree(_directory, ignore_errors=True)
