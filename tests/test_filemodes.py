"""Temp files get the mode a plain open() or mkdir() would have given."""

import os
import stat
import tempfile

from bookcover.filemodes import current_umask, follow_umask


def test_follow_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        follow_umask(name)
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o640
        folder = tempfile.mkdtemp(dir=tmp_path)
        follow_umask(folder, directory=True)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750
    finally:
        os.umask(old)
