"""Import time of numlab (a fresh interpreter per sample: nothing cached in sys.modules)."""

import subprocess
import sys


class ImportTime:
    """``import numlab`` must stay under 0.3 s and import no heavy library."""

    def timeraw_import_numlab(self):
        return "import numlab"

    def track_heavy_modules_imported(self):
        code = (
            "import sys, numlab; "
            "print(sum(m.split('.')[0] in ('numba', 'cupy', 'dask', 'sklearn') for m in sys.modules))"
        )
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout)

    track_heavy_modules_imported.unit = "modules"
