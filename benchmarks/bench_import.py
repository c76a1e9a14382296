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


class FirstCall:
    """First call of each family's main function in a new process (``first_call.py``).

    ``cold``: with an empty Numba kernel cache (everything compiled); ``warm``: with the cache
    the cold run filled (after ``numlab compile``); both minus nothing, in seconds, the small
    problems of ``benchmarks/first_call.py`` (run time 0.01-0.1 s). Target: cold <= 2 s plus
    the run time (issue 17).
    """

    timeout = 1200
    params = ["ot", "linalg", "random_projection", "graph", "cca", "sampling", "lstsq", "rmt",
              "operators", "pde"]
    param_names = ["family"]

    def setup_cache(self):
        from .first_call import measure

        return {family: measure(family) for family in self.params}

    def track_cold_first_call(self, results, family):
        return results[family]["cold"]

    def track_warm_first_call(self, results, family):
        return results[family]["warm"]

    def track_compile(self, results, family):
        return results[family]["compile"]

    track_cold_first_call.unit = track_warm_first_call.unit = track_compile.unit = "seconds"
