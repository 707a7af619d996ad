"""A runner's id is ``host:pid`` of the process asking: unique among live runners, so a
forked process (the runner under its init, a worker) has its own."""

from __future__ import annotations

import os
import socket

from runner.orphans import default_runner_id


def test_the_id_is_the_host_and_the_pid_of_the_process_asking() -> None:
    assert default_runner_id() == f"{socket.gethostname()}:{os.getpid()}"
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the forked process answers with its own pid
        os.write(write_end, default_runner_id().encode())
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1024).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    assert answer == f"{socket.gethostname()}:{child}"
