"""A ``bridge worker`` whose handlers log when each job starts and ends (for T7's overlap
check) and take a little time, so that a SIGKILL lands mid-job. Test-only."""
import os
import sys
import threading
import time

from sqlalchemy import event

from bridge.logs import configure_logging
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.worker.handlers import all_handlers
from bridge.worker.runner import Worker


def main():
    log_path = os.environ["T7_JOB_LOG"]
    delay = float(os.environ.get("T7_JOB_DELAY", "0.01"))
    out = open(log_path, "a", buffering=1)
    pid = os.getpid()

    def wrap(handler):
        def run(rt, job, session):
            out.write(f"start {job.id} {pid} {time.time():.6f}\n")
            # "commit" is written only if the runner's transaction (the job's effects and its
            # fenced completion) really committed; a run whose lease was lost rolls back.
            event.listen(session, "after_commit",
                         lambda s: out.write(f"commit {job.id} {pid} {time.time():.6f}\n"))
            handler(rt, job, session)
            time.sleep(delay)
            session.flush()
            # Logged before commit: "end" means the handler finished, commit may still be fenced.
            out.write(f"end {job.id} {pid} {time.time():.6f}\n")
        return run

    rt = Runtime.build(Settings.from_env())
    configure_logging("WARNING")
    handlers = {k: wrap(h) for k, h in all_handlers(rt).items()}
    Worker(rt, handlers).run_forever(threading.Event())


if __name__ == "__main__":
    sys.exit(main())
