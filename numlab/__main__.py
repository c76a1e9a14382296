import sys

from numlab.cli import main

sys.exit(main())
